"""The rebuilt report in headless Chromium: a stored sweep of two devices × three recipes × three formats (real
digits measurements under those cell keys, one with a per-layer profile, throughput and energy, one error)
rendered by `edgebench report`, screenshotted and checked: a full page, every plot drawn, no console error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgebench.cli import main
from edgebench.result import Energy, LayerProfile, OpTime, Result, Throughput
from edgebench.store.db import SqliteStore
from tests.browser import distinct_colours, needs_chromium, open_in_chromium
from tests.results_fixtures import real_results  # noqa: F401  (session fixture)

HEIGHT = 5200
FORMATS = {"onnx": (37, 99, 235), "openvino": (124, 58, 237), "tflite": (5, 150, 105)}  # plots.PALETTE
SPEED = {"onnx": 1.0, "openvino": 3.0, "tflite": 0.6}  # a spread like the real demo's: OpenVINO slower on tiny CNNs
RECIPES = {"fp32": (1.0, 0.0), "fp16": (1.05, 0.0), "int8": (0.8, 0.002)}  # (p50 factor, top-1 lost)
SIZE = {"fp32": 1.0, "fp16": 0.5, "int8": 0.28}


def demo_sweep(real: list[Result]) -> list[Result]:
    """The demo's cells on two devices, each a real measurement relabelled and its p50 scaled."""
    base = next(r for r in real if r.ok)
    d = base.to_dict()
    out = []
    for device, slower in (("local-cpu", 1.0), ("raspberry-pi-5", 4.0)):
        for fmt, speed in SPEED.items():
            for recipe, (factor, lost) in RECIPES.items():
                p50 = base.latency_ms.p50 * slower * speed * factor
                out.append(Result.from_dict({
                    **d, "model": {**d["model"], "recipe": recipe, "precision": recipe, "format": fmt,
                                   "size_bytes": int(d["model"]["size_bytes"] * SIZE[recipe]),
                                   "gzip_bytes": int(d["model"]["gzip_bytes"] * SIZE[recipe])},
                    "device": {**d["device"], "profile": device}, "latency_ms": {**d["latency_ms"], "p50": p50},
                    "samples_ns": [int(s * slower * speed * factor) for s in base.samples_ns],
                    "accuracy": {**d["accuracy"], "top1": base.accuracy.top1 - lost}}))
    ops = tuple(OpTime(node=f"/features/conv{i}/Conv", op="Convolution", ms=0.004 * (6 - i), share=(6 - i) / 21,
                       precision="jit_avx2_I8") for i in range(6))
    out[5] = dataclasses.replace(  # openvino int8 on this CPU
        out[5], profile=LayerProfile(source="openvino", iterations=200, ops=ops),
        throughput=Throughput(streams=2, requests=4, inferences_per_s=21000.0, latency_ms=base.latency_ms,
                              duration_s=2.0, settings={"PERFORMANCE_HINT": "THROUGHPUT"}),
        energy=Energy(source="rapl", avg_power_w=14.2, idle_power_w=9.1, energy_mj_per_inference=0.42, window_s=2.0,
                      samples=40))
    return out + [next(r for r in real if not r.ok)]


@needs_chromium
def test_the_report_of_a_stored_sweep_renders_in_chromium(tmp_path, real_results):
    store = tmp_path / "results.db"
    cells = demo_sweep(real_results)
    with SqliteStore(store) as db:
        run = db.create_run("demo", {"recipes": list(RECIPES), "formats": list(SPEED)})
        for r in cells:
            db.add_result(run, r)
        db.finish_run(run)
    html, md = tmp_path / "report.html", tmp_path / "report.md"
    assert main(["report", "--last", "--store", str(store), "--html", str(html), "--md", str(md)]) == 0
    png, console, dom = open_in_chromium(html, tmp_path, HEIGHT)
    assert console == []
    assert distinct_colours(png, HEIGHT) > 500  # text, three plots, badges: not a blank page
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        colours = {c for _, c in rgb.getcolors(maxcolors=1 << 24)}
        assert all(c in colours for c in FORMATS.values())  # each format's points and bars were drawn
        page = rgb.crop((0, 0, 1280, 3000))
        drawn = sum(1 for y in range(0, 3000, 10) if len(page.crop((0, y, 1280, y + 1)).getcolors(1280) or ()) > 3)
        assert drawn > 200  # content on most of the first 3000 px, not an empty frame
    assert dom.count("<svg") == 3 and 'id="matrix"' in dom and "Device × variant" in dom
    assert dom.count("class=\"caveats\"") == 2  # one best pick per device, each with its caveats
    assert "raspberry-pi-5" in dom and "not a readable ONNX model" in dom
    assert "jit_avx2_I8" in dom and "21,000" in dom and "0.42" in dom
    assert "| variant | local-cpu | raspberry-pi-5 |" in md.read_text()
