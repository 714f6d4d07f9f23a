"""The report's plots, drawn with matplotlib and embedded in the page as inline SVG (text kept as text, no
script, no font or image fetched), so the HTML stays one file that opens offline.

Every plotted cell carries a ``<title>`` (the browser's tooltip) with its exact figures. Ids are prefixed per
plot so that several SVGs in one page never share one. Colours name the format, the same in every plot.
"""

from __future__ import annotations

import io
import math
import re
from html import escape
from typing import Any, Callable, Sequence

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.typing import RcKeyType

from edgebench.report.data import Artifact, Cell, DeviceView, pareto_front

PALETTE = {"onnx": "#2563eb", "openvino": "#7c3aed", "tflite": "#059669", "tensorrt": "#65a30d"}
OTHERS = ("#db2777", "#0891b2", "#ca8a04", "#4b5563", "#dc2626")
BEST, INK, MUTE, GRID = "#ea580c", "#1f2937", "#6b7280", "#e5e7eb"
RC: dict[RcKeyType, Any] = {"svg.fonttype": "none", "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"],
                      "font.size": 8.5, "axes.edgecolor": "#9ca3af", "axes.labelcolor": INK, "xtick.color": MUTE,
                      "ytick.color": INK, "axes.titlesize": 10, "axes.titleweight": "bold"}
LABEL_PT = 7.5  # point labels' font size


def format_colours(formats: Sequence[str]) -> dict[str, str]:
    """A colour per format: the known ones fixed, others from a spare palette in order of appearance."""
    spare = iter(OTHERS * (len(formats) // len(OTHERS) + 1))
    return {f: PALETTE.get(f) or next(spare) for f in dict.fromkeys(formats)}


def _short(text: str, width: int = 46) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _tip(cell: Cell, metric: str | None) -> str:
    acc = f", {metric} {cell.accuracy:.1%}" if metric and cell.accuracy is not None else ""
    size = f", {cell.result.model.size_bytes / 1024:.1f} KiB" if cell.result.model.size_bytes else ""
    return f"{cell.label}\np50 {cell.p50:.4g} ms{acc}{size}" + (" — best" if cell.best else "")


def to_svg(fig: Figure, name: str, label: str, tips: dict[str, str]) -> str:
    """The figure as an inline ``<svg>``: ids prefixed with ``name``, a ``<title>`` first in each group whose
    gid is a key of ``tips``."""
    out = io.StringIO()
    salted: dict[RcKeyType, Any] = {**RC, "svg.hashsalt": name}
    with matplotlib.rc_context(salted):
        fig.savefig(out, format="svg", bbox_inches="tight", pad_inches=0.06, metadata={"Date": None})
    text = out.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text[text.index("<svg"):], flags=re.S)
    text = re.sub(r'(\bid="|url\(#|href="#)([^")]+)', lambda m: f"{m[1]}{name}-{m[2]}", text)
    for gid, tip in tips.items():
        text = text.replace(f'<g id="{name}-{gid}">', f'<g id="{name}-{gid}"><title>{escape(tip)}</title>', 1)
    return text.replace("<svg ", f'<svg class="plot" role="img" aria-label="{escape(label)}" ', 1)


def _log_axis(ax: Axes, lo: float, hi: float, which: str = "x") -> None:
    """A log axis over [lo, hi] padded, ticked at 1-2-5 and labelled in plain numbers (0.05, not 5×10⁻²)."""
    pad = (math.log10(hi) - math.log10(lo)) * 0.08 or 0.1
    limits = (10 ** (math.log10(lo) - pad), 10 ** (math.log10(hi) + pad))
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    (ax.set_xlim if which == "x" else ax.set_ylim)(*limits)
    decades = math.log10(limits[1] / limits[0])
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _place_labels(ax: Axes, points: Sequence[tuple[float, float, str, str]]) -> None:
    """Label each (x, y, text, colour) next to its point, trying offsets until the label stays inside the axes
    and overlaps neither an earlier label nor a point (ties such as fp32 and fp16 at the same speed and accuracy
    stack neatly); failing that, the first offset inside the axes."""
    to_px = ax.transData.transform
    dots = [to_px((x, y)) for x, y, _, _ in points]
    placed: list[tuple[float, float, float, float]] = []
    offsets = [(6, 3), (6, -10), (-6, 3), (-6, -10), (6, 14), (-6, 14), (6, -21), (-6, -21), (6, 25), (6, -32)]
    scale = ax.figure.dpi / 72

    def box(px: Any, dx: int, dy: int, width: float) -> tuple[float, float, float, float]:
        x0 = px[0] + dx * scale - (width if dx < 0 else 0)
        y0 = px[1] + dy * scale
        return x0, y0, x0 + width, y0 + LABEL_PT * scale * 1.1

    frame = ax.bbox.extents

    def inside(b: tuple[float, float, float, float]) -> bool:
        return frame[0] <= b[0] and b[2] <= frame[2] and frame[1] <= b[1] and b[3] <= frame[3]

    def clear(b: tuple[float, float, float, float]) -> bool:
        hits = not inside(b) or any(b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3] for o in placed)
        return not hits and not any(b[0] - 3 < d[0] < b[2] + 3 and b[1] - 3 < d[1] < b[3] + 3 for d in dots)

    for (x, y, text, colour), px in zip(points, dots):
        width = len(text) * LABEL_PT * 0.58 * scale
        dx, dy = next((o for o in offsets if clear(box(px, *o, width))),
                      next((o for o in offsets if inside(box(px, *o, width))), offsets[0]))
        placed.append(box(px, dx, dy, width))
        ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=LABEL_PT, color=colour,
                    ha="right" if dx < 0 else "left", va="bottom")


def point_names(cells: Sequence[Cell]) -> list[str]:
    """Short point labels: the recipe, with the model and the options only where they differ between these
    cells (the colour already names the format)."""
    models, options = len({c.model for c in cells}) > 1, len({c.options for c in cells}) > 1
    return [" · ".join(v for v in (c.model if models else "", c.recipe, c.options if options else "") if v)
            for c in cells]


def _front_line(ax: Axes, front: Sequence[tuple[float, float]]) -> None:
    if len(front) > 1:
        xs, ys = zip(*sorted(front))
        ax.step(xs, ys, where="post", color=INK, lw=1, ls=(0, (4, 3)), alpha=0.55, zorder=1)


def _scatter_panel(ax: Axes, cells: Sequence[Cell], y_of: Callable[[Cell], float], bigger_is_better: bool,
                   colours: dict[str, str], metric: str | None, tips: dict[str, str], prefix: str) -> None:
    """p50 (x) against ``y_of`` for each cell, coloured by format; the front dashed, the best ringed."""
    pts = [(c, _p50(c), y_of(c)) for c in cells]
    sign = 1 if bigger_is_better else -1
    front = pareto_front([(x, sign * y) for _, x, y in pts])
    _front_line(ax, [(x, y) for i, (_, x, y) in enumerate(pts) if i in front])
    labels = []
    names = point_names(cells)
    for i, (c, x, y) in enumerate(pts):
        if c.best:
            ax.plot([x], [y], "o", ms=13, mfc="none", mec=BEST, mew=2, zorder=3)
        (dot,) = ax.plot([x], [y], "o", ms=7, color=colours[c.format], mec="white", mew=0.8, zorder=4)
        dot.set_gid(f"{prefix}{i}")
        tips[f"{prefix}{i}"] = _tip(c, metric)
        if len(pts) <= 14 or i in front or c.best:
            labels.append((x, y, names[i] + (" ★" if c.best else ""), BEST if c.best else INK))
    _place_labels(ax, labels)
    ax.grid(True, color=GRID, lw=0.6)
    ax.set_axisbelow(True)


def _p50(cell: Cell) -> float:
    assert cell.p50 is not None  # the plots take measured cells only
    return cell.p50


def _measured(view: DeviceView) -> list[Cell]:
    return [c for c in view.cells if c.result.ok and c.p50]


def pareto_svg(views: Sequence[DeviceView], colours: dict[str, str]) -> str:
    """Per device (a row), p50 against accuracy and against artifact size, on axes shared by every device so
    that the devices compare at a glance; the latency axis is logarithmic when it spans more than 3×."""
    rows = [(v, _measured(v)) for v in views if _measured(v)]
    with_acc = any(c.accuracy is not None for _, cells in rows for c in cells)
    with_size = any(c.result.model.size_bytes for _, cells in rows for c in cells)
    panels = [p for p, on in (("accuracy", with_acc), ("size", with_size)) if on]
    if not rows or not panels:
        return ""
    tips: dict[str, str] = {}
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(5.9 * len(panels), 3.3 * len(rows) + 0.7))
        grid = fig.subplots(len(rows), len(panels), squeeze=False, sharex=True, sharey="col")
        fig.subplots_adjust(hspace=0.34, wspace=0.24, top=1 - 0.62 / fig.get_figheight())
        lat = [_p50(c) for _, cells in rows for c in cells]
        for col, panel in enumerate(panels):
            ax0 = grid[0][col]
            if max(lat) / min(lat) > 3:
                _log_axis(ax0, min(lat), max(lat))
            else:
                span = (max(lat) - min(lat)) or max(lat) * 0.2
                ax0.set_xlim(min(lat) - span * 0.12, max(lat) + span * 0.12)
            if panel == "size":
                sizes = [size / 1024 for _, cells in rows for c in cells if (size := c.result.model.size_bytes)]
                if max(sizes) / min(sizes) > 8:
                    _log_axis(ax0, min(sizes), max(sizes), "y")
                else:
                    ax0.set_ylim(0, max(sizes) * 1.15)
            else:
                accs = [c.accuracy * 100 for _, cells in rows for c in cells if c.accuracy is not None]
                span = (max(accs) - min(accs)) or 1.0
                ax0.set_ylim(min(accs) - span * 0.25, max(accs) + span * 0.35)
        for r, (view, cells) in enumerate(rows):
            metric = view.metric
            for col, panel in enumerate(panels):
                ax = grid[r][col]
                if panel == "accuracy":
                    scored = [c for c in cells if c.accuracy is not None]
                    _scatter_panel(ax, scored, lambda c: (c.accuracy or 0) * 100, True, colours, metric, tips,
                                   f"acc{r}-")
                    ax.set_ylabel(f"{metric or 'accuracy'} (%) ↑")
                    ax.set_title(f"{view.name}: latency vs {metric or 'accuracy'}", loc="left")
                else:
                    sized = [c for c in cells if c.result.model.size_bytes]
                    _scatter_panel(ax, sized, lambda c: (c.result.model.size_bytes or 0) / 1024, False, colours,
                                   metric, tips, f"size{r}-")
                    ax.set_ylabel("size (KiB) ↓")
                    ax.set_title(f"{view.name}: latency vs size", loc="left")
                ax.tick_params(labelbottom=True)
                ax.set_xlabel("p50 latency (ms) ← lower is better")
        handles = [Line2D([], [], ls="", marker="o", ms=7, color=c, label=f) for f, c in colours.items()]
        handles += [Line2D([], [], ls="", marker="o", ms=11, mfc="none", mec=BEST, mew=2, label="best"),
                    Line2D([], [], color=INK, ls=(0, (4, 3)), alpha=0.55, label="Pareto front")]
        fig.legend(handles=handles, loc="upper left", ncols=len(handles), frameon=False, bbox_to_anchor=(0.04, 1.0))
    return to_svg(fig, "pareto", "latency versus accuracy and size per device", tips)


def latency_svg(views: Sequence[DeviceView], colours: dict[str, str]) -> str:
    """Every measured cell's latency per iteration, all devices on one logarithmic axis: box q1–q3, median,
    whiskers p1–p99, the extremes as open dots, every 2nd percentile as small dots; the p50 printed right."""
    rows = [(v, [c for c in _measured(v) if c.distribution]) for v in views]
    rows = [(v, cells) for v, cells in rows if cells]
    if not rows:
        return ""
    tips: dict[str, str] = {}
    counts = [len(cells) for _, cells in rows]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(9.6, 0.27 * sum(counts) + 0.62 * len(rows) + 0.5))
        axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": counts})
        fig.subplots_adjust(hspace=0.5 * 10 / max(sum(counts), 10))
        values = [v for _, cells in rows for c in cells if (d := c.distribution) for v in (d.min, d.max)]
        _log_axis(axes[0][0], min(values), max(values))
        for r, (view, cells) in enumerate(rows):
            ax = axes[r][0]
            stats = []
            for c in cells:
                d = c.distribution
                assert d is not None
                stats.append({"med": d.median, "q1": d.q1, "q3": d.q3, "whislo": d.p1, "whishi": d.p99,
                              "fliers": [v for v in (d.min, d.max) if v < d.p1 or v > d.p99], "label": ""})
            ys = list(range(len(cells), 0, -1))
            art = ax.bxp(stats, positions=ys, orientation="horizontal", widths=0.6, patch_artist=True,
                         showfliers=True, flierprops={"marker": "o", "ms": 3, "mfc": "none", "mec": MUTE},
                         medianprops={"color": INK, "lw": 1.6}, whiskerprops={"color": MUTE},
                         capprops={"color": MUTE})
            for i, (c, y, patch) in enumerate(zip(cells, ys, art["boxes"])):
                d = c.distribution
                assert d is not None
                colour = colours[c.format]
                patch.set(facecolor=colour, alpha=0.35, edgecolor=colour, gid=f"box{r}-{i}")
                tips[f"box{r}-{i}"] = (f"{c.label}\nmin {d.min:.4g} · p1 {d.p1:.4g} · q1 {d.q1:.4g} · median "
                                       f"{d.median:.4g} · q3 {d.q3:.4g} · p99 {d.p99:.4g} · max {d.max:.4g} ms "
                                       f"({len(c.result.samples_ns)} samples)")
                ax.plot(d.dots, [y] * len(d.dots), "|", ms=4, color=colour, alpha=0.8)
                ax.annotate(f"{d.median:.3g}", (1, y), xycoords=("axes fraction", "data"), xytext=(5, 0),
                            textcoords="offset points", va="center", fontsize=LABEL_PT,
                            color=BEST if c.best else INK, weight="bold" if c.best else "normal")
            ax.set_yticks(ys, [_short(c.label) + (" ★" if c.best else "") for c in cells])
            for tick, c in zip(ax.get_yticklabels(), cells):
                tick.set_color(BEST if c.best else INK)
            ax.set_ylim(0.4, len(cells) + 0.6)
            ax.set_title(view.name, loc="left")
            ax.annotate("p50 ms", (1, 1), xycoords="axes fraction", xytext=(5, 2), textcoords="offset points",
                        fontsize=LABEL_PT, color=MUTE, va="bottom")
            ax.grid(True, axis="x", color=GRID, lw=0.6)
            ax.set_axisbelow(True)
        axes[-1][0].set_xlabel("latency per iteration (ms, log scale)")
    return to_svg(fig, "latency", "latency distributions per device", tips)


def size_svg(artifacts: Sequence[Artifact], colours: dict[str, str]) -> str:
    """Raw and gzip -9 size per artifact, the figure printed at each bar's end inside the plot."""
    rows = [a for a in artifacts if a.size_bytes]
    if not rows:
        return ""
    tips: dict[str, str] = {}
    kib = [(a.size_bytes or 0) / 1024 for a in rows]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7.2, 0.42 * len(rows) + 0.7))
        ax = fig.subplots()
        ys = list(range(len(rows), 0, -1))
        for i, (a, y, raw) in enumerate(zip(rows, ys, kib)):
            colour = colours.get(a.format, OTHERS[0])
            (bar,) = ax.barh([y + 0.19], [raw], height=0.36, color=colour, gid=f"size-{i}")
            tips[f"size-{i}"] = f"{a.model} · {a.recipe} · {a.format}: raw {a.size_bytes} B, gzip {a.gzip_bytes} B"
            ax.annotate(f"{raw:.1f} KiB", (raw, y + 0.19), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=LABEL_PT, color=INK)
            if a.gzip_bytes:
                gz = a.gzip_bytes / 1024
                ax.barh([y - 0.19], [gz], height=0.36, color=colour, alpha=0.4)
                ax.annotate(f"{gz:.1f} KiB gzip", (gz, y - 0.19), xytext=(3, 0), textcoords="offset points",
                            va="center", fontsize=LABEL_PT, color=MUTE)
        ax.set_yticks(ys, [_short(f"{a.model} · {a.recipe} · {a.format}") for a in rows])
        ax.set_xlim(0, max(kib) * 1.32)  # room for the longest bar's figure
        ax.set_ylim(0.4, len(rows) + 0.6)
        ax.set_xlabel("size (KiB): raw (solid), gzip -9 (light)")
        ax.grid(True, axis="x", color=GRID, lw=0.6)
        ax.set_axisbelow(True)
    return to_svg(fig, "sizes", "artifact sizes", tips)
