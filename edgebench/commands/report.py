"""`edgebench report`: the HTML page and Markdown summary of one stored run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgebench.commands.common import check_output, environment, store_option, writable_file
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.noise import store_floors
from edgebench.report import write_report
from edgebench.store.runs import load_run


def report(
    ctx: typer.Context,
    run: Optional[str] = typer.Argument(None, help="Run id or name (default: the newest run)."),
    last: bool = typer.Option(False, "--last", help="Report the newest run."),
    store: Path = store_option(),
    html: Optional[Path] = typer.Option(None, "--html", callback=writable_file, help="Write the HTML report here (default when neither "
                                        "--html nor --md: reports/run-ID.html next to the store)."),
    md: Optional[Path] = typer.Option(None, "--md", callback=writable_file, help="Write the Markdown summary here (default when neither "
                                      "--html nor --md: reports/run-ID.md beside the HTML)."),
    max_accuracy_drop: float = typer.Option(0.01, min=0, max=1, help="The best cell may lose at most this much "
                                            "accuracy (a fraction: 0.01 = 1 point) against the most accurate cell."),
) -> None:
    """Write a self-contained HTML report and/or a Markdown summary of a run."""
    if run is not None and last:
        raise EdgebenchError(f"pass a run ({run!r}) or --last, not both", ExitStatus.USAGE)
    info, results = load_run(store, run)
    if html is None and md is None:
        html = store.parent / "reports" / f"run-{info.id}.html"
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

