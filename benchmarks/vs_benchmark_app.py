#!/usr/bin/env python3
"""Does edgebench's OpenVINO runner measure what OpenVINO's own benchmark_app measures?

Runs both on the same IR, interleaved (A B A B …) so drift and other load hit both alike, and prints
each run's median latency, the median of medians per tool and their ratio (target: within ±3%).
benchmark_app: ``-d CPU -hint none -api sync -nstreams 1 -nthreads T -t S -ip f32 -infer_precision f32``
(its UI refuses -nstreams/-nthreads with -hint latency; edgebench sets LATENCY + 1 stream + T threads,
and f32 execution, which is what its fp32 artifacts run at). benchmark_app's JSON report rounds the
median to 10 µs, so its median is read from the text it prints (µs resolution).

    python benchmarks/vs_benchmark_app.py [--model M.onnx] [--batch 1] [--threads 1] [--seconds 5] [--rounds 3]
    python benchmarks/vs_benchmark_app.py --mode throughput [--model M.onnx] [--seconds 5] [--rounds 3]

``--mode throughput`` compares inferences per second instead: ``edgebench bench --mode throughput`` (streams and
requests left to OpenVINO's THROUGHPUT hint) against ``benchmark_app -hint throughput -api async`` on the same IR,
interleaved the same way; the ratio of the medians (target: within ±5%).

edgebench feeds a fresh sample every iteration (copied into the request's input buffer right before the timer
starts) and times each iteration's infer() from Python; benchmark_app reads OpenVINO's own request latency. On a ~30 µs model those few µs
show; with --batch 32 the model's own time dominates.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgebench.artifacts import cache as artifacts  # noqa: E402
from edgebench.pipeline.bench import BenchRequest, run_bench  # noqa: E402
from edgebench.config import TimingSpec  # noqa: E402


def benchmark_app_median_ms(xml: Path, shapes: str, threads: int, seconds: float, report: Path) -> float:
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    cmd = [tool, "-m", str(xml), "-d", "CPU", "-hint", "none", "-api", "sync", "-nstreams", "1",
           "-nthreads", str(threads), "-t", str(seconds), "-ip", "f32", "-infer_precision", "f32",
           "-data_shape", shapes, "-json_stats", "-report_type", "no_counters", "-report_folder", str(report)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 120)
    found = re.search(r"Median:\s+([\d.]+)\s*(ms|us)", proc.stdout)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"benchmark_app failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-600:]}")
    value = float(found.group(1))
    return value / 1000 if found.group(2) == "us" else value


def benchmark_app_throughput(xml: Path, shapes: str, seconds: float) -> tuple[float, str]:
    """benchmark_app's inferences/s with ``-hint throughput`` (its streams and requests: what it printed)."""
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    cmd = [tool, "-m", str(xml), "-d", "CPU", "-hint", "throughput", "-api", "async", "-t", str(seconds),
           "-ip", "f32", "-infer_precision", "f32", "-data_shape", shapes]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 120)
    found = re.search(r"Throughput:\s+([\d.]+)\s*FPS", proc.stdout)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"benchmark_app failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-600:]}")
    nireq = re.search(r"(\d+) inference requests", proc.stdout)
    streams = re.search(r"NUM_STREAMS:\s*(\d+)", proc.stdout)
    return float(found.group(1)), f"{streams.group(1) if streams else '?'} streams, " \
                                  f"{nireq.group(1) if nireq else '?'} requests"


def edgebench_throughput(xml: Path, seconds: float, batch: int) -> tuple[float, str]:
    timing = TimingSpec(warmup_s=0.5, warmup_iterations=5, min_iterations=100, min_duration_s=seconds,
                        max_duration_s=seconds + 1)
    result = run_bench(BenchRequest(model=xml, threads=0, batch=batch, timing=timing, mode="throughput"))
    assert result.throughput is not None, "bench measured no throughput"
    load = result.throughput
    return load.inferences_per_s, f"{load.streams} streams, {load.requests} requests"


def compare_throughput(xml: Path, shapes: str, args: argparse.Namespace) -> int:
    ours, theirs = [], []
    for r in range(args.rounds):
        rate, ran = edgebench_throughput(xml, args.seconds, args.batch)
        ours.append(rate)
        theirs_rate, their_ran = benchmark_app_throughput(xml, shapes, args.seconds)
        theirs.append(theirs_rate)
        print(f"round {r + 1}: edgebench {rate:.1f} inf/s ({ran})   benchmark_app {theirs_rate:.1f} inf/s ({their_ran})")
    a, b = statistics.median(ours), statistics.median(theirs)
    ratio = a / b
    print(f"model {args.model.name} (OpenVINO IR fp32), batch {args.batch}, THROUGHPUT hint, "
          f"{args.seconds:g} s x {args.rounds} rounds")
    print(f"edgebench median {a:.1f} inf/s, benchmark_app median {b:.1f} inf/s")
    print(f"ratio edgebench / benchmark_app inf/s {ratio:.3f}  ({'within' if abs(ratio - 1) <= 0.05 else 'OUTSIDE'} ±5%)")
    return 0


def edgebench_median_ms(xml: Path, threads: int, seconds: float, batch: int) -> tuple[float, float]:
    timing = TimingSpec(warmup_s=0.5, warmup_iterations=5, min_iterations=100, min_duration_s=seconds,
                        max_duration_s=seconds + 1)
    result = run_bench(BenchRequest(model=xml, threads=threads, batch=batch, timing=timing,
                                    backend_options={"performance_hint": "LATENCY", "num_streams": 1}))
    assert result.p50 is not None, "bench measured nothing"
    return result.p50, float(result.extra["request_latency_ms"]["p50"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "edgebench" / "bundled" / "demo" / "digits_cnn.onnx")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="the dynamic batch dimension (a bigger batch makes "
                        "the model's own time dominate the per-iteration Python overhead)")
    parser.add_argument("--mode", choices=("latency", "throughput"), default="latency",
                        help="throughput: inferences/s against benchmark_app -hint throughput")
    args = parser.parse_args()
    art = artifacts.ensure(args.model, "openvino", "fp32")
    shapes = ",".join(f"{t.name}[{','.join(str(d) if isinstance(d, int) else str(args.batch) for d in t.shape)}]"
                      for t in art.meta.inputs)
    if args.mode == "throughput":
        return compare_throughput(art.main, shapes, args)
    ours, inner, theirs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            wall, request = edgebench_median_ms(art.main, args.threads, args.seconds, args.batch)
            ours.append(wall)
            inner.append(request)
            theirs.append(benchmark_app_median_ms(art.main, shapes, args.threads, args.seconds, Path(tmp)))
            print(f"round {r + 1}: edgebench p50 {ours[-1] * 1000:.2f} us (OpenVINO request latency p50 "
                  f"{inner[-1] * 1000:.2f} us)   benchmark_app median {theirs[-1] * 1000:.2f} us")
    a, b, c = statistics.median(ours), statistics.median(theirs), statistics.median(inner)
    print(f"model {args.model.name} (OpenVINO IR fp32), batch {args.batch}, threads {args.threads}, "
          f"{args.seconds:g} s x {args.rounds} rounds")
    print(f"edgebench median of medians     {a * 1000:.2f} us")
    print(f"benchmark_app median of medians {b * 1000:.2f} us")
    print(f"edgebench request latency (OpenVINO's own timer, as benchmark_app reads it) {c * 1000:.2f} us")
    for label, value in (("iteration p50", a), ("request latency p50", c)):
        ratio = value / b
        print(f"ratio edgebench {label} / benchmark_app median {ratio:.3f}  "
              f"({'within' if abs(ratio - 1) <= 0.03 else 'OUTSIDE'} ±3%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
