"""Inline SVG plots written by hand, so the report is one file that renders offline with no library.

Every mark carries a ``<title>`` (the browser's tooltip) with its exact figures; labels are drawn only
where they fit, so a plot of 50 cells stays readable.
"""

from __future__ import annotations

import math
from html import escape
from typing import Callable, Sequence

from edgebench.report.data import Artifact, Cell

BLUE, ORANGE, GREY, INK, GRID = "#2563eb", "#ea580c", "#9ca3af", "#1f2937", "#e5e7eb"
FONT = 'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif"'


def _step(lo: float, hi: float, count: int) -> float:
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k steps) inside [lo, hi]."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    step = _step(lo, hi, count)
    start = math.ceil(lo / step - 1e-9) * step
    return [round(start + i * step, 12) for i in range(int((hi - start) / step + 1e-9) + 1)]


def fmt(value: float) -> str:
    """Short tick/label text: 3 significant figures, no exponent for everyday latencies."""
    return f"{value:.3g}" if abs(value) < 1e5 else f"{value:.2e}"


def _span(values: Sequence[float], pad: float = 0.08) -> tuple[float, float]:
    """The values' range, padded, widened out to round ticks so that both ends of an axis are labelled."""
    lo, hi = min(values), max(values)
    width = (hi - lo) or (abs(hi) * 0.1 or 1.0)
    lo, hi = lo - width * pad, hi + width * pad
    step = _step(lo, hi, 5)
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'height="{height:.0f}" role="img" aria-label="{escape(label)}" {FONT} font-size="11">'
            + "".join(body) + "</svg>")


def _x_axis(lo: float, hi: float, x: Callable[[float], float], y0: float, y1: float, title: str,
            centre: float) -> list[str]:
    out = []
    for t in nice_ticks(lo, hi):
        if lo <= t <= hi:
            out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y0}" y2="{y1}" stroke="{GRID}"/>'
                       f'<text x="{x(t):.1f}" y="{y1 + 14}" text-anchor="middle" fill="#6b7280">{fmt(t)}</text>')
    out.append(f'<text x="{centre:.0f}" y="{y1 + 30}" text-anchor="middle" fill="{INK}">{escape(title)}</text>')
    return out


def pareto_svg(cells: Sequence[Cell], metric: str, width: int = 480, height: int = 330) -> str:
    """p50 latency (x, lower is better) against accuracy (y, higher is better); the front is the staircase."""
    # (cell, p50 ms, accuracy %): the cells that have both
    pts = [(c, c.p50, c.accuracy * 100) for c in cells if c.accuracy is not None and c.p50 is not None]
    if not pts:
        return ""
    left, right, top, bottom = 58, 18, 14, 46
    x_lo, x_hi = _span([p for _, p, _ in pts])
    y_lo, y_hi = _span([a for _, _, a in pts])
    x = lambda v: left + (v - x_lo) / (x_hi - x_lo) * (width - left - right)  # noqa: E731
    y = lambda v: height - bottom - (v - y_lo) / (y_hi - y_lo) * (height - top - bottom)  # noqa: E731
    body = _x_axis(x_lo, x_hi, x, top, height - bottom, "p50 latency (ms) — lower is better",
                   (left + width - right) / 2)
    for t in nice_ticks(y_lo, y_hi):
        if y_lo <= t <= y_hi:
            body.append(f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="{GRID}"/>'
                        f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end" fill="#6b7280">{fmt(t)}</text>')
    body.append(f'<text transform="translate(14 {(height - bottom + top) / 2:.0f}) rotate(-90)" text-anchor="middle" '
                f'fill="{INK}">{escape(metric)} (%) — higher is better</text>')
    front = sorted((pt for pt in pts if pt[0].on_front), key=lambda pt: pt[1])
    if len(front) > 1:
        path = [f"M{x(front[0][1]):.1f},{y(front[0][2]):.1f}"]
        for _, p50, acc in front[1:]:
            path.append(f"H{x(p50):.1f}V{y(acc):.1f}")
        body.append(f'<path d="{"".join(path)}" fill="none" stroke="{BLUE}" stroke-width="1.5" '
                    'stroke-dasharray="5 3"/>')
    for c, p50, acc in sorted(pts, key=lambda pt: (pt[0].on_front, pt[0].best)):
        cx, cy = x(p50), y(acc)
        colour = ORANGE if c.best else BLUE if c.on_front else GREY
        tip = f"{c.label}\np50 {p50:.4g} ms, {metric} {acc / 100:.1%}" + (" — best" if c.best else "")
        ring = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="9" fill="none" stroke="{ORANGE}" stroke-width="2"/>' \
            if c.best else ""
        body.append(f'<g><title>{escape(tip)}</title>{ring}<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" '
                    f'fill="{colour}" stroke="white" stroke-width="1"/></g>')
    labelled = front if len(front) <= 10 else [pt for pt in front if pt[0].best]
    for i, (c, p50, acc) in enumerate(labelled):
        cx, cy = x(p50), y(acc) + (-12 if i % 2 == 0 else 20)
        anchor = "end" if cx > width * 0.6 else "start"
        text = " · ".join(v for v in (c.recipe, c.format, c.options) if v)
        body.append(f'<text x="{cx + (-8 if anchor == "end" else 8):.1f}" y="{cy:.1f}" text-anchor="{anchor}" '
                    f'fill="{ORANGE if c.best else INK}">{escape(text)}</text>')
    return _svg(width, height, body, f"latency versus {metric}")


def box_svg(cells: Sequence[Cell], width: int = 620) -> str:
    """One row per cell: whiskers p1–p99, box q1–q3, median bar, and dots at every 2nd percentile."""
    rows = [(c, c.distribution) for c in cells if c.distribution is not None]
    if not rows:
        return ""
    label_w, right, top, row_h = 236, 54, 8, 24
    height = top + row_h * len(rows) + 40
    lo, hi = _span([v for _, d in rows for v in (d.p1, d.p99)], pad=0.05)
    lo = max(lo, 0.0)
    x = lambda v: label_w + (min(max(v, lo), hi) - lo) / (hi - lo) * (width - label_w - right)  # noqa: E731
    body = _x_axis(lo, hi, x, top, height - 40, "latency per iteration (ms)",
                   (label_w + width - right) / 2)
    for i, (c, d) in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        name = c.label if len(c.label) <= 40 else c.label[:39] + "…"
        colour = ORANGE if c.best else BLUE
        tip = (f"{c.label}\nmin {d.min:.4g} · p1 {d.p1:.4g} · q1 {d.q1:.4g} · median {d.median:.4g} · "
               f"q3 {d.q3:.4g} · p99 {d.p99:.4g} · max {d.max:.4g} ms ({len(c.result.samples_ns)} samples)")
        row = [f'<rect x="0" y="{cy - row_h / 2:.1f}" width="{width}" height="{row_h}" fill="#fff7ed"/>'
               if c.best else "",
               f'<text x="{label_w - 8}" y="{cy + 4:.1f}" text-anchor="end" fill="{INK}">{escape(name)}</text>',
               f'<line x1="{x(d.p1):.1f}" x2="{x(d.p99):.1f}" y1="{cy}" y2="{cy}" stroke="{INK}"/>',
               *(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{cy - 5}" y2="{cy + 5}" stroke="{INK}"/>'
                 for v in (d.p1, d.p99)),
               f'<rect x="{x(d.q1):.1f}" y="{cy - 7}" width="{max(x(d.q3) - x(d.q1), 1):.1f}" height="14" '
               f'fill="{colour}" fill-opacity="0.18" stroke="{colour}"/>',
               *(f'<circle cx="{x(v):.1f}" cy="{cy}" r="1.6" fill="{colour}" fill-opacity="0.6"/>' for v in d.dots),
               f'<line x1="{x(d.median):.1f}" x2="{x(d.median):.1f}" y1="{cy - 8}" y2="{cy + 8}" '
               f'stroke="{colour}" stroke-width="2.5"/>']
        if d.max > hi:
            row.append(f'<text x="{width - right + 4}" y="{cy + 4:.1f}" fill="#6b7280">▸ {fmt(d.max)}</text>')
        body.append(f"<g><title>{escape(tip)}</title>{''.join(row)}</g>")
    return _svg(width, height, body, "latency distributions")


def size_svg(artifacts: Sequence[Artifact], width: int = 560) -> str:
    """Raw and gzip size per artifact on one byte axis: what a download or an OTA update costs."""
    rows = [(a, a.size_bytes) for a in artifacts if a.size_bytes]
    if not rows:
        return ""
    label_w, right, top, row_h = 190, 70, 8, 30
    height = top + row_h * len(rows) + 40
    hi = max(size for _, size in rows) * 1.05
    x = lambda v: label_w + v / hi * (width - label_w - right)  # noqa: E731
    kb = lambda v: f"{v / 1024:.1f} KiB" if v < 1 << 20 else f"{v / (1 << 20):.2f} MiB"  # noqa: E731
    body = _x_axis(0, hi / 1024, lambda v: x(v * 1024), top, height - 40, "size (KiB): raw, gzip",
                   (label_w + width - right) / 2)
    for i, (a, size) in enumerate(rows):
        y0 = top + row_h * i + 4
        name = " · ".join((a.model, a.recipe, a.format))
        body.append(f'<g><title>{escape(name)}: raw {size} B, gzip {a.gzip_bytes} B</title>'
                    f'<text x="{label_w - 8}" y="{y0 + 14}" text-anchor="end" fill="{INK}">'
                    f'{escape(name if len(name) <= 30 else name[:29] + "…")}</text>'
                    f'<rect x="{label_w}" y="{y0}" width="{x(size) - label_w:.1f}" height="10" fill="{BLUE}"/>'
                    f'<text x="{x(size) + 4:.1f}" y="{y0 + 9}" fill="#374151">{kb(size)}</text>')
        if a.gzip_bytes:
            body.append(f'<rect x="{label_w}" y="{y0 + 12}" width="{x(a.gzip_bytes) - label_w:.1f}" height="10" '
                        f'fill="{BLUE}" fill-opacity="0.35"/>'
                        f'<text x="{x(a.gzip_bytes) + 4:.1f}" y="{y0 + 21}" fill="#6b7280">'
                        f'{kb(a.gzip_bytes)} gz</text>')
        body.append("</g>")
    return _svg(width, height, body, "artifact sizes")
