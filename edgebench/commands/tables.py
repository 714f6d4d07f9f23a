"""Rich tables for the terminal; the HTML and Markdown reports live in edgebench.report."""

from __future__ import annotations

from typing import Sequence

from rich.markup import escape
from rich.table import Table

from edgebench.report.data import int8_slowdowns, validity_problems
from edgebench.result import Result


def _num(value: float | None, fmt: str = "{:.3f}") -> str:
    return "—" if value is None else fmt.format(value)


def threads_text(result: Result) -> str:
    """The threads asked for, or for 0 (the runtime's default) ``default (N)`` with the N the runner reported
    the runtime used (``extra.threads_used``), where the runtime can say."""
    asked, used = result.options.get("threads"), result.extra.get("threads_used")
    if asked:
        return str(asked)
    if asked is None and used is None:
        return ""
    return "default" + (f" ({used})" if used is not None else "")


def result_table(results: Sequence[Result]) -> Table:
    table = Table(title="edgebench results", show_lines=False)
    for col in ("model", "recipe", "format", "device", "thr", "batch", "p50 ms", "p90 ms", "p99 ms", "rCV",
                "iters", "load ms", "first ms", "peak MB", "top-1", "valid"):
        table.add_column(col, justify="right" if col not in ("model", "recipe", "format", "device") else "left")
    errors: list[str] = []
    notes: list[str] = []
    for r, slower in zip(results, int8_slowdowns(results)):
        base = [str(r.model.name), str(r.model.recipe), str(r.model.format),
                str(r.device.profile), threads_text(r), str(r.batch)]
        if not r.ok:
            errors.append(f"[red]error {len(errors) + 1}[/red]: {escape(' '.join(base[:4]))}: "
                          f"{escape(r.error.message) if r.error else 'error'}")
            table.add_row(*base, f"[red]error {len(errors)}[/red]", *[""] * 9)
            continue
        lat = r.latency_ms
        p50, p90, p99, robust_cv = (lat.p50, lat.p90, lat.p99, lat.robust_cv) if lat else (None,) * 4
        problems = validity_problems(r)
        valid = "[yellow]no: " + escape(", ".join(problems)) + "[/yellow]" if problems else "ok"
        if slower is not None:
            valid += f", [yellow]{slower:.2f}× slower than fp32[/yellow]"
            notes.append(f"[yellow]{' '.join(base[:4])}: int8 runs {slower:.2f}× slower than fp32 here; "
                         "see docs/compression.md, 'When int8 is slower than fp32'[/yellow]")
        top1 = r.accuracy.top1
        table.add_row(*base, _num(p50), _num(p90), _num(p99),
                      _num(robust_cv, "{:.1%}"), str(r.iterations), _num(r.load_ms, "{:.1f}"),
                      _num(r.first_inference_ms, "{:.2f}"), _num(r.memory_mb.peak, "{:.1f}"),
                      _num(top1, "{:.1%}"), valid)
    if errors or notes:
        table.caption = "\n".join(errors + notes)
        table.caption_justify = "left"
    return table
