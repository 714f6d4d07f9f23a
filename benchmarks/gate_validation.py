"""Does ``edgebench ab`` decide, and decide right, on a busy machine? Measured, not assumed.

Each case runs the sequential A/B (``edgebench ab``'s pipeline, default rules and budget) of the digits model
against: itself (A/A — a regression or an improvement is a false alarm; target ≤ 1%), and real slowdowns of
+10% and +5% — digits with one extra MatMul on its input appended with onnx.helper as a second output (the logits are
untouched), its width calibrated here on paired runs. Quiet, and loaded by a bounded generator (one process
busy in bursts on core 0, one busy steadily). Prints, per condition and case, the verdicts, the median round
pairs and the median time to a verdict. Targets: +10% caught ≥ 95% under load; median time to verdict ≤ 60 s.

    .venv/bin/python benchmarks/gate_validation.py [--modes loaded quiet] [--aa 100] [--slow 40]
                                                   [--quiet-scale 1.0] [--max-rounds 40] [--save runs.jsonl]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgebench.config import GateSpec, load_profile
from edgebench.pipeline.ab import AB_TIMING, ABRounds, Budget, gate_rounds, run_sequential
from edgebench.pipeline.bench import BenchRequest, plan_job, resolve_target
from edgebench.pipeline.paired import run_paired
from edgebench.pipeline.sequential import decide

DIGITS = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo" / "digits_cnn.onnx"


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


def slower_model(src: Path, dst: Path, width: int, seed: int = 0) -> Path:
    """``src`` plus one node, MatMul(input[batch×1×8×8] · W[8×width]), as a second output ``extra``: extra
    compute proportional to ``width`` with the fixed cost of a single node, so small slowdowns (+5% of a
    ~40 µs model) can be reached; the logits are unchanged."""
    model = onnx.load(str(src))
    graph = model.graph
    w = np.random.default_rng(seed).normal(size=(8, width)).astype(np.float32)
    graph.initializer.append(numpy_helper.from_array(w, "extra_w"))
    graph.node.append(helper.make_node("MatMul", [graph.input[0].name, "extra_w"], ["extra"]))
    graph.output.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["batch", 1, 8, width]))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def ab(a: Path, b: Path, spec: GateSpec, budget: Budget) -> tuple[str, ABRounds]:
    """One ``edgebench ab`` (the pipeline the command runs): the latency_p50 verdict and the rounds."""
    pair = tuple(BenchRequest(model=m, threads=1, timing=AB_TIMING, name="digits") for m in (a, b))
    rounds = run_sequential((pair[0], pair[1]), spec, budget)
    report = gate_rounds(rounds, (pair[0], pair[1]), spec, budget)
    check = next(c for c in report.checks if c.metric == "latency_p50")
    return check.verdict, rounds


def calibrate(work: Path, target: float) -> tuple[Path, int]:
    """Width whose model is ``target`` × slower at the median, measured paired (both models in one process,
    as ab measures them): the extra time is linear in the width; fit it, then check the chosen width."""
    profile = load_profile("local-cpu")
    req = BenchRequest(model=DIGITS, threads=1, timing=AB_TIMING)
    base = plan_job(req, profile, resolve_target(req))

    def ratio(model: Path) -> float:
        other = BenchRequest(model=model, threads=1, timing=AB_TIMING)
        job = plan_job(other, profile, resolve_target(other))
        return statistics.median(float(np.median(b.samples_ns) / np.median(a.samples_ns))
                                 for a, b in (run_paired(base, job) for _ in range(7)))

    widths = [16, 1024, 4096]
    extra = [ratio(slower_model(DIGITS, work / f"slower-{w}.onnx", w)) - 1 for w in widths]
    slope = np.polyfit(widths, extra, 1)
    width = int(max(1, round(((target - 1) - slope[1]) / slope[0])))
    model = slower_model(DIGITS, work / f"slower-{target:.2f}.onnx", width)
    print(f"calibration for {target - 1:+.0%}: paired slowdown at widths {widths}: "
          f"{[f'{e:+.1%}' for e in extra]} → width {width}, measured {ratio(model) - 1:+.1%}", flush=True)
    return model, width


class Load:
    """The loaded condition: one process busy in bursts pinned to core 0 (busy 50–500 ms, idle 50–1000 ms,
    seeded), and one busy without pause on any core. Both stop when this ends or when this process dies."""

    SCRIPT = (
        "import os, random, sys, time\n"
        "parent, bursty = int(sys.argv[1]), sys.argv[2] == 'bursty'\n"
        "if bursty: os.sched_setaffinity(0, {0})\n"
        "rng = random.Random(0)\n"
        "while os.getppid() == parent:\n"
        "    end = time.monotonic() + (rng.uniform(0.05, 0.5) if bursty else 1.0)\n"
        "    while time.monotonic() < end: pass\n"
        "    if bursty: time.sleep(rng.uniform(0.05, 1.0))\n"
    )

    def __enter__(self) -> "Load":
        self.procs = [subprocess.Popen([sys.executable, "-c", self.SCRIPT, str(os.getpid()), kind])
                      for kind in ("bursty", "steady")]
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


CASES = {"A/A": None, "+10%": 1.10, "+5%": 1.05}


def run_mode(mode: str, counts: dict[str, int], models: dict[str, Path], spec: GateSpec, budget: Budget,
             save: Path | None) -> list[dict[str, object]]:
    """Every case ``counts[case]`` times, the cases taken in turn so that load changes hit them alike."""
    rows: list[dict[str, object]] = []
    todo = [case for i in range(max(counts.values())) for case in CASES if i < counts[case]]
    load = os.getloadavg()[0]
    with (Load() if mode == "loaded" else contextlib.nullcontext()):
        for i, case in enumerate(todo):
            verdict, rounds = ab(DIGITS, models[case], spec, budget)
            row = {"mode": mode, "case": case, "verdict": verdict, "rounds": len(rounds.ratios["latency_p50"]),
                   "elapsed_s": round(rounds.elapsed_s, 2), "stopped": rounds.stopped,
                   "ratios": rounds.ratios["latency_p50"]}
            rows.append(row)
            if save:
                with save.open("a") as f:
                    f.write(json.dumps(row) + "\n")
            print(f"{mode} {i + 1}/{len(todo)} {case}: {verdict} after {row['rounds']} rounds, "
                  f"{row['elapsed_s']} s", flush=True)
            load = max(load, os.getloadavg()[0])
    print(f"{mode}: highest 1-min load average seen {load:.2f} on {os.cpu_count()} cores", flush=True)
    return rows


def fails_in_ci(row: dict[str, object], threshold: float, alpha: float) -> bool:
    """In CI a regression fails, and so does an inconclusive verdict unless its interval excludes a regression."""
    if row["verdict"] != "inconclusive":
        return row["verdict"] == "regression"
    ratios = row["ratios"]
    assert isinstance(ratios, list)
    return decide([float(x) for x in ratios], threshold, alpha).ci[1] >= 1 + threshold


def table(rows: list[dict[str, object]]) -> str:
    rule = GateSpec().rule("latency_p50", "local-cpu")
    lines = ["| condition | case | ab runs | regression | equivalent (pass) | improved | inconclusive | "
             "fails in CI | median rounds | median time to verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for mode in dict.fromkeys(str(r["mode"]) for r in rows):
        for case in CASES:
            sel = [r for r in rows if r["mode"] == mode and r["case"] == case]
            if not sel:
                continue
            n = len(sel)
            count = Counter(str(r["verdict"]) for r in sel)
            decided = [float(str(r["elapsed_s"])) for r in sel if r["verdict"] != "inconclusive"]
            fails = sum(fails_in_ci(r, rule.threshold or 0.0, rule.alpha or 0.0) for r in sel)
            cells = [f"{count[v]}/{n} ({count[v] / n:.0%})" for v in ("regression", "pass", "improved", "inconclusive")]
            cells.append(f"{fails}/{n}")
            rounds = statistics.median(int(str(r["rounds"])) for r in sel)
            to_verdict = f"{statistics.median(decided):.0f} s" if decided else "—"
            lines.append(f"| {mode} | {case} | {n} | " + " | ".join(cells) + f" | {rounds:g} | {to_verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", nargs="+", default=["loaded", "quiet"], choices=["quiet", "loaded"])
    ap.add_argument("--aa", type=int, default=100, help="A/A ab runs per mode")
    ap.add_argument("--slow", type=int, default=40, help="ab runs per mode of each real slowdown (+10%%, +5%%)")
    ap.add_argument("--quiet-scale", type=float, default=1.0, help="run this share of the counts in the quiet mode")
    ap.add_argument("--max-rounds", type=int, default=Budget.max_rounds)
    ap.add_argument("--save", type=Path, default=None, help="append every ab's verdict and round ratios here (JSON lines)")
    args = ap.parse_args(argv)
    spec, budget = GateSpec(), Budget(max_rounds=args.max_rounds)
    started = time.monotonic()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="gate-validation-") as tmp:
        work = Path(tmp)
        models = {"A/A": DIGITS, **{case: calibrate(work, f)[0] for case, f in CASES.items() if f is not None}}
        for mode in args.modes:
            scale = args.quiet_scale if mode == "quiet" else 1.0
            counts = {"A/A": max(1, round(args.aa * scale)), "+10%": max(1, round(args.slow * scale)),
                      "+5%": max(1, round(args.slow * scale))}
            rows += run_mode(mode, counts, models, spec, budget, args.save)
    print(table(rows))
    aa = [r for r in rows if r["case"] == "A/A"]
    print(f"A/A false alarms (regression or improved): {sum(r['verdict'] in ('regression', 'improved') for r in aa)}"
          f"/{len(aa)} (target ≤ 1%)")
    print(f"wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
