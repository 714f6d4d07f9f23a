"""Reports of a run: a self-contained HTML page and a Markdown summary, both built from the same
:class:`~edgebench.report.data.ReportData` so they never disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from edgebench.files import atomic_write
from edgebench.pipeline.noise import NoiseFloor
from edgebench.report.data import ReportData, build_report
from edgebench.report.html import render_html
from edgebench.report.markdown import render_markdown
from edgebench.result import Result
from edgebench.store.base import RunInfo

__all__ = ["ReportData", "build_report", "render_html", "render_markdown", "write_report"]


def _write(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_report(results: Sequence[Result], run: RunInfo | None = None, html: Path | None = None,
                 markdown: Path | None = None, max_accuracy_drop: float = 0.01,
                 floors: Mapping[str, NoiseFloor] | None = None) -> ReportData:
    """Write the HTML and/or Markdown report; returns the data they show (for a terminal summary). ``floors``:
    each device's noise floor between the store's runs (``pipeline/noise.py``), shown per device."""
    data = build_report(results, run, max_accuracy_drop, floors=floors)
    if html:
        _write(html, render_html(data))
    if markdown:
        _write(markdown, render_markdown(data))
    return data
