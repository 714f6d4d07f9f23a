"""`edgebench results list | show | export`: read the results store without re-running anything."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from edgebench.commands.common import console
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.render import result_table
from edgebench.report.data import CSV_COLUMNS, flat_row
from edgebench.result import Result
from edgebench.store import DEFAULT_PATH, RunInfo, Store

results_app = typer.Typer(no_args_is_help=True, help="List, show and export the runs in the results store.")


def store_option() -> Path:
    return typer.Option(DEFAULT_PATH, "--store", help="Results store (SQLite file written by 'edgebench sweep').")


def load_run(store_path: Path, ref: str | None) -> tuple[RunInfo, list[Result]]:
    """The run named by id or name (None: the newest) and its results; errors name the fix."""
    with Store(store_path, create=False) as store:
        if ref is None:
            run = store.last_run()
            if run is None:
                raise EdgebenchError(f"{store_path} holds no runs yet: run 'edgebench sweep SPEC' first",
                                     ExitStatus.NOT_FOUND)
        else:
            run = store.run(ref)
        return run, store.results(run.id)


@results_app.command("list")
def list_runs(store: Path = store_option(),
              limit: int = typer.Option(20, min=1, help="Show at most this many runs, newest first.")) -> None:
    """List the runs in the store, newest first."""
    with Store(store, create=False) as db:
        runs = db.runs(limit=limit)
    if not runs:
        console.print(f"{store} holds no runs yet")
        return
    table = Table(title=f"runs in {store}")
    for col in ("id", "name", "started (UTC)", "status", "cells", "errors", "edgebench", "commit"):
        table.add_column(col, justify="right" if col in ("id", "cells", "errors") else "left")
    for r in runs:
        commit = f"{r.commit['sha'][:10]}{'+' if r.commit['dirty'] else ''}" if r.commit else "—"
        table.add_row(str(r.id), r.name, r.created_utc, r.status, str(r.cells), str(r.errors), r.edgebench_version,
                      commit)
    console.print(table)


@results_app.command("show")
def show(run: str = typer.Argument(..., help="Run id or name (see 'edgebench results list')."),
         store: Path = store_option()) -> None:
    """Show every cell of one run."""
    info, results = load_run(store, run)
    console.print(f"run {info.id} [bold]{info.name}[/bold]: {info.status}, started {info.created_utc}, "
                  f"{info.cells} cells, {info.errors} errors")
    if results:
        console.print(result_table(results))


def write_csv(results: list[Result], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(flat_row(r) for r in results)


def write_json_list(results: list[Result], path: Path) -> None:
    """Always a list (even of one), so scripts and the gate read every export the same way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps([r.to_dict() for r in results], indent=1) + "\n")
    tmp.replace(path)


@results_app.command("export")
def export(run: str = typer.Argument(..., help="Run id or name (see 'edgebench results list')."),
           csv_out: Optional[Path] = typer.Option(None, "--csv", help="Write one flat row per cell here."),
           json_out: Optional[Path] = typer.Option(None, "--json", help="Write the list of full results here."),
           store: Path = store_option()) -> None:
    """Export one run as CSV (a flat view) and/or JSON (full results with raw samples)."""
    if csv_out is None and json_out is None:
        raise EdgebenchError("results export needs --csv OUT and/or --json OUT", ExitStatus.USAGE)
    info, results = load_run(store, run)
    if csv_out:
        write_csv(results, csv_out)
        console.print(f"{len(results)} cells of run {info.id} written to {csv_out}")
    if json_out:
        write_json_list(results, json_out)
        console.print(f"{len(results)} results of run {info.id} written to {json_out}")


def install(app: typer.Typer) -> None:
    app.add_typer(results_app, name="results")
