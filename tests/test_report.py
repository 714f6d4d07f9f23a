"""Report data (best cell, Pareto front, distributions from raw samples), the SVG plots and the Markdown
summary, from real results."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from edgebench.report import build_report, render_html, render_markdown
from edgebench.report.data import pareto_front
from edgebench.report.svg import box_svg, nice_ticks, pareto_svg, size_svg
from edgebench.stats import nearest_rank
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
    fast, slow = sorted(real_results[:2], key=lambda r: r.latency_ms["p50"])
    lower = {**fast.accuracy, "top1": fast.accuracy["top1"] - 0.05}
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
    assert d.median == real_results[0].latency_ms["p50"]
    assert d.p1 <= d.q1 <= d.median <= d.q3 <= d.p99 and list(d.dots) == sorted(d.dots)


def test_svg_plots_are_well_formed_and_carry_tooltips(real_results):
    data = build_report(real_results)
    cells = data.devices[0].cells
    for svg in (pareto_svg(cells, "top1"), box_svg(cells), size_svg(data.artifacts)):
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg") and root.iter("{http://www.w3.org/2000/svg}title")
    assert box_svg(cells).count("<title>") == 3  # one row per measured cell, none for the error
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
