"""`edgebench sweep`: the whole matrix — models × recipes × formats × devices × options."""

from __future__ import annotations

import shlex
import shutil
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.markup import escape
from rich.table import Table

from edgebench.commands.common import check_default_cache, environment, store_option, writable_file, writable_folder
from edgebench.commands.progress import log_line
from edgebench.environment import Environment
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.paths import demo_dir
from edgebench.commands.tables import result_table
from edgebench.report import write_report
from edgebench.result import CellKey, Result, write_results
from edgebench.store.runs import load_run, shards_in
from edgebench.store.base import RunInfo
from edgebench.store.locate import open_store, shown
from edgebench.devices.leases import use_lease_pool
from edgebench.pipeline.sweep.plan import Cell, Plan
from edgebench.pipeline.sweep.cells import cached
from edgebench.pipeline.sweep.run import Outcome
from edgebench.pipeline.sweep.shard import Shard, check_run_name, dealt_cells, parse_shard, shard_plan
from edgebench.pipeline.sweep.stored import plan_sweep, resume_point, run_plan, shard_point


def stopping_text(in_flight: int, at_once: bool) -> str:
    if at_once:
        return (f"no new cell starts; stopping the runners of the {in_flight} cell(s) in flight (finished cells are "
                "kept for --resume)")
    return (f"no new cell starts; waiting for the {in_flight} cell(s) in flight (finished cells are kept for "
            "--resume; Ctrl-C again stops them now)")


class ProgressEvents:
    """Overall and per-device progress bars, updated from the device workers."""

    def __init__(self, progress: Progress, plan: Plan, todo: list[Cell]) -> None:
        self.progress = progress
        self.overall = progress.add_task("all cells", total=len(todo))
        self.devices: dict[str, TaskID] = {
            d: progress.add_task(f"  {d}", total=sum(1 for c in todo if c.device == d)) for d in plan.profiles}

    def conversion_started(self, conversion: tuple[str, str, str]) -> None:
        pass  # the bars show cells; a conversion gets its line when it ends

    def conversion_done(self, conversion: tuple[str, str, str], hit: bool, error: str | None) -> None:
        what = " ".join(conversion)
        if error:
            self.progress.console.print(f"[red]conversion failed[/red] {escape(what)}: {escape(error)}")
        else:
            self.progress.console.print(f"{'cache hit ' if hit else 'converted '} {what}")

    def cell_started(self, cell: Cell) -> None:
        self.progress.update(self.devices[cell.device], description=f"  {cell.device}: {cell.label()}")

    def cell_done(self, cell: Cell, result: Result) -> None:
        self.progress.advance(self.devices[cell.device])
        self.progress.advance(self.overall)
        if not result.ok:
            self.progress.console.print(f"[red]failed[/red] {escape(cell.label())}: "
                                        f"{escape(result.error.message) if result.error else None}")

    def stopping(self, in_flight: int, at_once: bool) -> None:
        self.progress.console.print(f"[yellow]{'stopping' if at_once else 'interrupted'}:[/yellow] "
                                    f"{stopping_text(in_flight, at_once)}")


class LogEvents:
    """The same events as plain lines, for a log (stdout not a terminal): each conversion's start and end with
    its time, each cell's start, and ``cell k/N done: LABEL p50 X ms`` or ``cell k/N failed: LABEL: why``."""

    def __init__(self, env: Environment, todo: list[Cell]) -> None:
        self.env, self.total, self.finished = env, len(todo), 0
        self._lock = threading.Lock()  # device workers report from their threads
        self._started: dict[object, float] = {}

    def _line(self, text: str) -> None:
        with self._lock:
            log_line(self.env, text)

    def _elapsed(self, what: object) -> str:
        return f"{self.env.clock() - self._started.pop(what, self.env.clock()):.1f} s"

    def conversion_started(self, conversion: tuple[str, str, str]) -> None:
        self._started[conversion] = self.env.clock()
        self._line(f"conversion started: {' '.join(conversion)}")

    def conversion_done(self, conversion: tuple[str, str, str], hit: bool, error: str | None) -> None:
        what, took = " ".join(conversion), self._elapsed(conversion)
        self._line(f"conversion failed: {what} ({took}): {error}" if error else
                   f"conversion {'found in the cache' if hit else 'finished'}: {what} ({took})")

    def cell_started(self, cell: Cell) -> None:
        self._started[cell.key] = self.env.clock()
        self._line(f"cell started: {cell.label()}")

    def cell_done(self, cell: Cell, result: Result) -> None:
        took = self._elapsed(cell.key)
        with self._lock:
            self.finished += 1
            k = self.finished
        if result.ok:
            p50 = f" p50 {result.p50:.3f} ms" if result.p50 is not None else ""
            self._line(f"cell {k}/{self.total} done: {cell.label()}{p50} ({took})")
        else:
            self._line(f"cell {k}/{self.total} failed: {cell.label()}: {result.error.message if result.error else '?'}")

    def stopping(self, in_flight: int, at_once: bool) -> None:
        self._line(f"{'stopping' if at_once else 'interrupted'}: {stopping_text(in_flight, at_once)}")


def conversions_table(plan: Plan, cache_dir: Path | None) -> Table:
    table = Table(title="conversions (each once, shared by every device and option)")
    for col in ("model", "recipe", "format", "cache"):
        table.add_column(col)
    for conversion in plan.conversions:
        try:
            state = "hit" if cached(plan, conversion, cache_dir) else "to convert"
        except EdgebenchError as exc:
            state = f"[red]will fail: {escape(str(exc))}[/red]"
        table.add_row(*conversion, state)
    return table


def plan_table(plan: Plan, done: set[CellKey], share: str | None = None) -> Table:
    """The plan, cell by cell; ``share`` (a shard's plan) says what part of the whole plan it is."""
    cells = share or f"{len(plan.cells)} cells"
    table = Table(title=f"sweep {plan.spec.name}: {cells}, {len(plan.conversions)} conversions "
                        f"(each once), {len(plan.skipped)} skipped, {len(done)} already done")
    for col in ("model", "recipe", "format", "device", "options", "status"):
        table.add_column(col)
    for cell in plan.cells:
        opts = " ".join(f"{k}={v}" for k, v in cell.options)
        table.add_row(cell.model.name, cell.recipe, cell.format, cell.device, opts,
                      "done (resume skips it)" if cell.key in done else "to run")
    for cell, reason in plan.skipped:
        opts = " ".join(f"{k}={v}" for k, v in cell.options)
        table.add_row(cell.model.name, cell.recipe, cell.format, cell.device, opts, f"[yellow]skipped: {escape(reason)}[/yellow]")
    return table


def resume_command(spec: Path, run_id: int, store: str, cache_dir: Path | None, shard: Shard | None = None,
                   name: str | None = None) -> str:
    """The command that continues run ``run_id``: the same store and cache, so it finds the run and its artifacts;
    for a shard, the same shard of the same shared run (it skips the cells it already stored)."""
    again = shard.args(name) if shard is not None and name is not None else ["--resume", str(run_id)]
    words = ["edgebench", "sweep", str(spec), *again, "--store", shown(store)]
    return shlex.join(words + (["--cache-dir", str(cache_dir)] if cache_dir is not None else []))


def _sweep(env: Environment, spec: Path, store: str, resume: str | None, dry_run: bool, json_out: Path | None,
           cache_dir: Path | None, device_wait_s: float | None = None, name: str | None = None,
           shard: Shard | None = None) -> tuple[int, Outcome] | None:
    """Show the plan, run it with progress bars (plain lines in a log), then show the results: sweep and demo
    alike. The run's id and what happened; None for a dry run. ``name``: the run's name (default the spec's);
    with ``shard``, the shared run that shard fills (only the shard's cells are run, shown and written)."""
    console = env.console
    started = env.clock()
    plan = plan_sweep(spec, cache_dir)
    share = None
    if shard is not None:
        whole = len(dealt_cells(plan))
        plan = shard_plan(plan, shard)
        share = f"shard {shard}: {len(plan.cells)} of {whole} cells"
    if plan.conversions:
        check_default_cache(cache_dir)
    with open_store(store) as db:
        if shard is not None and name is not None:
            run_id, done = shard_point(db, plan, name, shard, join=not dry_run)
        else:
            run_id, done = resume_point(db, plan, resume)
        console.print(plan_table(plan, done, share))
        if plan.conversions:
            console.print(conversions_table(plan, cache_dir))
        if dry_run:
            return None
        todo = [c for c in plan.cells if c.key not in done]
        if console.is_terminal:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=False) as progress:
                run_id, outcome = run_plan(plan, db, run_id, done, cache_dir, ProgressEvents(progress, plan, todo),
                                           spec, device_wait_s, name, shard)
        else:
            run_id, outcome = run_plan(plan, db, run_id, done, cache_dir, LogEvents(env, todo), spec, device_wait_s,
                                       name, shard)
    with open_store(store, read_only=True) as db:
        results, info = db.results(run_id), db.run(run_id)
    if shard is not None:  # the other shards' cells are theirs to show and write
        mine = {cell.key for cell in plan.cells}
        results = [r for r in results if r.cell_key in mine]
    console.print(result_table(results))
    what = f"run {run_id}" if shard is None else f"run {run_id} ({info.name}), shard {shard}"
    console.print(f"{what}: {len(outcome.results)} cells measured now ({outcome.failed} failed), "
                  f"{outcome.conversions} conversions, {outcome.cache_hits} cache hits, "
                  f"{env.clock() - started:.1f} s; {next_step(info, store)}")
    if json_out:
        write_results(results, json_out, always_list=True)
        console.print(f"results written to {json_out}")
    if outcome.interrupted:
        raise EdgebenchError(f"{'terminated (SIGTERM)' if outcome.terminated else 'interrupted'}: finished cells are "
                             f"stored; continue with '{resume_command(spec, run_id, store, cache_dir, shard, name)}'",
                             ExitStatus.TERMINATED if outcome.terminated else ExitStatus.INTERRUPTED)
    return run_id, outcome


def next_step(run: RunInfo, store: str) -> str:
    """What to do with the run now: report it, or, for a shared run some shards have not filled yet, wait."""
    if run.shards is None or run.shards.complete:
        return f"report: edgebench report {run.id} --store {shown(store)}"
    return f"{shards_in(run)}; report it once all are: edgebench report {run.id} --store {shown(store)}"


def sweep(
    ctx: typer.Context,
    spec: Path = typer.Argument(..., help="Sweep spec YAML."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and stop."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue this run id (or name): finished cells are "
                                         "skipped, failed ones retried."),
    store: str = store_option(write=True),
    json_out: Optional[Path] = typer.Option(None, "--json", callback=writable_file,
                                            help="Write every result of the run as a JSON list."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", callback=writable_folder,
                                             help="Artifact cache (default .edgebench/cache)."),
    allow_failures: bool = typer.Option(False, "--allow-failures", help="Exit 0 even when cells failed (they are "
                                        "stored with their errors either way; default: exit status 11)."),
    device_wait: Optional[float] = typer.Option(None, "--device-wait", min=0, metavar="SECONDS",
                                                help="How long to wait for a device another edgebench process is "
                                                "measuring on (default $EDGEBENCH_DEVICE_WAIT_S, else no limit; 0: "
                                                "refuse at once); its cells then fail naming the holder."),
    shard_text: Optional[str] = typer.Option(None, "--shard", metavar="I/N",
                                             help="Run only shard I of N of the plan's cells (a CI matrix job), into "
                                             "the run --run NAME that the N shards share; running a shard again "
                                             "skips the cells it stored without error. See docs/ci.md."),
    run_name: Optional[str] = typer.Option(None, "--run", metavar="NAME",
                                           help="Name the run (default: the spec's name); with --shard, the shared "
                                           "run every shard fills. Without --shard each sweep makes a new run."),
) -> None:
    """Run a sweep spec: convert each (model, recipe, format) once, measure every cell, store each at once."""
    if resume is not None and run_name is not None:
        raise EdgebenchError(f"pass --resume {resume} or --run {run_name}, not both: --resume continues a run, --run "
                             "names a new one (or, with --shard, the shared run a shard fills)", ExitStatus.USAGE)
    if shard_text is not None and run_name is None:
        raise EdgebenchError(f"--shard {shard_text} needs --run NAME: the run the shards share, the same name in every "
                             "job of the matrix (e.g. --run nightly-$GITHUB_RUN_ID)", ExitStatus.USAGE)
    shard = None if shard_text is None else parse_shard(shard_text)
    if run_name is not None:
        check_run_name(run_name)
    if not dry_run:
        use_lease_pool(store, run_name)  # a PostgreSQL store: its database leases the boards to every host
    ran = _sweep(environment(ctx), spec, store, resume, dry_run, json_out, cache_dir, device_wait, run_name, shard)
    if ran is not None and ran[1].failed and not allow_failures:
        run_id, outcome = ran
        raise EdgebenchError(f"{outcome.failed} of {len(outcome.results)} cells failed (their errors are above and in "
                             f"the store): fix them and retry only those with "
                             f"'{resume_command(spec, run_id, store, cache_dir, shard, run_name)}', or pass "
                             "--allow-failures to exit 0", ExitStatus.CELLS_FAILED)


def copy_demo(folder: Path) -> Path:
    """The bundled demo's files copied into ``folder`` (a file already there with other content is kept and
    refused, never overwritten); returns the spec's path."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for source in sorted(demo_dir().iterdir()):
            if source.name.startswith(("_", ".")):
                continue
            target = folder / source.name
            if not target.exists():
                shutil.copyfile(source, target)
            elif target.read_bytes() != source.read_bytes():
                raise EdgebenchError(f"{target} exists and is not the demo's {source.name}: pass another "
                                     "--dir or move it away", ExitStatus.USAGE)
    except OSError as exc:
        raise EdgebenchError(f"cannot copy the demo files into {folder}: {exc.strerror or exc}; pass a writable "
                             "--dir", ExitStatus.OUTPUT) from None
    return folder / "demo-sweep.yaml"


def demo(
    ctx: typer.Context,
    store: str = store_option(write=True),
    html: Path = typer.Option(Path(".edgebench/reports/demo.html"), "--html", callback=writable_file,
                              help="Where to write the report."),
    json_out: Path = typer.Option(Path(".edgebench/demo/results.json"), "--json", callback=writable_file,
                                  help="Where to write the results."),
    folder: Path = typer.Option(Path("edgebench-demo"), "--dir", callback=writable_folder,
                                help="Where the demo's model, data and spec are copied to (kept for use by hand)."),
) -> None:
    """Run the bundled demo sweep (digits CNN × fp32/fp16/int8/prune+int8 × onnx/openvino/tflite on this CPU)
    and write its HTML report."""
    env = environment(ctx)
    spec = copy_demo(folder)
    env.console.print(f"demo files (model, data, spec) in {folder}/")
    ran = _sweep(env, spec, store, resume=None, dry_run=False, json_out=json_out, cache_dir=None)
    run, results = load_run(store, None)
    md = html.with_suffix(".md")
    write_report(results, run, html, md)
    env.console.print(f"report written to {html} (summary: {md})")
    if ran is not None and ran[1].failed:  # the demo goes on past failures (a runtime not installed …) and says so
        env.console.print(f"[yellow]{ran[1].failed} of {len(ran[1].results)} cells failed[/yellow] (their errors "
                          "are above and in the report)")

