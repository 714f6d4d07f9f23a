"""The Markdown summary: what a CI job posts in a pull-request comment or a job summary."""

from __future__ import annotations

from edgebench.report.data import Cell, MatrixRow, ReportData
from edgebench.text import markdown_text


def _n(value: float | None, spec: str) -> str:
    return "—" if value is None else f"{value:{spec}}"


def _cell_text(text: str) -> str:
    """Names and messages (a model's, a device's, a board's error) as literal text: no HTML, no open comment."""
    return markdown_text(text)


def _row(cell: Cell) -> str:
    r = cell.result
    name = _cell_text(cell.label) + (" ★" if cell.best else "")
    if not r.ok:
        return f"| {name} | error: {_cell_text(cell.error)} |" + " |" * 7
    lat = r.latency_ms
    p50, p99, robust_cv = (lat.p50, lat.p99, lat.robust_cv) if lat else (None, None, None)
    flags = _cell_text(", ".join(cell.problems + cell.notes) or "valid")
    name = f"**{name}**" if cell.best else name
    return (f"| {name} | {_n(p50, '.4g')} | {_n(p99, '.4g')} "
            f"| {_n(robust_cv, '.1%')} | {_n(r.memory_mb.peak, '.1f')} "
            f"| {_n(r.model.size_bytes, ',')} | {_n(r.model.gzip_bytes, ',')} "
            f"| {_n(cell.accuracy, '.1%')} | {flags} |")


def _matrix_cell(cell: Cell | None) -> str:
    if cell is None:
        return "—"
    if not cell.result.ok:
        return "error"
    text = f"{cell.p50:.3g}" + (" ★" if cell.best else "") + (" ⚠" if cell.problems else "")
    if cell.recipe != "fp32" and cell.vs_fp32 is not None:
        text += f" ({cell.vs_fp32:+.0%}"
        text += f", {cell.accuracy_vs_fp32 * 100:+.1f} pt)" if cell.accuracy_vs_fp32 is not None else ")"
    return f"**{text}**" if cell.best else text


def _matrix(data: ReportData) -> list[str]:
    rows: list[MatrixRow] = data.matrix
    several = len({r.model for r in rows}) > 1
    names = [v.name for v in data.devices]
    lines = ["## Device × variant", "", "p50 ms per device; in brackets the change against the fp32 cell of the "
             "same model, format and options, and the accuracy change in points. ★ the best pick; ⚠ a failed "
             "validity flag.", "",
             "| variant | " + " | ".join(_cell_text(n) for n in names) + " |", "|---|" + "---:|" * len(names)]
    for r in rows:
        cells = " | ".join(_matrix_cell(r.cells.get(n)) for n in names)
        lines.append(f"| {_cell_text(r.name(several))} | {cells} |")
    return lines + [""]


def render_markdown(data: ReportData) -> str:
    lines = [f"# {_cell_text(data.title)}", ""]
    run = data.run
    if run:
        commit = f", commit {run.commit['sha'][:10]}{' (dirty)' if run.commit['dirty'] else ''}" if run.commit else ""
        lines += [f"Run {run.id} {_cell_text(run.name)}: {run.status}, started {run.created_utc}, edgebench "
                  f"{run.edgebench_version}{commit}.", ""]
    cells = data.cells
    lines += [f"{len(cells)} cells, {len(cells) - len(data.errors)} ok, {len(data.errors)} errors, "
              f"{len(data.devices)} device(s)."
              + (f" Options: {_cell_text(data.common_options)}." if data.common_options else ""),
              ""]
    if not data.devices:
        return "\n".join(lines + ["This run has no results yet.", ""])
    best = [(v, c) for v in data.devices for c in v.cells if c.best]
    if best:
        lines += ["## Best per device", ""]
        for v, c in best:
            lines.append(f"- **{_cell_text(v.name)}**: {_cell_text(c.label)}, p50 {c.p50:.4g} ms"
                         + (f", {v.metric} {c.accuracy:.1%}" if c.accuracy is not None else ""))
            lines += [f"  - {'⚠ ' if k.warn else ''}{_cell_text(k.text)}" for k in c.caveats]
        lines += ["", f"Best: the fastest p50 within {data.drop_text} of accuracy of the model's most "
                  "accurate cell on the device.", ""]
    lines += _matrix(data)
    for view in data.devices:
        metric = _cell_text(view.metric or "accuracy")
        lines += [f"## {_cell_text(view.name)}", ""]
        if view.noise_floor is not None:
            floor = view.noise_floor.describe()
            lines += [f"{floor[0].upper()}{floor[1:]}.", ""]
        lines += [f"| cell | p50 ms | p99 ms | robust CV | peak MB | size B | gzip B | {metric} | validity |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        lines += [_row(c) for c in view.cells]
        lines.append("")
    if data.errors:
        lines += ["## Errors", ""]
        lines += [f"- {_cell_text(c.label)} on {_cell_text(c.result.device.profile)}: {_cell_text(c.error)}"
                  for c in data.errors]
        lines.append("")
    return "\n".join(lines)
