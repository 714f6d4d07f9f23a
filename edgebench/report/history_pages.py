"""The history as pages: HTML (one small matplotlib plot per cell, inline SVG like the run report, so the file
opens offline) and Markdown (the table of cells × runs, for a job summary). Both list the points the gate
fails, so a red dot can be traced to its metric, its baseline run and its change."""

from __future__ import annotations

import math
from html import escape

from matplotlib import rc_context
from matplotlib.figure import Figure

from edgebench.report.history import CellHistory, History, Point, commit_tag, run_tick
from edgebench.report.html import CSS
from edgebench.report.plots import GRID, INK, MUTE, RC, to_svg
from edgebench.text import markdown_text

LINE, BAD, ACCURACY = "#2563eb", "#dc2626", "#059669"
HISTORY_CSS = """.cells{display:flex;flex-wrap:wrap;gap:14px 22px;margin-top:10px}
table.flagged td,table.flagged th,table.runs td,table.runs th{text-align:left;white-space:normal}
td.bad{color:var(--bad);font-weight:600}"""


def _tip(cell: CellHistory, point: Point) -> str:
    commit = commit_tag(point.run)
    head = (f"{cell.label}\nrun {point.run.id} ({point.run.name}, {point.run.created_utc}"
            f"{', commit ' + commit if commit else ''})")
    if point.result is not None and not point.result.ok:
        err = point.result.error
        head += f"\nerror: {err.kind}: {err.message}" if err is not None else "\nerror"
    elif point.p50 is not None:
        band = point.band
        head += f"\np50 {point.p50:.4g} ms" + (f" (95% CI {band[0]:.4g}–{band[1]:.4g})" if band else "")
        accuracy = point.accuracy(cell.metric)
        head += f", {cell.metric} {accuracy:.1%}" if accuracy is not None else ""
    if point.baseline is not None:
        verdicts = "; ".join(f"{c.metric} {c.verdict}" for c in point.checks if c.verdict != "pass") or "pass"
        head += f"\ngate against run {point.baseline.id}: {verdicts}"
    return head


def _limits(values: list[float], min_span: float, floor: float | None = None,
            ceiling: float | None = None) -> tuple[float, float]:
    """Axis limits around ``values``, at least ``min_span`` wide: a steady history must look flat, not like
    noise magnified to fill the axis."""
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.15, (min_span - (hi - lo)) / 2, 0.0)
    lo, hi = lo - pad, hi + pad
    return (lo if floor is None else max(floor, lo)), (hi if ceiling is None else min(ceiling, hi))


def cell_svg(cell: CellHistory, index: int, ticks: list[str]) -> str:
    """p50 per run with its 95 % interval (a bar per point, shaded between neighbours), the accuracy on the
    right axis; what the gate fails in red (the p50 dot, or the accuracy mark for an accuracy check), a run
    whose cell failed a red × on the axis; a run without the cell: a gap."""
    n = len(cell.points)
    nan = math.nan
    p50 = [p.p50 if p.p50 is not None else nan for p in cell.points]
    bands = [p.band or (nan, nan) for p in cell.points]
    tips: dict[str, str] = {}
    with rc_context({**RC, "font.size": 7.5}):
        fig = Figure(figsize=(max(3.4, 1.5 + 0.3 * n), 2.5))
        ax = fig.subplots()
        xs = list(range(n))
        ax.fill_between(xs, [b[0] for b in bands], [b[1] for b in bands], color=LINE, alpha=0.15, lw=0)
        ax.vlines(xs, [b[0] for b in bands], [b[1] for b in bands], color=LINE, lw=1, alpha=0.6)
        ax.plot(xs, p50, "-", color=LINE, lw=1.2)
        for i, point in enumerate(cell.points):
            if point.p50 is not None:
                bad = point.failed_other
                (dot,) = ax.plot([i], [point.p50], "o", ms=7 if bad else 4.5, color=BAD if bad else LINE,
                                 mec="white", mew=0.6, zorder=4)
            elif point.result is not None:  # an error: nothing to plot but that it failed
                (dot,) = ax.plot([i], [0.04], "x", ms=7, mew=1.6, color=BAD, zorder=4,
                                 transform=ax.get_xaxis_transform(), clip_on=False)
            else:
                continue
            dot.set_gid(f"pt{i}")
            tips[f"pt{i}"] = _tip(cell, point)
        shown = [v for v in p50 + [b for pair in bands for b in pair] if not math.isnan(v)]
        if shown:
            ax.set_ylim(*_limits(shown, 0.1 * max(shown), floor=0.0))
            ax.set_ylabel("p50 ms", color=LINE)
        else:
            ax.set_yticks([])
            ax.text(0.5, 0.5, "no measurement in these runs", transform=ax.transAxes, ha="center", color=MUTE)
        ax.set_xlim(-0.5, n - 0.5)
        upright = n > 6  # ids and commits side by side, turned to fit; a few runs: the commit under the id
        ax.set_xticks(xs, ticks if upright else [t.replace(" ", "\n", 1) for t in ticks], fontsize=6.5, color=MUTE,
                      rotation=90 if upright else 0)
        ax.grid(True, axis="y", color=GRID, lw=0.6)
        ax.set_axisbelow(True)
        accuracy = [(a * 100 if (a := p.accuracy(cell.metric)) is not None else nan) for p in cell.points]
        if cell.metric is not None and any(not math.isnan(a) for a in accuracy):
            right = ax.twinx()
            right.plot(xs, accuracy, "--", lw=0.9, color=ACCURACY, alpha=0.85)
            for i, (point, value) in enumerate(zip(cell.points, accuracy)):
                bad = point.failed_accuracy
                right.plot([i], [value], "s", ms=6 if bad else 3, color=BAD if bad else ACCURACY, zorder=4)
            right.set_ylim(*_limits([a for a in accuracy if not math.isnan(a)], 4.0, 0.0, 100.0))
            right.set_ylabel(f"{cell.metric} %", color=ACCURACY)
            right.tick_params(axis="y", colors=ACCURACY)
        ax.set_title(cell.label if len(cell.label) <= 70 else cell.label[:69] + "…", loc="left", fontsize=8.5,
                     color=INK)
    return to_svg(fig, f"cell{index}", f"history of {cell.label}", tips)


def _flagged_rows(history: History) -> str:
    rows = []
    for f in history.flagged:
        base = f.point.baseline
        rows.append(f"<tr><td>{escape(f.cell.label)}</td><td>{escape(run_tick(f.point.run))}</td>"
                    f"<td>{escape(run_tick(base)) if base else '—'}</td><td>{escape(f.check.metric)}</td>"
                    f'<td class="bad">{escape(f.change)}</td><td class="bad">{escape(f.check.verdict)}</td>'
                    f"<td>{escape(f.check.message)}</td></tr>")
    if not rows:
        return '<p class="empty">The gate fails no point of this history.</p>'
    return ('<table class="flagged"><thead><tr><th>cell</th><th>run</th><th>against run</th><th>metric</th>'
            f"<th>change</th><th>gate verdict</th><th>note</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _runs_table(history: History) -> str:
    rows = "".join(f"<tr><td>{run.id}</td><td>{escape(run.name)}</td><td>{escape(run.created_utc)}</td>"
                   f"<td>{escape(run.status)}</td><td>{escape(commit_tag(run) or '—')}</td>"
                   f"<td>{escape(run.edgebench_version)}</td></tr>" for run in history.runs)
    return ('<table class="runs"><thead><tr><th>run</th><th>name</th><th>started (UTC)</th><th>status</th>'
            f"<th>commit</th><th>edgebench</th></tr></thead><tbody>{rows}</tbody></table>")


def _title(history: History) -> str:
    return f"edgebench history: {history.store}" + (f" ({history.filters})" if history.filters else "")


def _scope(history: History) -> str:
    runs = history.runs
    span = f"run {runs[0].id}" if len(runs) == 1 else f"runs {runs[0].id}–{runs[-1].id} ({len(runs)} runs)"
    return (f"{span}, oldest first, {len(history.cells)} cells. Each point is judged by the gate (its default "
            "rules and the device's noise floor between the store's runs) against the same cell's previous "
            "measurement here" + (": one run, so nothing is judged yet." if len(runs) == 1 else "."))


def render_history_html(history: History) -> str:
    ticks = [run_tick(r) for r in history.runs]
    figures = "".join(f"<figure>{cell_svg(cell, i, ticks)}</figure>" for i, cell in enumerate(history.cells))
    flagged = history.flagged
    title = _title(history)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
            f"<style>{CSS}{HISTORY_CSS}</style></head><body><main><header><h1>{escape(title)}</h1>"
            f'<p class="meta">{escape(_scope(history))}</p></header>'
            '<section id="cells"><h2>p50 and accuracy per run</h2><p class="sub">Blue: p50 latency (ms) with the '
            "95% confidence interval of the median from the raw samples; green, right axis: accuracy. Red: a point "
            "the gate fails against the cell's previous measurement; × on the axis: the cell failed in that run; a "
            "gap: the run did not measure it. x: run id and commit (+: uncommitted changes). Hover a point for its "
            f'figures.</p><div class="cells">{figures}</div></section>'
            f'<section id="regressions"><h2>Gated regressions ({len(flagged)})</h2>{_flagged_rows(history)}'
            f'</section><section id="runs"><h2>Runs</h2>{_runs_table(history)}</section>'
            f"<footer>Generated {escape(history.generated_utc)} by edgebench. Latencies are per iteration, "
            "percentiles by nearest rank over the raw samples.</footer></main></body></html>\n")


def _md_point(cell: CellHistory, point: Point) -> str:
    if point.result is None:
        return "—"
    if not point.result.ok:
        return "**error ✗**" if point.failed else "error"
    text = f"{point.p50:.3g}" if point.p50 is not None else "—"
    accuracy = point.accuracy(cell.metric)
    text += f" · {accuracy:.1%}" if accuracy is not None else ""
    return f"**{text} ✗**" if point.failed else text


def render_history_markdown(history: History) -> str:
    heads = [f"{r.id} `{commit_tag(r)}`" if commit_tag(r) else str(r.id) for r in history.runs]
    lines = [f"# {markdown_text(_title(history))}", "", markdown_text(_scope(history)), "",
             "p50 ms per run, then the accuracy where measured; ✗ the gate fails the point; — not measured in that "
             "run.",
             "", "| cell | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]
    for cell in history.cells:
        lines.append(f"| {markdown_text(cell.label)} | " + " | ".join(_md_point(cell, p) for p in cell.points) + " |")
    flagged = history.flagged
    lines += ["", f"## Gated regressions ({len(flagged)})", ""]
    if not flagged:
        return "\n".join(lines + ["The gate fails no point of this history.", ""])
    lines += ["| cell | run | against run | metric | change | gate verdict |", "|---|---|---|---|---:|---|"]
    for f in flagged:
        base = f.point.baseline
        lines.append(f"| {markdown_text(f.cell.label)} | {run_tick(f.point.run)} | "
                     f"{run_tick(base) if base else '—'} | {f.check.metric} | {f.change} | {f.check.verdict} |")
    return "\n".join(lines + [""])
