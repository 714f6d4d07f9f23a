"""Paired A/B runs: A, B, A, B … on one device, so that drift and heat hit both models alike; each side's
runs are pooled into one result and the two are gated with the gate's rules."""

from __future__ import annotations

from typing import Callable

from edgebench.pipeline.bench import BenchRequest, model_name, run_bench
from edgebench.config import GateSpec, load_profile
from edgebench.devices.lock import device_lock
from edgebench.pipeline.gate import GateReport, compare, pool
from edgebench.result import Result


def run_rounds(pair: tuple[BenchRequest, BenchRequest], rounds: int,
               starting: Callable[[int, int, BenchRequest], None] | None = None) -> tuple[Result, Result]:
    """Run A then B, ``rounds`` times; A's and B's pooled results. ``starting(round, side, request)`` is
    called before each run (side 0 is A). A's device is held across every round (each run takes its lock
    again, re-entrant), so no other edgebench process measures on it between A and B."""
    runs: tuple[list[Result], list[Result]] = ([], [])
    profiles = [load_profile(req.device) for req in pair]
    with device_lock(profiles[0]):
        for k in range(rounds):
            for side, req in enumerate(pair):
                if starting is not None:
                    starting(k, side, req)
                runs[side].append(run_bench(req, profiles[side]))
    return pool(runs[0]), pool(runs[1])


def gate_pair(pooled: tuple[Result, Result], pair: tuple[BenchRequest, BenchRequest], spec: GateSpec) -> GateReport:
    """The gate's verdicts on B against A, labelled "NAME: A → B @DEVICE"."""
    a, b = pair
    label = f"{model_name(a.model)} → {model_name(b.model)} @{a.device}"
    label = f"{a.name}: {label}" if a.name else label
    return GateReport(checks=compare(pooled[0], pooled[1], spec, label))
