"""The HTML of the measurements a result carries only when asked for: throughput under load (``--mode
throughput``), energy per inference (a device profile's ``power``) and per-layer profiles (``--profile``).
Each shows up only where some result of the report has it; an absent figure reads "—" with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Callable, Sequence

from edgebench.report.data import Cell, DeviceView
from edgebench.result import Result

TOP_OPS = 10  # rows of a per-layer table


@dataclass(frozen=True)
class Column:
    head: str
    tip: str
    value: Callable[[Result], tuple[str, str]]  # (text, its tooltip)


def _throughput(r: Result) -> tuple[str, str]:
    t = r.throughput
    if t is None:
        return "—", "not measured in throughput mode"
    return f"{t.inferences_per_s:,.0f}", f"{t.streams} streams, {t.requests} requests in flight, {t.duration_s:.3g} s"


def _load_p50(r: Result) -> tuple[str, str]:
    t = r.throughput
    return ("—", "") if t is None else (f"{t.latency_ms.p50:.4g}", f"p99 {t.latency_ms.p99:.4g} ms under load")


def _energy(r: Result) -> tuple[str, str]:
    e = r.energy
    if e is None:
        return "—", r.energy_note or "no power source declared in the device profile"
    return f"{e.energy_mj_per_inference:.3g}", f"{e.source}: {e.samples} samples over {e.window_s:.3g} s"


def _power(r: Result) -> tuple[str, str]:
    e = r.energy
    return ("—", "") if e is None else (f"{e.avg_power_w:.3g}", f"idle {e.idle_power_w:.3g} W before the window")


THROUGHPUT = (Column("load inf/s", "inferences per second with several requests in flight (--mode throughput)",
                     _throughput),
              Column("load p50 ms", "median latency of the requests completed under that load", _load_p50))
ENERGY = (Column("mJ/inf", "energy per inference: (average − idle power) × window / iterations", _energy),
          Column("avg W", "average power over the timed window (the device's own sensor)", _power))


def columns(cells: Sequence[Cell]) -> list[Column]:
    """The optional columns some of these cells have figures (or a reason) for."""
    results = [c.result for c in cells]
    out = list(THROUGHPUT) if any(r.throughput is not None for r in results) else []
    if any(r.energy is not None or r.energy_note for r in results):
        out += ENERGY
    return out


def matrix_lines(r: Result) -> str:
    """The throughput and energy figures under a matrix cell's p50, when the result has them."""
    out = ""
    if r.throughput is not None:
        t = r.throughput
        out += (f'<span class="delta same">{t.inferences_per_s:,.0f} inf/s '
                f'({t.streams}×{t.requests})</span>')
    if r.energy is not None:
        out += f'<span class="delta same">{r.energy.energy_mj_per_inference:.3g} mJ/inf</span>'
    return out


def _profile_table(cell: Cell) -> str:
    p = cell.result.profile
    if p is None:
        return ""
    head = (f"<h3>{escape(cell.label)} — {escape(p.source)}"
            + (f", {p.iterations} profiled inferences" if p.iterations else "") + "</h3>")
    if not p.ops:
        return f'<div class="ops">{head}<p class="empty">{escape(p.note or "no per-layer times")}</p></div>'
    rows = "".join(
        f"<tr><td>{escape(op.op)}</td><td title=\"{escape(op.node)}\">{escape(_clip(op.node))}</td>"
        f"<td>{op.ms:.4g}</td><td><span class=\"share\" style=\"width:{op.share * 60:.0f}px\"></span>"
        f"{op.share:.1%}</td><td>{escape(op.precision or '—')}</td></tr>" for op in p.ops[:TOP_OPS])
    more = f"<p class=\"sub\">{len(p.ops) - TOP_OPS} more ops not shown.</p>" if len(p.ops) > TOP_OPS else ""
    note = f'<p class="sub">{escape(p.note)}</p>' if p.note else ""
    return (f'<div class="ops">{head}<table><thead><tr><th>op</th><th>node</th><th>ms</th><th>share</th>'
            f"<th>precision</th></tr></thead><tbody>{rows}</tbody></table>{more}{note}</div>")


def _clip(text: str, width: int = 38) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def profiles(view: DeviceView) -> str:
    """The top ops of each profiled cell of a device (the runtime's own profiler, mean ms per inference)."""
    tables = "".join(_profile_table(c) for c in view.cells if c.result.ok)
    return (f'<h3>Per-layer profile: top {TOP_OPS} ops per cell (mean ms per inference, share of the profiled '
            f'total, the precision or kernel it ran in)</h3><div class="plots">{tables}</div>' if tables else "")
