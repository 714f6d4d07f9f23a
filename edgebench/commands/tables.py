"""Rich tables for the terminal; the HTML and Markdown reports live in edgebench.report."""

from __future__ import annotations

from typing import Sequence

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from edgebench.report.data import int8_slowdowns, validity_problems
from edgebench.result import LayerProfile, Result


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


def profile_table(profile: LayerProfile, top: int = 15) -> Table | Text:
    """``bench --profile``'s top-N ops: op type, node, mean ms per inference, share of the profiled total and
    the precision (or kernel) it ran in; the caption names the profiler, the pass and any note. A runtime that
    could not profile: one line saying why."""
    if not profile.ops:
        return Text(f"no per-layer profile from {profile.source}: {profile.note or 'no ops reported'}", style="yellow")
    table = Table(title=f"per-layer profile: top {min(top, len(profile.ops))} of {len(profile.ops)} ops", show_lines=False)
    for col in ("op", "node", "ms", "%", "precision"):
        table.add_column(col, justify="right" if col in ("ms", "%") else "left", overflow="fold")
    for op in profile.ops[:top]:
        table.add_row(escape(op.op), escape(op.node), f"{op.ms:.4f}", f"{op.share:.1%}", escape(op.precision or "—"))
    shown = sum(op.share for op in profile.ops[:top])
    caption = [f"{escape(profile.source)}: mean of {profile.iterations} profiled inferences after the timed loop; "
               f"these {min(top, len(profile.ops))} ops: {shown:.1%} of the time"]
    if profile.note:
        caption.append(f"[yellow]{escape(profile.note)}[/yellow]")
    table.caption, table.caption_justify = "\n".join(caption), "left"
    return table


def energy_line(result: Result) -> str:
    """Energy per inference from the profile's power source, or why there is none ("" without a source)."""
    e = result.energy
    if e is None:
        return f"energy: none ({result.energy_note})" if result.energy_note else ""
    note = f" ({result.energy_note})" if result.energy_note else ""
    return (f"energy: {e.energy_mj_per_inference:.4g} mJ per inference from {e.source}: {e.avg_power_w:.3f} W over "
            f"the {e.window_s:.2f} s timed window, {e.idle_power_w:.3f} W idle, {e.samples} readings{note}")


def throughput_line(result: Result) -> str:
    """Throughput mode's figures beside the single-stream table: inferences/s, the latency under that load, the
    streams and requests that ran."""
    load = result.throughput
    if load is None:
        return ""
    single = f" (single stream: {result.throughput_per_s:.1f}/s)" if result.throughput_per_s else ""
    lat = load.latency_ms
    return (f"throughput: {load.inferences_per_s:.1f} inferences/s{single} with {load.requests} requests in flight "
            f"on {load.streams} streams over {load.duration_s:.2f} s; latency under load p50 {lat.p50:.3f} ms, "
            f"p90 {lat.p90:.3f} ms, p99 {lat.p99:.3f} ms")
