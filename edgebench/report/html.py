"""The HTML report: one self-contained file (inline CSS and SVG drawn by matplotlib, no script, no network)
that a CI job can keep as an artifact and anyone can open offline. It opens with the answer — the best pick
per device and model with its caveats, then the device × variant matrix — and the detail follows."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from edgebench.report import measures
from edgebench.report.data import Cell, DeviceView, MatrixRow, ReportData

CSS = """
:root{--ink:#1f2937;--mute:#6b7280;--line:#e5e7eb;--blue:#2563eb;--best:#ea580c;--bad:#dc2626;--warn:#b45309}
*{box-sizing:border-box}body{margin:0;background:#f8fafc;color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1240px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:0 0 2px}h3{font-size:14px;margin:14px 0 6px;color:var(--mute)}
.meta,.sub{color:var(--mute);margin:0 0 12px}section{background:#fff;border:1px solid var(--line);border-radius:10px;
padding:18px 20px;margin:18px 0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:14px;align-items:flex-start}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:10px 14px;min-width:130px}
.card b{display:block;font-size:20px}
.card.best{border-color:var(--best);min-width:260px}.card.best b{font-size:15px;color:var(--best)}
table{border-collapse:collapse;width:100%;font-size:12px;font-variant-numeric:tabular-nums}
th,td{padding:4px 6px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:#f1f5f9;font-weight:600;position:sticky;top:0}th:first-child,td:first-child{text-align:left}
th:nth-child(-n+5),td:nth-child(-n+5){text-align:left}td.mark{font-size:15px;padding:0 2px 0 6px}
td.mark.best{color:var(--best)}td.mark.front{color:var(--blue)}
tr.best td{background:#fff7ed}tr.err td{background:#fef2f2}
.tag{display:inline-block;border-radius:9px;padding:0 7px;font-size:11px;font-weight:600;margin-left:4px}
.tag.best{background:var(--best);color:#fff}.tag.ok{background:#dcfce7;color:#166534}
.tag.warn{background:#fef3c7;color:var(--warn)}.tag.err{background:#fee2e2;color:var(--bad)}
.tag.front{background:#dbeafe;color:#1e40af}td.msg{color:var(--bad);text-align:left;white-space:normal}
td:last-child{white-space:normal;min-width:110px}th{white-space:normal}
.plots{display:flex;flex-wrap:wrap;gap:20px;align-items:flex-start;margin-top:12px}
figure{margin:0;display:table}
figcaption{display:table-caption;caption-side:bottom;color:var(--mute);font-size:12px;padding-top:4px}
.empty{color:var(--mute);font-style:italic}dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}
dt{color:var(--mute)}dd{margin:0}pre{background:#f1f5f9;padding:10px;border-radius:6px;overflow:auto;font-size:12px}
footer{color:var(--mute);font-size:12px}svg.plot{max-width:100%;height:auto}
table.matrix td,table.matrix th{text-align:center;white-space:nowrap;padding:5px 10px}
table.matrix td:first-child,table.matrix th:first-child{text-align:left}
table.matrix td b{font-size:14px}.delta{display:block;font-size:11px}.faster{color:#15803d}.slower{color:var(--bad)}
.same{color:var(--mute)}td.best-cell{box-shadow:inset 0 0 0 2px var(--best)}
ul.caveats{margin:6px 0 0;padding-left:18px;font-size:12px}ul.caveats li.warn{color:var(--warn)}
ul.caveats li.ok{color:#166534}.card.best{max-width:520px}.swatch{display:inline-block;width:9px;height:9px;
border-radius:50%;margin-right:5px}.ops{min-width:420px}.ops table{width:auto}
.share{display:inline-block;height:8px;background:var(--blue);opacity:.5;margin-right:4px;vertical-align:middle}
"""


def _n(value: Any, spec: str = ".3g", suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def _text(value: Any) -> str:
    return "—" if value in (None, "", {}, []) else str(value)


def _kib(value: int | None) -> str:
    return "—" if not value else f"{value / 1024:.1f} KiB"


def _mark(cell: Cell) -> str:
    if cell.best:
        return '<td class="mark best" title="best cell on this device">★</td>'
    if cell.on_front:
        return '<td class="mark front" title="on the Pareto front">◆</td>'
    return "<td></td>"


def _validity(cell: Cell) -> str:
    problems = cell.problems
    notes = "".join(f'<span class="tag warn" title="int8 is picked for speed; this one is not faster">'
                    f'{escape(n)}</span>' for n in cell.notes)
    if not problems:
        return '<span class="tag ok">valid</span>' + notes
    return "".join(f'<span class="tag warn" title="validity flag failed">{escape(p)}</span>'
                   for p in problems) + notes


COLUMNS = ("", "model", "recipe", "format", "options", "p50 ms", "p99 ms", "rCV", "iters", "load ms", "first ms",
           "inf/s", "peak MB", "size gzip", "accuracy", "validity")

HEAD_TIPS = {"rCV": ' title="robust CV: 1.4826·MAD / median (what the cv_ok flag judges)"',
             "inf/s": ' title="inferences per second (batch / mean latency)"',
             "peak MB": ' title="peak resident memory of the runner process (VmHWM)"'}


def _row(cell: Cell, extra: list[measures.Column]) -> str:
    r = cell.result
    name = _mark(cell) + "".join(f"<td>{escape(v)}</td>" for v in (cell.model, cell.recipe, cell.format, cell.options))
    if not r.ok:
        return (f'<tr class="err">{name}<td class="msg" colspan="{len(COLUMNS) + len(extra) - 5}">'
                f'<span class="tag err">error</span> '
                f'{escape(cell.error)}</td></tr>')
    lat = r.latency_ms
    p50, p99, robust_cv = (lat.p50, lat.p99, lat.robust_cv) if lat else (None, None, None)
    cols = [_n(p50, ".4g"), _n(p99, ".4g"),
            _n(robust_cv, ".1%"), str(r.iterations), _n(r.load_ms, ".1f"), _n(r.first_inference_ms, ".3g"),
            _n(r.throughput_per_s, ",.0f"), _n(r.memory_mb.peak, ".1f"),
            f'{_kib(r.model.size_bytes)}<br>{_kib(r.model.gzip_bytes)}', _n(cell.accuracy, ".1%")]
    more = "".join(f'<td title="{escape(tip)}">{escape(text)}</td>' for text, tip in (c.value(r) for c in extra))
    css = ' class="best"' if cell.best else ""
    return (f"<tr{css}>{name}" + "".join(f"<td>{c}</td>" for c in cols) + f"{more}<td>{_validity(cell)}</td></tr>")


def _device(view: DeviceView, data: ReportData) -> str:
    env = view.environment
    metric = view.metric or "accuracy"
    extra = measures.columns(view.cells)
    head = "".join(f"<th{HEAD_TIPS.get(c, '')}>{escape(metric if c == 'accuracy' else c)}</th>" for c in COLUMNS[:-1])
    head += "".join(f'<th title="{escape(c.tip)}">{escape(c.head)}</th>' for c in extra) + "<th>validity</th>"
    rows = "".join(_row(c, extra) for c in view.cells)
    rule = (f"★ best: the fastest p50 within {data.drop_text} of {metric} of the model's most accurate cell on this "
            "device. ◆ on the Pareto front." if view.metric else "★ best: the fastest p50 (no accuracy measured).")
    return (f'<section id="device-{escape(view.name)}"><h2>Device: {escape(view.name)}</h2>'
            f'<p class="sub">{escape(str(env.get("cpu") or "unknown CPU"))} · {_n(env.get("cores"), "")} cores · '
            f'{escape(", ".join(view.runtimes) or "no runtime reported")}'
            f'{" · " + escape(view.noise_floor.describe()) if view.noise_floor else ""}</p>'
            f'<div style="overflow-x:auto"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
            f'<p class="sub" style="margin-top:6px">{escape(rule)}</p>{measures.profiles(view)}</section>')


def _caveats(cell: Cell) -> str:
    items = "".join(f'<li class="{"warn" if c.warn else "ok"}">{"⚠ " if c.warn else "✓ "}{escape(c.text)}</li>'
                    for c in cell.caveats)
    return f'<ul class="caveats">{items}</ul>'


def _summary(data: ReportData) -> str:
    cells = data.cells
    cards = [f'<div class="card">cells<b>{len(cells)}</b></div>',
             f'<div class="card">ok<b>{len(cells) - len(data.errors)}</b></div>',
             f'<div class="card">errors<b style="color:{"#dc2626" if data.errors else "inherit"}">'
             f'{len(data.errors)}</b></div>', f'<div class="card">devices<b>{len(data.devices)}</b></div>']
    for view in data.devices:
        for c in (c for c in view.cells if c.best):
            acc = f", {view.metric} {c.accuracy:.1%}" if c.accuracy is not None else ""
            cards.append(f'<div class="card best">best on {escape(view.name)}<b>{escape(c.label)}</b>'
                         f'p50 {c.p50:.4g} ms{acc}{_caveats(c)}</div>')
    return f'<div class="cards">{"".join(cards)}</div>'


def _change(value: float | None, what: str, spec: str, scale: float = 1.0, lower_is_better: bool = True) -> str:
    """A signed change, green when better, red when worse, grey when it prints as zero."""
    if value is None:
        return ""
    shown = f"{value * scale:+{spec}}"
    better = (value < 0) == lower_is_better
    css = "same" if shown.strip("+-0.%") == "" else "faster" if better else "slower"
    return f'<span class="delta {css}">{escape(shown)} {escape(what)}</span>'


def _matrix_cell(cell: Cell | None, metric: str | None) -> str:
    if cell is None:
        return '<td class="same">—</td>'
    if not cell.result.ok:
        return f'<td title="{escape(cell.error)}"><span class="tag err">error</span></td>'
    tip = f"{cell.label}: p50 {cell.p50:.4g} ms" + (f", {metric} {cell.accuracy:.1%}" if cell.accuracy is not None
                                                    and metric else "")
    flags = "".join(f'<span class="tag warn">{escape(p.split(" (")[0])}</span>' for p in cell.problems)
    css = ' class="best-cell"' if cell.best else ""
    reference = cell.recipe != "fp32"
    accuracy = f"pt {metric or ''}".strip()
    return (f'<td{css} title="{escape(tip)}"><b>{_n(cell.p50, ".3g")}</b> ms{" ★" if cell.best else ""}{flags}'
            f'{_change(cell.vs_fp32 if reference else None, "vs fp32", ".0%")}'
            f'{_change(cell.accuracy_vs_fp32 if reference else None, accuracy, ".1f", 100, False)}'
            f"{measures.matrix_lines(cell.result)}</td>")


def _matrix(data: ReportData) -> str:
    from edgebench.report import plots  # matplotlib, loaded when a page is drawn (not by `bench`'s tables)

    rows: list[MatrixRow] = data.matrix
    metrics = {v.name: v.metric for v in data.devices}
    colours = plots.format_colours([r.format for r in rows])
    head = "".join(f"<th>{escape(v.name)}</th>" for v in data.devices)
    several = len({r.model for r in rows}) > 1
    body = "".join(
        f'<tr><td><span class="swatch" style="background:{colours[r.format]}"></span>{escape(r.name(several))}</td>'
        f'{"".join(_matrix_cell(r.cells.get(v.name), metrics[v.name]) for v in data.devices)}</tr>'
        for r in rows)
    return ('<section id="matrix"><h2>Device × variant</h2><p class="sub">p50 latency per device; under it the '
            "change against the fp32 cell of the same model, format and options (green: faster or more accurate), "
            "and the accuracy change in points. ★ the best pick on that device.</p>"
            f'<div style="overflow-x:auto"><table class="matrix"><thead><tr><th>variant</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div></section>")


def _plots(data: ReportData) -> str:
    from edgebench.report import plots

    colours = plots.format_colours([c.format for c in data.cells] + [a.format for a in data.artifacts])
    pareto = plots.pareto_svg(data.devices, colours)
    boxes = plots.latency_svg(data.devices, colours)
    out = []
    if pareto:
        out.append('<section id="pareto"><h2>Trade-offs per device</h2><p class="sub">p50 latency against accuracy '
                   "and against artifact size, every device on the same axes. Colour: format; dashed: the Pareto "
                   "front (nothing is both faster and better on the other axis); ringed: the best pick. Hover a "
                   f"point for its figures.</p><figure>{pareto}</figure></section>")
    if boxes:
        out.append('<section id="latency"><h2>Latency distributions</h2><p class="sub">Every measured iteration, '
                   "one logarithmic axis for all devices: box q1–q3, bar median, whiskers p1–p99, open dots the "
                   "minimum and maximum beyond them, ticks every 2nd percentile; the median printed right.</p>"
                   f"<figure>{boxes}</figure></section>")
    return "".join(out)


def _sizes(data: ReportData) -> str:
    from edgebench.report import plots

    colours = plots.format_colours([c.format for c in data.cells] + [a.format for a in data.artifacts])
    chart = plots.size_svg(data.artifacts, colours)
    rows = "".join(f"<tr><td>{escape(a.model)} · {escape(a.recipe)} · {escape(a.format)}</td>"
                   f"<td>{escape(a.precision)}"
                   f"</td><td>{_n(a.size_bytes, ',')}</td><td>{_n(a.gzip_bytes, ',')}</td><td>"
                   f"{_n(a.gzip_bytes / a.size_bytes if a.size_bytes and a.gzip_bytes else None, '.0%')}</td></tr>"
                   for a in data.artifacts)
    return (f'<section id="sizes"><h2>Artifact sizes</h2><p class="sub">Raw bytes on disk and gzip -9 bytes (what a '
            f'download or update ships).</p><div class="plots"><figure>{chart}</figure><table style="width:auto">'
            f"<thead><tr><th>artifact</th><th>precision</th><th>raw bytes</th><th>gzip bytes</th><th>gzip/raw</th>"
            f"</tr></thead><tbody>{rows}</tbody></table></div></section>")


def _environment(data: ReportData) -> str:
    keys = ("cpu", "cores", "machine", "governor", "os", "python", "temperature_c_before", "temperature_c_after")
    blocks = []
    for view in data.devices:
        items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(_text(view.environment.get(k)))}</dd>" for k in keys)
        items += f"<dt>runtimes</dt><dd>{escape(', '.join(view.runtimes) or '—')}</dd>"
        blocks.append(f"<h3>{escape(view.name)}</h3><dl>{items}</dl>")
    run = data.run
    spec = (f"<h3>run spec</h3><details><summary>show</summary><pre>{escape(json.dumps(run.spec, indent=2))}</pre>"
            "</details>" if run and run.spec else "")
    return f'<section id="environment"><h2>Environment</h2>{"".join(blocks)}{spec}</section>'


def render_html(data: ReportData) -> str:
    run = data.run
    meta = [f"run {run.id} · {escape(run.status)} · started {escape(run.created_utc)} · edgebench "
            f"{escape(run.edgebench_version)}" + (f" · commit {escape(run.commit['sha'][:10])}"
                                                   f"{' (dirty)' if run.commit['dirty'] else ''}" if run.commit else "")
            ] if run else []
    if data.common_options:
        meta.append(f"options: {escape(data.common_options)}")
    body = (([_matrix(data), _plots(data)] + [_device(v, data) for v in data.devices] + [_sizes(data),
                                                                                          _environment(data)]
             if data.devices else [])
            or ['<section><p class="empty">This run has no results yet.</p></section>'])
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{escape(data.title)}</title><style>{CSS}</style>'
            f'</head><body><main><header><h1>{escape(data.title)}</h1><p class="meta">{" · ".join(meta)}</p>'
            f'{_summary(data)}</header>{"".join(body)}<footer>Generated {escape(data.generated_utc)} by edgebench. '
            "Latencies are per iteration, percentiles by nearest rank over the raw samples."
            "</footer></main></body></html>\n")
