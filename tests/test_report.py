"""Report data (best cell, Pareto front, distributions from raw samples), the SVG plots and the Markdown
summary, from real results."""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET

import numpy as np

from edgebench.report import build_report, render_html, render_markdown
from edgebench.report.data import pareto_front
from edgebench.report.svg import box_svg, nice_ticks, pareto_svg, size_svg
from edgebench.pipeline.stats import nearest_rank
from tests.results_fixtures import real_results  # noqa: F401  (session fixture)


def test_pareto_front_keeps_only_cells_nothing_beats():
    # (latency, accuracy): the 2nd is beaten by the 1st (slower and less accurate), the 4th ties the 3rd's latency
    points = [(1.0, 0.90), (2.0, 0.85), (3.0, 0.95), (3.0, 0.93), (5.0, 0.99)]
    assert pareto_front(points) == {0, 2, 4}
    assert pareto_front([]) == set()


def test_best_is_the_fastest_cell_within_the_accuracy_drop(real_results):
    data = build_report(real_results, max_accuracy_drop=0.01)
    (device,) = data.devices
    assert device.name == "local-cpu" and device.metric == "top1"
    ok = [c for c in device.cells if c.result.ok]
    best = [c for c in device.cells if c.best]
    assert len(best) == 1 and best[0].p50 == min(c.p50 for c in ok)  # all three share the same top-1
    assert [c.p50 for c in ok] == sorted(c.p50 for c in ok) and not device.cells[-1].result.ok  # errors last
    assert device.cells[-1].error.startswith("invalid_model:")
    assert {c.options for c in ok} == {"batch=1 threads=1", "batch=1 threads=2", "batch=4 threads=1"}


def test_a_less_accurate_faster_cell_is_not_best(real_results):
    fast, slow = sorted(real_results[:2], key=lambda r: r.latency_ms.p50)
    lower = {**fast.accuracy.to_dict(), "top1": fast.accuracy.top1 - 0.05}
    worse = type(fast).from_dict({**fast.to_dict(), "accuracy": lower})
    data = build_report([worse, slow], max_accuracy_drop=0.01)
    cells = data.devices[0].cells
    assert [c.best for c in cells] == [False, True]  # 5 points lost is more than the 1 allowed
    assert all(c.on_front for c in cells)  # each is better on one axis
    assert build_report([worse, slow], max_accuracy_drop=0.06).devices[0].cells[0].best


def test_distribution_comes_from_the_raw_samples(real_results):
    cell = build_report(real_results[:1]).devices[0].cells[0]
    ms = sorted(s / 1e6 for s in real_results[0].samples_ns)
    d = cell.distribution
    assert (d.min, d.median, d.max) == (ms[0], nearest_rank(ms, 50), ms[-1])
    assert d.median == real_results[0].latency_ms.p50
    assert d.p1 <= d.q1 <= d.median <= d.q3 <= d.p99 and list(d.dots) == sorted(d.dots)


SVG = "{http://www.w3.org/2000/svg}"


def _nearest_rank_ms(samples_ns, p: int) -> float:
    """Independent of edgebench.pipeline.stats: numpy sort, integer ceil(p·n/100)."""
    ms = np.sort(np.asarray(samples_ns, dtype=np.int64)) / 1e6
    return float(ms[(p * len(ms) + 99) // 100 - 1])


def _tooltips(root: ET.Element) -> list[tuple[str, ET.Element]]:
    """(tooltip text, the group it labels) for every <g> whose first child is a <title>."""
    assert root.tag == f"{SVG}svg"
    return [(g[0].text or "", g) for g in root.iter(f"{SVG}g") if len(g) and g[0].tag == f"{SVG}title"]


def _marks(element: ET.Element, tag: str, **attrs: str) -> list[ET.Element]:
    return [e for e in element.iter(f"{SVG}{tag}") if all(e.get(k) == v for k, v in attrs.items())]


def _close(shown: str, exact: float) -> bool:
    """A figure printed with 4 significant digits (:.4g) is the exact one rounded."""
    return abs(float(shown) - exact) <= 5e-4 * abs(exact)


def _options(r) -> str:
    return f"batch={r.options['batch']} threads={r.options['threads']}"


def test_pareto_points_carry_their_figures_as_tooltips(real_results):
    ok = [r for r in real_results if r.ok]
    by_options = {_options(r): r for r in ok}
    fastest = min(ok, key=lambda r: _nearest_rank_ms(r.samples_ns, 50))  # all three share one top-1
    svg = ET.fromstring(pareto_svg(build_report(real_results).devices[0].cells, "top1"))
    tips = _tooltips(svg)
    # every plotted point (r=5) sits inside a titled group, one point per measured cell, none for the error
    points = _marks(svg, "circle", r="5")
    assert len(points) == len(tips) == len(ok) == 3
    assert sorted(id(p) for _, g in tips for p in _marks(g, "circle", r="5")) == sorted(id(p) for p in points)
    seen = set()
    for text, _ in tips:
        m = re.fullmatch(r"digits-cnn · fp32 · onnx · (batch=\d+ threads=\d+)\n"
                         r"p50 (\S+) ms, top1 (\S+)%( — best)?", text)
        assert m, text
        r = by_options[m[1]]
        seen.add(m[1])
        assert _close(m[2], _nearest_rank_ms(r.samples_ns, 50)), (text, r.latency_ms)
        assert abs(float(m[3]) / 100 - r.accuracy.top1) <= 5e-4  # one decimal of a percentage
        assert bool(m[4]) == (r is fastest)
    assert seen == set(by_options)


def test_box_rows_carry_the_distribution_of_the_raw_samples_as_tooltips(real_results):
    ok = [r for r in real_results if r.ok]
    by_options = {_options(r): r for r in ok}
    svg = ET.fromstring(box_svg(build_report(real_results).devices[0].cells))
    tips = _tooltips(svg)
    boxes = _marks(svg, "rect", height="14")  # the q1–q3 box of each row
    assert len(boxes) == len(tips) == len(ok) == 3
    assert sorted(id(b) for _, g in tips for b in _marks(g, "rect", height="14")) == sorted(id(b) for b in boxes)
    number = r"(\S+)"
    pattern = (rf"digits-cnn · fp32 · onnx · (batch=\d+ threads=\d+)\nmin {number} · p1 {number} · q1 {number} · "
               rf"median {number} · q3 {number} · p99 {number} · max {number} ms \((\d+) samples\)")
    seen = set()
    for text, _ in tips:
        m = re.fullmatch(pattern, text)
        assert m, text
        r = by_options[m[1]]
        seen.add(m[1])
        ms = np.sort(np.asarray(r.samples_ns)) / 1e6
        expected = [ms[0], *(_nearest_rank_ms(r.samples_ns, p) for p in (1, 25, 50, 75, 99)), ms[-1]]
        assert all(_close(shown, exact) for shown, exact in zip(m.groups()[1:8], expected)), (text, expected)
        assert int(m[9]) == len(r.samples_ns) == r.iterations
    assert seen == set(by_options)


def test_size_bars_carry_the_file_sizes_as_tooltips(real_results, digits_onnx):
    svg = ET.fromstring(size_svg(build_report(real_results).artifacts))
    tips = _tooltips(svg)
    bars = _marks(svg, "rect")
    raw = digits_onnx.read_bytes()
    gz = len(gzip.compress(raw, compresslevel=9, mtime=0))  # what `gzip -9` writes, measured independently
    # one artifact (the three cells share the digits ONNX); the broken model has no size to plot
    assert [t for t, _ in tips] == [f"digits-cnn · fp32 · onnx: raw {len(raw)} B, gzip {gz} B"]
    assert len(bars) == 2 and all(b in list(tips[0][1]) for b in bars)  # raw and gzip bar, both in the group


def test_svg_plots_are_well_formed(real_results):
    data = build_report(real_results)
    cells = data.devices[0].cells
    for svg in (pareto_svg(cells, "top1"), box_svg(cells), size_svg(data.artifacts)):
        assert ET.fromstring(svg).tag == f"{SVG}svg"
    assert pareto_svg([c for c in cells if not c.result.ok], "top1") == ""


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(0.0193, 0.0821)
    assert ticks[0] >= 0.0193 and ticks[-1] <= 0.0821 and len(ticks) >= 3


def test_markdown_holds_the_table_the_best_cell_and_errors(real_results):
    data = build_report(real_results)
    md = render_markdown(data)
    assert "| cell | p50 ms | p99 ms | robust CV | peak MB | size B | gzip B | top1 | validity |" in md
    table = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table) == 1 + len(real_results)
    assert all(line.count("|") - line.count("\\|") == 10 for line in table)  # 9 columns on every row
    best = next(c for c in data.cells if c.best)
    assert f"**{best.label} ★**" in md and f"{best.p50:.4g}" in md
    assert "## Errors" in md and "not a readable ONNX model" in md


def test_html_is_self_contained(real_results):
    html = render_html(build_report(real_results))
    for needle in ("src=", "href=", "<link", "url(", "@import", "<script"):
        assert needle not in html
    assert html.count("<svg") == 3 and "not a readable ONNX model" in html


def test_an_empty_run_still_renders():
    assert "no results yet" in render_html(build_report([]))
    assert "no results yet" in render_markdown(build_report([]))


def test_an_int8_cell_slower_than_its_fp32_is_flagged(real_results):
    fp32 = next(r for r in real_results if r.ok and r.model.recipe == "fp32")
    p50 = fp32.latency_ms.p50

    def int8(factor: float, fmt: str = fp32.model.format) -> object:
        d = fp32.to_dict()
        model = {**d["model"], "recipe": "int8", "precision": "int8", "format": fmt}
        return type(fp32).from_dict({**d, "model": model, "latency_ms": {**d["latency_ms"], "p50": p50 * factor}})

    slow, fast, other_format = int8(1.5), int8(0.8), int8(3.0, "openvino")
    data = build_report([fp32, slow, fast, other_format])
    by_p50 = {c.p50: c for c in data.devices[0].cells}
    assert by_p50[p50 * 1.5].notes == ["int8 1.50× slower than fp32"]
    assert by_p50[p50 * 0.8].notes == [] and by_p50[p50].notes == []
    assert by_p50[p50 * 3.0].notes == []  # no fp32 of that format to compare with
    assert "int8 1.50× slower than fp32" in render_markdown(data)
    assert "int8 1.50× slower than fp32" in render_html(data)


def test_the_terminal_table_names_a_slow_int8_cell(real_results):
    from rich.console import Console

    from edgebench.commands.tables import result_table
    fp32 = next(r for r in real_results if r.ok and r.model.recipe == "fp32")
    d = fp32.to_dict()
    slow = type(fp32).from_dict({**d, "model": {**d["model"], "recipe": "int8", "precision": "int8"},
                                 "latency_ms": {**d["latency_ms"], "p50": fp32.latency_ms.p50 * 2}})
    console = Console(width=300, record=True)
    console.print(result_table([fp32, slow]))
    text = console.export_text()
    assert "int8 runs 2.00× slower than fp32 here" in text  # the caption
    assert text.count("2.00× slower than fp32") == 2 and text.count("1.00× slower") == 0  # + the int8 row
