"""Report data (best cell and its caveats, Pareto front, the device × variant matrix, distributions from raw
samples), the matplotlib plots (inline SVG with a tooltip per mark) and the Markdown summary, from real
results."""

from __future__ import annotations

import dataclasses
import gzip
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from edgebench.report import build_report, render_html, render_markdown
from edgebench.report.data import pareto_front
from edgebench.report.plots import format_colours, latency_svg, pareto_svg, size_svg
from edgebench.pipeline.noise import NoiseFloor
from edgebench.pipeline.stats import nearest_rank
from edgebench.result import Energy, LayerProfile, OpTime, Throughput
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


def _colours(data) -> dict[str, str]:
    return format_colours([c.format for c in data.cells])


def test_pareto_points_carry_their_figures_as_tooltips(real_results):
    ok = [r for r in real_results if r.ok]
    by_options = {_options(r): r for r in ok}
    fastest = min(ok, key=lambda r: _nearest_rank_ms(r.samples_ns, 50))  # all three share one top-1
    data = build_report(real_results)
    svg = ET.fromstring(pareto_svg(data.devices, _colours(data)))
    tips = _tooltips(svg)
    # two panels (latency vs top-1, latency vs size), one titled point per measured cell in each, none for the error
    assert len(tips) == 2 * len(ok) == 6
    seen = []
    for text, group in tips:
        assert _marks(group, "use") or _marks(group, "path"), text  # the point's marker is inside its group
        m = re.fullmatch(r"digits-cnn · fp32 · onnx · (batch=\d+ threads=\d+)\n"
                         r"p50 (\S+) ms, top1 (\S+)%, (\S+) KiB( — best)?", text)
        assert m, text
        r = by_options[m[1]]
        seen.append(m[1])
        assert _close(m[2], _nearest_rank_ms(r.samples_ns, 50)), (text, r.latency_ms)
        assert abs(float(m[3]) / 100 - r.accuracy.top1) <= 5e-4  # one decimal of a percentage
        assert abs(float(m[4]) * 1024 - r.model.size_bytes) <= 52  # one decimal of KiB
        assert bool(m[5]) == (r is fastest)
    assert sorted(seen) == sorted(list(by_options) * 2)


def test_box_rows_carry_the_distribution_of_the_raw_samples_as_tooltips(real_results):
    ok = [r for r in real_results if r.ok]
    by_options = {_options(r): r for r in ok}
    data = build_report(real_results)
    svg = ET.fromstring(latency_svg(data.devices, _colours(data)))
    tips = _tooltips(svg)
    assert len(tips) == len(ok) == 3  # the q1–q3 box of each measured cell
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


def _tick_values(svg: ET.Element, axis: str) -> list[float]:
    """The numbers printed at an axis's major ticks (matplotlib keeps text as <text> with svg.fonttype none)."""
    groups = [g for g in svg.iter(f"{SVG}g") if re.fullmatch(rf"\w+-{axis}tick_\d+", g.get("id", ""))]
    return [float(t.text) for g in groups for t in g.iter(f"{SVG}text") if t.text and t.text.strip()]


def test_latency_axis_is_logarithmic_and_spans_every_sample(real_results):
    data = build_report(real_results)
    svg = ET.fromstring(latency_svg(data.devices, _colours(data)))
    ticks = _tick_values(svg, "x")
    assert len(ticks) >= 2
    ratios = {round(b / a, 6) for a, b in zip(ticks, ticks[1:])}
    assert ratios <= {2.0, 2.5, 10.0}, ticks  # 1-2-5 or decade steps: a log axis, not equal differences
    d = [c.distribution for c in data.cells if c.distribution]
    # The axis spans every sample; its first and last labelled ticks lie within a step of the ends (a decade at
    # most: with decade ticks the lowest one can sit up to 10× above the fastest sample).
    assert ticks[0] / 10 <= min(x.min for x in d) and max(x.max for x in d) <= ticks[-1] * 10


def test_size_bars_carry_the_file_sizes_as_tooltips(real_results, digits_onnx):
    data = build_report(real_results)
    svg = ET.fromstring(size_svg(data.artifacts, _colours(data)))
    tips = _tooltips(svg)
    raw = digits_onnx.read_bytes()
    gz = len(gzip.compress(raw, compresslevel=9, mtime=0))  # what `gzip -9` writes, measured independently
    # one artifact (the three cells share the digits ONNX); the broken model has no size to plot
    assert [t for t, _ in tips] == [f"digits-cnn · fp32 · onnx: raw {len(raw)} B, gzip {gz} B"]
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert f"{len(raw) / 1024:.1f} KiB" in labels and f"{gz / 1024:.1f} KiB gzip" in labels


def test_plots_are_well_formed_with_ids_unique_in_the_page(real_results):
    data = build_report(real_results)
    colours = _colours(data)
    for svg in (pareto_svg(data.devices, colours), latency_svg(data.devices, colours),
                size_svg(data.artifacts, colours)):
        assert ET.fromstring(svg).tag == f"{SVG}svg"
    html = render_html(data)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) > 50 and len(ids) == len(set(ids))
    refs = set(re.findall(r'(?:url\(#|href="#)([^")]+)', html))
    assert refs and refs <= set(ids)  # every clip path and marker a plot uses is defined in the page
    errors_only = build_report([r for r in real_results if not r.ok])
    assert pareto_svg(errors_only.devices, colours) == latency_svg(errors_only.devices, colours) == ""


def test_markdown_holds_the_table_the_best_cell_and_errors(real_results):
    data = build_report(real_results)
    md = render_markdown(data)
    assert "| cell | p50 ms | p99 ms | robust CV | peak MB | size B | gzip B | top1 | validity |" in md
    device_table = md[md.index("## local-cpu"):]
    table = [line for line in device_table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table) == 1 + len(real_results)
    assert all(line.count("|") - line.count("\\|") == 10 for line in table)  # 9 columns on every row
    best = next(c for c in data.cells if c.best)
    assert f"**{best.label} ★**" in md and f"{best.p50:.4g}" in md
    assert "## Errors" in md and "not a readable ONNX model" in md


def test_html_is_self_contained(real_results):
    html = render_html(build_report(real_results))
    for needle in ("src=", "<link", "@import", "<script", "<image", "@font-face"):
        assert needle not in html
    # the plots' only references are to their own clip paths and markers, in the page
    assert re.findall(r'href="([^#])', html) == [] and re.findall(r"url\(([^#])", html) == []
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


def _variant(r, recipe: str = "fp32", fmt: str = "onnx", device: str | None = None, factor: float = 1.0,
             accuracy_drop: float = 0.0, **more):
    """A real measured result under another cell key: its p50 scaled, its top-1 lowered by ``accuracy_drop``."""
    d = r.to_dict()
    return type(r).from_dict({
        **d, **more, "model": {**d["model"], "recipe": recipe, "precision": recipe, "format": fmt},
        "device": {**d["device"], "profile": device or d["device"]["profile"]},
        "latency_ms": {**d["latency_ms"], "p50": r.latency_ms.p50 * factor},
        "accuracy": {**d["accuracy"], "top1": r.accuracy.top1 - accuracy_drop}})


def test_matrix_sets_each_variant_against_its_fp32_cell_on_every_device(real_results):
    r = next(r for r in real_results if r.ok)
    data = build_report([_variant(r, device="board-a"), _variant(r, "int8", device="board-a", factor=0.5,
                                                                 accuracy_drop=0.004),
                         _variant(r, device="board-b", factor=2.0), _variant(r, "int8", device="board-b", factor=3.0),
                         _variant(r, "fp16", "openvino", device="board-b")])
    rows = data.matrix
    assert [(row.recipe, row.format) for row in rows] == [("fp32", "onnx"), ("int8", "onnx"), ("fp16", "openvino")]
    int8 = rows[1].cells
    assert int8["board-a"].vs_fp32 == pytest.approx(-0.5) and int8["board-b"].vs_fp32 == pytest.approx(0.5)
    assert int8["board-a"].accuracy_vs_fp32 == pytest.approx(-0.004) and int8["board-b"].accuracy_vs_fp32 == 0
    assert set(rows[2].cells) == {"board-b"} and rows[2].cells["board-b"].vs_fp32 is None  # no fp32 OpenVINO cell
    assert int8["board-a"].best and rows[2].cells["board-b"].best  # within 1 point, the fastest wins
    html, md = render_html(data), render_markdown(data)
    assert "-50% vs fp32" in html and "+50% vs fp32" in html and "-0.4 pt top1" in html
    assert "| variant | board-a | board-b |" in md and "(-50%, -0.4 pt)" in md and "(+50%, +0.0 pt)" in md


def test_every_best_pick_carries_its_noise_and_validity_caveats(real_results):
    r = next(r for r in real_results if r.ok)
    device = r.device.profile
    # the pair valid whatever the machine made of the real run (under load it may be noisy): the caveats are the test
    valid = {"min_iterations_met": True, "min_duration_met": True, "stopped_by_max_duration": False, "cv_ok": True,
             "throttled": False}
    pair = [_variant(r, validity=valid), _variant(r, "fp16", factor=1.03, validity=valid)]

    def caveats(results, floors=None):
        best = [c for c in build_report(results, floors=floors).devices[0].cells if c.best]
        assert len(best) == 1
        return [(k.text, k.warn) for k in best[0].caveats]

    tie = caveats(pair, {device: NoiseFloor(device, 8, 0.01, 0.05)})
    assert tie[0] == ("valid measurement", False)
    assert tie[1][1] and "3.0% ahead of fp16 · onnx" in tie[1][0] and "noise floor 5.0%: a tie" in tie[1][0]
    clear = caveats(pair, {device: NoiseFloor(device, 8, 0.005, 0.01)})
    assert clear[1] == ("3.0% ahead of fp16 · onnx, beyond the noise floor 1.0%", False)
    few = caveats(pair, {device: NoiseFloor(device, 2, 0.01)})
    assert few[1][1] and "not enough A/A history: 2 pairs (5 needed)" in few[1][0]
    assert caveats(pair)[1][1] and "no stored runs" in caveats(pair)[1][0]
    noisy = _variant(r, validity={**r.validity.to_dict(), "cv_ok": False})
    first = caveats([noisy])
    assert first[0][1] and first[0][0].startswith("not a valid measurement: noisy (rCV ")
    assert first[1] == ("the only candidate: nothing to beat", False)
    data = build_report(pair, floors={device: NoiseFloor(device, 8, 0.01, 0.05)})
    assert "noise floor 5.0%: a tie" in render_html(data) and "  - ⚠ 3.0% ahead of" in render_markdown(data)


def test_throughput_energy_and_layer_profile_show_only_where_results_carry_them(real_results):
    r = next(r for r in real_results if r.ok)
    plain = build_report([r])
    html = render_html(plain)
    assert "load inf/s" not in html and "mJ/inf" not in html and "Per-layer profile" not in html
    ops = tuple(OpTime(node=f"/conv{i}/Conv", op="Conv", ms=0.01 * (12 - i), share=(12 - i) / 78,
                       precision="jit_avx2_FP32") for i in range(12))
    rich = dataclasses.replace(
        r, throughput=Throughput(streams=2, requests=4, inferences_per_s=12345.6, latency_ms=r.latency_ms,
                                 duration_s=1.5, settings={"PERFORMANCE_HINT": "THROUGHPUT"}),
        energy=Energy(source="rapl", avg_power_w=12.5, idle_power_w=8.0, energy_mj_per_inference=0.321,
                      window_s=1.0, samples=100),
        profile=LayerProfile(source="openvino", iterations=50, ops=ops))
    no_sensor = dataclasses.replace(_variant(r, "fp16"), energy_note="no RAPL: /sys/class/powercap is absent",
                                    profile=LayerProfile(source="tflite", iterations=0,
                                                         note="the Python interpreter has no op profiler"))
    html = render_html(build_report([rich, no_sensor]))
    assert "load inf/s" in html and "12,346" in html and "(2×4)" in html and "0.321" in html
    assert 'title="no RAPL: /sys/class/powercap is absent">—<' in html
    assert "Per-layer profile" in html and html.count("jit_avx2_FP32") == 10 and "2 more ops not shown" in html
    assert "the Python interpreter has no op profiler" in html
