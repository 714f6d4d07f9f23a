"""`edgebench results list | show | export | noise`: read the results store without re-running anything."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from edgebench.commands.common import environment, store_option, writable_file
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.commands.tables import result_table
from edgebench.result import write_results
from edgebench.text import printable
from edgebench.pipeline.noise import MIN_PAIRS, QUANTILE, store_floors
from edgebench.store.bencher import write_bmf
from edgebench.store.runs import load_run, write_csv
from edgebench.store.locate import open_store, shown

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="List, show and export the runs in the results store; their noise between runs.")


@app.command("list")
def list_runs(ctx: typer.Context, store: str = store_option(),
              limit: int = typer.Option(20, min=1, help="Show at most this many runs, newest first.")) -> None:
    """List the runs in the store, newest first."""
    console = environment(ctx).console
    with open_store(store, read_only=True) as db:
        runs = db.runs(limit=limit)
    if not runs:
        console.print(f"{shown(store)} holds no runs yet")
        return
    table = Table(title=f"runs in {shown(store)}")
    for col in ("id", "name", "started (UTC)", "status", "cells", "errors", "edgebench", "commit"):
        table.add_column(col, justify="right" if col in ("id", "cells", "errors") else "left")
    for r in runs:
        commit = f"{r.commit['sha'][:10]}{'+' if r.commit['dirty'] else ''}" if r.commit else "—"
        status = r.status if r.shards is None else f"{r.status} ({r.shards.describe()})"
        table.add_row(str(r.id), r.name, r.created_utc, status, str(r.cells), str(r.errors), r.edgebench_version,
                      commit)
    console.print(table)


@app.command("show")
def show(ctx: typer.Context, run: str = typer.Argument(..., help="Run id or name (see 'edgebench results list')."),
         store: str = store_option()) -> None:
    """Show every cell of one run."""
    console = environment(ctx).console
    info, results = load_run(store, run, partial=True)  # a shared run with shards still out is shown as it stands
    shards = "" if info.shards is None else f", {info.shards.describe()} in" + (
        f" (waiting for {', '.join(map(str, info.shards.missing))})" if info.shards.missing else "")
    console.print(f"run {info.id} [bold]{info.name}[/bold]: {info.status}{shards}, started {info.created_utc}, "
                  f"{info.cells} cells, {info.errors} errors")
    if results:
        console.print(result_table(results))


@app.command("export")
def export(ctx: typer.Context, run: str = typer.Argument(..., help="Run id or name (see 'edgebench results list')."),
           csv_out: Optional[Path] = typer.Option(None, "--csv", callback=writable_file, help="Write one flat row per cell here."),
           json_out: Optional[Path] = typer.Option(None, "--json", callback=writable_file, help="Write the list of full results here."),
           bencher_out: Optional[Path] = typer.Option(None, "--bencher", callback=writable_file,
                                                      help="Write Bencher Metric Format JSON here (bencher run "
                                                      "--adapter json --file OUT)."),
           store: str = store_option()) -> None:
    """Export one run as CSV (a flat view), JSON (full results with raw samples) and/or Bencher Metric Format."""
    if csv_out is None and json_out is None and bencher_out is None:
        raise EdgebenchError("results export needs --csv OUT, --json OUT and/or --bencher OUT", ExitStatus.USAGE)
    console = environment(ctx).console
    info, results = load_run(store, run)
    if csv_out:
        write_csv(results, csv_out)
        console.print(f"{len(results)} cells of run {info.id} written to {csv_out}")
    if json_out:
        write_results(results, json_out, always_list=True)  # a list even of one: every export reads alike
        console.print(f"{len(results)} results of run {info.id} written to {json_out}")
    if bencher_out:
        count = write_bmf(results, bencher_out)
        console.print(f"{count} measured cells of run {info.id} written to {bencher_out} (Bencher Metric Format)")


@app.command("noise")
def noise(ctx: typer.Context, store: str = store_option()) -> None:
    """Each device's noise floor between runs, from the A/A pairs in the store (a cell measured twice on an
    unchanged artifact): the smallest latency change the gate can resolve from stored runs there."""
    console = environment(ctx).console
    floors = store_floors(store)
    if not floors:
        console.print(f"{shown(store)} holds no A/A pairs yet (the same cell and artifact measured in two runs)")
        return
    table = Table(title=f"noise between runs in {shown(store)}", caption=f"floor: the {QUANTILE}th percentile of |Δp50| "
                  f"over a device's A/A pairs, from {MIN_PAIRS} pairs on")
    for col in ("device", "A/A pairs", "median |Δp50|", f"p{QUANTILE} |Δp50| (floor)"):
        table.add_column(col, justify="left" if col == "device" else "right")
    for floor in floors.values():
        table.add_row(escape(printable(floor.device)), str(floor.pairs),
                      f"{floor.median:.1%}" if floor.median is not None else "—",
                      f"{floor.floor:.1%}" if floor.floor is not None else f"— (fewer than {MIN_PAIRS} pairs)")
    console.print(table)


@app.command("migrate")
def migrate(ctx: typer.Context,
            source: str = typer.Argument(..., help="The store to copy from: an SQLite file (or a PostgreSQL URL)."),
            dest: str = typer.Argument(..., help="The store to copy into: a PostgreSQL URL postgresql://USER@HOST/DB "
                                       "(or an SQLite file); created if need be.")) -> None:
    """Copy every run of one store into another (an SQLite file into the team's PostgreSQL store): each run whole
    or not at all, runs copied before skipped, so running it again finishes a copy cut short."""
    from edgebench.store.copy import copy_runs

    console = environment(ctx).console
    done = copy_runs(source, dest)
    table = Table(title=f"{shown(source)} → {shown(dest)}")
    for col in ("run", "name", "cells", "copied as"):
        table.add_column(col, justify="left" if col == "name" else "right")
    for c in done:
        table.add_row(str(c.source_id), escape(printable(c.name)), str(c.cells),
                      str(c.new_id) if c.new_id is not None else f"[yellow]{escape(c.skipped or '')}[/yellow]")
    console.print(table)
    copied = sum(1 for c in done if c.new_id is not None)
    console.print(f"{copied} run(s) copied, {len(done) - copied} skipped")
