"""`edgebench report`: the HTML page and Markdown summary of one stored run, or (``--history``) the history of
each cell across the store's newest runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgebench.commands.common import check_output, environment, store_option, writable_file
from edgebench.config import GateSpec
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import atomic_write
from edgebench.pipeline.noise import store_floors
from edgebench.report import write_report
from edgebench.report.history import DEFAULT_RUNS, load_history
from edgebench.store.locate import reports_folder
from edgebench.store.runs import load_run
from edgebench.text import printable


def report(
    ctx: typer.Context,
    run: Optional[str] = typer.Argument(None, help="Run id or name (default: the newest run)."),
    last: bool = typer.Option(False, "--last", help="Report the newest run."),
    store: str = store_option(),
    html: Optional[Path] = typer.Option(None, "--html", callback=writable_file, help="Write the HTML report here (default when neither "
                                        "--html nor --md: reports/run-ID.html next to the store)."),
    md: Optional[Path] = typer.Option(None, "--md", callback=writable_file, help="Write the Markdown summary here (default when neither "
                                      "--html nor --md: reports/run-ID.md beside the HTML)."),
    max_accuracy_drop: float = typer.Option(0.01, min=0, max=1, help="The best cell may lose at most this much "
                                            "accuracy (a fraction: 0.01 = 1 point) against the most accurate cell."),
    history: bool = typer.Option(False, "--history", help="Plot each cell's p50 (with its 95% interval) and "
                                 "accuracy across the store's newest runs, marking the points the gate fails."),
    out: Optional[Path] = typer.Option(None, "--out", callback=writable_file, help="With --history: write it here, "
                                       "HTML or Markdown by the suffix (default: reports/history.html next to "
                                       "the store)."),
    runs: Optional[int] = typer.Option(None, "--runs", min=1, help="With --history: the newest this many runs that "
                                       f"hold a cell passing the filters (default {DEFAULT_RUNS})."),
    model: Optional[str] = typer.Option(None, "--model", help="With --history: only this model's cells."),
    device: Optional[str] = typer.Option(None, "--device", help="With --history: only this device's cells."),
) -> None:
    """Write a self-contained HTML report and/or a Markdown summary of a run, or of each cell across runs."""
    if history:
        _history(ctx, store, out, runs, model, device, run=run, last=last, html=html, md=md)
        return
    given = [f"--{name}" for name, value in (("out", out), ("runs", runs), ("model", model), ("device", device))
             if value is not None]
    if given:
        raise EdgebenchError(f"{', '.join(given)} go{'es' * (len(given) == 1)} with --history: add --history, or "
                             "use --html/--md for one run's report", ExitStatus.USAGE)
    if run is not None and last:
        raise EdgebenchError(f"pass a run ({run!r}) or --last, not both", ExitStatus.USAGE)
    info, results = load_run(store, run)
    if html is None and md is None:
        html = reports_folder(store) / f"run-{info.id}.html"
        md = html.with_suffix(".md")
        check_output(html, "the HTML report"), check_output(md, "the Markdown summary")
    data = write_report(results, info, html, md, max_accuracy_drop, store_floors(store))
    console = environment(ctx).console
    for view in data.devices:
        for cell in (c for c in view.cells if c.best):
            acc = f", {view.metric} {cell.accuracy:.1%}" if cell.accuracy is not None else ""
            console.print(f"best on {view.name}: {cell.label} (p50 {cell.p50:.4g} ms{acc})")
    for what, path in (("HTML report", html), ("Markdown summary", md)):
        if path:
            console.print(f"{what} written to {path}")


def _history(ctx: typer.Context, store: str, out: Optional[Path], runs: Optional[int], model: Optional[str],
             device: Optional[str], *, run: Optional[str], last: bool, html: Optional[Path],
             md: Optional[Path]) -> None:
    """``report --history``: one page over runs, so the options that pick or write one run's report are refused."""
    from edgebench.report.history_pages import render_history_html, render_history_markdown  # matplotlib

    if run is not None or last:
        what = f"run {run!r}" if run is not None else "--last"
        raise EdgebenchError(f"--history covers the newest runs, so it takes no {what}: drop it, or use --runs N "
                             "(and --model/--device) to choose what the history shows", ExitStatus.USAGE)
    if html is not None or md is not None:
        raise EdgebenchError("--history writes one file: pass --out FILE.html or --out FILE.md instead of "
                             "--html/--md", ExitStatus.USAGE)
    if out is None:
        out = check_output(reports_folder(store) / "history.html", "the history")
    assert out is not None  # check_output returns the path it is given
    if out.suffix.lower() not in (".html", ".htm", ".md"):
        raise EdgebenchError(f"--out {out}: name a .html or .md file (the suffix picks HTML or Markdown)",
                             ExitStatus.USAGE)
    env = environment(ctx)
    data = load_history(store, runs or DEFAULT_RUNS, model, device, GateSpec().for_ci(env.ci))
    page = render_history_markdown(data) if out.suffix.lower() == ".md" else render_history_html(data)
    atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    flagged = data.flagged
    lines = [f"history of {len(data.cells)} cells over {len(data.runs)} runs written to {out}: {len(flagged)} "
             f"point{'s' * (len(flagged) != 1)} the gate fails"]
    lines += [f"  {f.cell.label}: run {f.point.run.id} {f.check.metric} {f.change} ({f.check.verdict})"
              for f in flagged]
    for line in lines:
        env.console.print(printable(line), markup=False, highlight=False, soft_wrap=True)
