"""How often does the gate cry wolf, and how often does it catch a real slowdown? Measured, not assumed.

A/A: pairs of short real runs of the same digits model, gated with the default rules; every regression
is a false alarm (target ≤ 1%). Detection: pairs of (digits, a heavier digits) where the heavier model
really computes more — an extra MatMul branch appended with onnx.helper as a second output, its width
calibrated here so the median latency is ~10% higher (target ≥ 95% detected on p50). The logits are
untouched, so only latency (and size) may change.

    .venv/bin/python benchmarks/gate_validation.py [--aa-pairs 50] [--slow-pairs 20] [--duration 0.3]
                                                   [--rounds 1 3] [--save DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgebench.pipeline.bench import BenchRequest, run_bench
from edgebench.config import GateSpec, TimingSpec
from edgebench.pipeline.gate import compare, pool
from edgebench.result import Result, write_results

DIGITS = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo" / "digits_cnn.onnx"
LATENCY = ("latency_p50", "latency_p90", "latency_p99")


def heavier_model(src: Path, dst: Path, width: int, seed: int = 0) -> Path:
    """``src`` plus a branch ReduceSum(Relu(Flatten(input) · W[64×width])) as a second output ``extra``:
    real extra compute proportional to ``width`` that leaves the first output (the logits) unchanged."""
    model = onnx.load(str(src))
    graph = model.graph
    x = graph.input[0].name
    w = np.random.default_rng(seed).normal(size=(64, width)).astype(np.float32)
    graph.initializer.extend([numpy_helper.from_array(w, "extra_w"),
                              numpy_helper.from_array(np.array([1], dtype=np.int64), "extra_axes")])
    graph.node.extend([
        helper.make_node("Flatten", [x], ["extra_flat"], axis=1),
        helper.make_node("MatMul", ["extra_flat", "extra_w"], ["extra_mm"]),
        helper.make_node("Relu", ["extra_mm"], ["extra_relu"]),
        helper.make_node("ReduceSum", ["extra_relu", "extra_axes"], ["extra"], keepdims=0),
    ])
    graph.output.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["batch"]))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def bench(model: Path, timing: TimingSpec) -> Result:
    return run_bench(BenchRequest(model=model, threads=1, timing=timing, name="digits-cnn"))


def p50(result: Result) -> float:
    return float(np.median(result.samples_ns))


def calibrate(work: Path, timing: TimingSpec, target: float) -> tuple[Path, int]:
    """Width whose model is ``target`` × slower at the median: measure a few widths, interpolate the
    extra time (linear in width), then check the chosen one."""
    base = statistics.median(p50(bench(DIGITS, timing)) for _ in range(3))
    widths, extra = [256, 1024, 4096], []
    for width in widths:
        model = heavier_model(DIGITS, work / f"heavy-{width}.onnx", width)
        extra.append(statistics.median(p50(bench(model, timing)) for _ in range(2)) - base)
    slope = np.polyfit(widths, extra, 1)
    width = int(max(8, round(((target - 1) * base - slope[1]) / slope[0] / 8) * 8))
    print(f"calibration: base p50 {base / 1e3:.2f} µs; extra µs at widths {widths}: "
          f"{[round(e / 1e3, 2) for e in extra]} → width {width}")
    return heavier_model(DIGITS, work / "heavy.onnx", width), width


def run_pairs(n: int, a: Path, b: Path, timing: TimingSpec, spec: GateSpec, rounds: int, save: Path | None,
              tag: str) -> tuple[Counter, list[float]]:
    """Verdicts per metric over ``n`` pairs. A pair is one run per side (``rounds`` = 1, as when gating two
    files) or ``rounds`` interleaved runs per side pooled as ``edgebench ab`` does. The order alternates so
    neither side always runs first."""
    verdicts: Counter = Counter()
    ratios = []
    for i in range(n):
        sides: tuple[list[Result], list[Result]] = ([], [])
        for k in range(rounds):
            order = (0, 1) if (i + k) % 2 == 0 else (1, 0)
            for side in order:
                sides[side].append(bench((a, b)[side], timing))
        base, cand = pool(sides[0]), pool(sides[1])
        checks = compare(base, cand, spec)
        if save:
            write_results([base, cand], save / f"{tag}-r{rounds}-{i:03d}.json")
        for c in checks:
            verdicts[(c.metric, c.verdict)] += 1
        verdicts[("any latency", "regression" if any(c.metric in LATENCY and c.failed for c in checks)
                  else "no regression")] += 1
        ratios.append(p50(cand) / p50(base))
    return verdicts, ratios


def show(title: str, n: int, verdicts: Counter) -> None:
    print(title)
    for metric in (*LATENCY, "any latency"):
        row = {v: k for (m, v), k in verdicts.items() if m == metric}
        print(f"  {metric:12s} " + ", ".join(f"{v} {k}/{n} ({k / n:.1%})" for v, k in sorted(row.items())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aa-pairs", type=int, default=50)
    ap.add_argument("--slow-pairs", type=int, default=20)
    ap.add_argument("--duration", type=float, default=0.3, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=0.1, help="warm-up seconds per run")
    ap.add_argument("--slowdown", type=float, default=1.10, help="target median slowdown of the heavy model")
    ap.add_argument("--rounds", type=int, nargs="+", default=[1],
                    help="runs per side per pair: 1 = gating two files; more = interleaved and pooled like ab")
    ap.add_argument("--width", type=int, default=None, help="skip calibration: the heavy branch width")
    ap.add_argument("--save", type=Path, default=None, help="write each pair's results here (for re-gating)")
    args = ap.parse_args(argv)
    timing = TimingSpec(warmup_s=args.warmup, min_duration_s=args.duration, max_duration_s=args.duration * 10 + 5)
    spec = GateSpec()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gate-validation-") as tmp:
        work = Path(tmp)
        if args.width:
            heavy, width = heavier_model(DIGITS, work / "heavy.onnx", args.width), args.width
        else:
            heavy, width = calibrate(work, timing, args.slowdown)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
        for rounds in args.rounds:
            what = "one run per side" if rounds == 1 else f"{rounds} interleaved runs per side, pooled (ab)"
            aa, aa_ratios = run_pairs(args.aa_pairs, DIGITS, DIGITS, timing, spec, rounds, args.save, "aa")
            slow, slow_ratios = run_pairs(args.slow_pairs, DIGITS, heavy, timing, spec, rounds, args.save, "slow")
            print(f"=== {what}, {args.duration} s per run ===")
            show(f"A/A, {args.aa_pairs} pairs (false alarm = regression):", args.aa_pairs, aa)
            print(f"  p50 ratio over pairs: median {statistics.median(aa_ratios):.3f}, "
                  f"min {min(aa_ratios):.3f}, max {max(aa_ratios):.3f}")
            show(f"slowdown (heavy width {width}), {args.slow_pairs} pairs:", args.slow_pairs, slow)
            print(f"  measured p50 slowdown over pairs: median {statistics.median(slow_ratios) - 1:+.1%}, "
                  f"min {min(slow_ratios) - 1:+.1%}, max {max(slow_ratios) - 1:+.1%}")
            print(f"A/A false-regression rate (any latency metric): "
                  f"{aa[('any latency', 'regression')] / args.aa_pairs:.1%} (target ≤ 1%)")
            print(f"~10% slowdown detection rate (p50): "
                  f"{slow[('latency_p50', 'regression')] / args.slow_pairs:.1%} (target ≥ 95%)", flush=True)
    print(f"wall time {time.monotonic() - started:.0f} s; load average now {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
