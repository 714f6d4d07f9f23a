#!/usr/bin/env python3
"""How much does edgebench's measurement add over a bare ``session.run`` loop?

In one run, for each batch size: edgebench's reported median (full path: CLI library → runner
subprocess → backend) against a bare onnxruntime loop in its own subprocess with identical threads,
session options and input samples, timed per call with ``perf_counter_ns``. Rounds alternate
A B A B … so drift and heat hit both alike; the pooled medians and their ratio are printed.
Target: ratio ≤ 1.02.

    .venv/bin/python benchmarks/overhead.py [--model M] [--batches 1,32] [--rounds 3] [--seconds 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgebench.pipeline.bench import BenchRequest, run_bench
from edgebench.config import TimingSpec
from edgebench.data.inputs import plan_inputs, random_inputs
from edgebench.data.source import load_onnx_info

ROOT = Path(__file__).resolve().parent.parent
BARE = r"""
import sys, time, numpy as np, onnxruntime as ort
model, npz, threads, batch, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])
data = np.load(npz, allow_pickle=False)
names = [i.name for i in s.get_inputs()]
n = len(data[names[0]])
feeds = [{k: np.ascontiguousarray(data[k][np.arange(b * batch, (b + 1) * batch) % n]) for k in names}
         for b in range(min(64, max(1, n // batch)))]
end = time.perf_counter_ns() + 500_000_000
i = 0
while time.perf_counter_ns() < end:
    s.run(None, feeds[i % len(feeds)]); i += 1
samples = []
end = time.perf_counter_ns() + int(seconds * 1e9)
while True:
    t0 = time.perf_counter_ns()
    s.run(None, feeds[i % len(feeds)])
    t1 = time.perf_counter_ns()
    samples.append(t1 - t0); i += 1
    if t1 >= end:
        break
samples.sort()
print(samples[(len(samples) + 1) // 2 - 1] / 1e6)
"""


def bare_median_ms(model: Path, npz: Path, threads: int, batch: int, seconds: float) -> float:
    out = subprocess.run([sys.executable, "-c", BARE, str(model), str(npz), str(threads), str(batch), str(seconds)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "edgebench" / "bundled" / "demo" / "digits_cnn.onnx")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)

    info = load_onnx_info(args.model)
    print(f"model {args.model.name}, threads {args.threads}, {args.rounds} rounds of {args.seconds} s each side")
    print(f"{'batch':>5} {'edgebench p50 ms':>17} {'bare p50 ms':>12} {'ratio':>7}  per-round ratios")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (int(b) for b in args.batches.split(",")):
            plan = plan_inputs(info.inputs, batch)
            npz = Path(tmp) / f"inputs-{batch}.npz"
            np.savez(npz, **random_inputs(plan, seed=0, batches=64))
            ours, bare = [], []
            for _ in range(args.rounds):
                req = BenchRequest(model=args.model, dataset=npz, batch=batch, threads=args.threads,
                                   timing=TimingSpec(warmup_s=0.5, min_iterations=50, min_duration_s=args.seconds,
                                                     max_duration_s=args.seconds * 5))
                ours.append(run_bench(req).p50)
                bare.append(bare_median_ms(args.model, npz, args.threads, batch, args.seconds))
            ratio = statistics.median(ours) / statistics.median(bare)
            worst = max(worst, ratio)
            rounds = " ".join(f"{a / b:.3f}" for a, b in zip(ours, bare))
            print(f"{batch:>5} {statistics.median(ours):>17.4f} {statistics.median(bare):>12.4f} {ratio:>7.3f}  {rounds}")
    print(f"worst ratio {worst:.3f} (target ≤ 1.02): {'met' if worst <= 1.02 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
