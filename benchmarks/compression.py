#!/usr/bin/env python3
"""What each compression recipe buys and costs on the bundled digits model: recipe × format → size,
gzip size, ratios vs fp32, top-1, p50 latency.

Every artifact is built through edgebench's artifact cache (``artifacts.ensure(source, fmt, recipe=…)``:
weight steps once on the float ONNX, then the format's own quantizer) and measured by edgebench's own
bench path (runner subprocess, docs/design.md's timing rules, top-1 from captured outputs on eval.npz). Sizes,
sparsity and distinct values are read back from the produced files; ratios are against the fp32 artifact
of the same format. Within a format every recipe runs once per round, fp32 first, in alternating rounds
so drift and heat hit all alike; p50 is the median of the rounds' medians. Targets from issue 4 are
printed with the measured value, met or not.

    .venv/bin/python benchmarks/compression.py [--recipes R1,R2] [--formats onnx,openvino,tflite]
                                               [--batch 1] [--rounds 3] [--seconds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from edgebench.artifacts import cache as artifacts
from edgebench.pipeline.bench import BenchRequest, run_bench
from edgebench.config import TimingSpec

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "edgebench" / "bundled" / "demo"
RECIPES = ["fp32", "fp16", "int8", "int8:percentile", "int8:entropy", "int8-dynamic", "prune:0.5",
           "prune-layer:0.5", "prune-filters:0.5", "cluster:16", "prune:0.8+cluster:16+int8"]


FORMATS = ("onnx", "openvino", "tflite")


def build(recipe: str, fmt: str, cache: Path) -> dict:
    """The artifact's meta.json (sizes, ratios, sparsity, distinct values), converting on a cache miss."""
    return artifacts.ensure(DIGITS / "digits_cnn.onnx", fmt, recipe=recipe, calibration=DIGITS / "calib.npz",
                            root=cache).meta.to_dict()


def bench(recipe: str, fmt: str, cache: Path, batch: int, seconds: float) -> tuple[float, float | None]:
    """(p50 ms, top-1) of one edgebench run on the local CPU with one thread."""
    timing = TimingSpec(warmup_s=0.3, warmup_iterations=10, min_iterations=100, min_duration_s=seconds,
                        max_duration_s=seconds * 5)
    result = run_bench(BenchRequest(model=DIGITS / "digits_cnn.onnx", dataset=DIGITS / "eval.npz", threads=1,
                                    batch=batch, timing=timing, format=fmt, recipe=recipe,
                                    calibration=DIGITS / "calib.npz", cache_dir=cache))
    return result.p50, result.accuracy.top1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    recipes = [r for r in args.recipes.split(",") if r]
    if "fp32" not in recipes:
        recipes.insert(0, "fp32")
    rows = {}
    with tempfile.TemporaryDirectory(prefix="edgebench-compression-") as tmp:
        cache = Path(tmp)
        for fmt in args.formats.split(","):
            metas = {r: build(r, fmt, cache) for r in recipes}
            p50s: dict[str, list[float]] = {r: [] for r in recipes}
            top1s: dict[str, float | None] = {}
            for _ in range(args.rounds):  # every recipe once per round, fp32 first: interleaved
                for r in recipes:
                    p50, top1 = bench(r, fmt, cache, args.batch, args.seconds)
                    p50s[r].append(p50)
                    top1s[r] = top1
            for r in recipes:
                rows[(r, fmt)] = {**metas[r], "top1": top1s[r], "p50_ms": statistics.median(p50s[r]),
                                  "p50_rounds": p50s[r]}
    print(f"digits_cnn, batch {args.batch}, 1 thread, {args.rounds} alternating rounds of ≥{args.seconds:g} s")
    head = f"{'recipe':28} {'format':8} {'size KB':>8} {'gzip KB':>8} {'×size':>6} {'×gzip':>6} {'sparsity':>8} " \
           f"{'uniq':>6} {'top-1':>7} {'Δpt':>6} {'p50 ms':>8} {'×speed':>6} {'zeros/K'}"
    print(head + "\n" + "-" * len(head))
    for (r, fmt), m in rows.items():
        ref = rows[("fp32", fmt)]
        drop = (ref["top1"] - m["top1"]) * 100 if m["top1"] is not None and ref["top1"] is not None else float("nan")
        print(f"{r:28} {fmt:8} {m['size_bytes'] / 1024:8.1f} {m['gzip_bytes'] / 1024:8.1f} "
              f"{ref['size_bytes'] / m['size_bytes']:6.2f} {ref['gzip_bytes'] / m['gzip_bytes']:6.2f} "
              f"{m['sparsity']:8.1%} {m['max_unique_values']:6d} {m['top1']:7.4f} {drop:6.2f} {m['p50_ms']:8.4f} "
              f"{ref['p50_ms'] / m['p50_ms']:6.2f} {'kept' if m['preservation'].startswith('checked') else ''}")
    print("\ntargets (issue 4), measured:")
    for fmt in args.formats.split(","):
        ref = rows[("fp32", fmt)]

        def get(recipe: str) -> dict | None:
            return rows.get((recipe, fmt))
        checks = []
        if (m := get("int8")) is not None:
            checks.append((f"int8 ≥ 3.5× smaller file: {ref['size_bytes'] / m['size_bytes']:.2f}×",
                           ref["size_bytes"] / m["size_bytes"] >= 3.5))
            checks.append((f"int8 ≤ 0.5 pt top-1 drop: {(ref['top1'] - m['top1']) * 100:.2f} pt",
                           (ref["top1"] - m["top1"]) * 100 <= 0.5))
        if (m := get("prune:0.5")) is not None:
            checks.append((f"prune:0.5 ≤ 1 pt drop: {(ref['top1'] - m['top1']) * 100:.2f} pt",
                           (ref["top1"] - m["top1"]) * 100 <= 1.0))
        if (m := get("prune:0.8+cluster:16+int8")) is not None:
            checks.append((f"prune:0.8+cluster:16+int8 gzip ≥ 15× smaller: {ref['gzip_bytes'] / m['gzip_bytes']:.2f}×",
                           ref["gzip_bytes"] / m["gzip_bytes"] >= 15))
        if (m := get("prune-filters:0.5")) is not None:
            faster = all(p < f for p, f in zip(m["p50_rounds"], ref["p50_rounds"]))
            checks.append((f"prune-filters:0.5 faster than fp32: p50 {m['p50_ms']:.4f} vs {ref['p50_ms']:.4f} ms "
                           f"({ref['p50_ms'] / m['p50_ms']:.2f}×; faster in every round: {faster})", faster))
        for text, ok in checks:
            print(f"  [{fmt}] {'met ' if ok else 'MISS'} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
