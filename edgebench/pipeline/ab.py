"""Sequential paired A/B runs: A B, B A, A B … on one device until the latency verdict is reached.

Each round pair runs A and B back to back (the order alternating, so an order effect cancels) and gives
one paired ratio per latency percentile; after every pair the sequential test (``pipeline/sequential.py``)
says whether the median ratio is proven past the threshold (regression, improvement), proven within it
(equivalent) or not yet. The rounds stop at the first verdict on every deciding metric (the enabled
latency metrics of severity ``fail``) or at the budget; stopping early costs nothing in false alarms
because the test is valid at every round. Memory, size and accuracy are gated on the pooled runs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable

from edgebench.config import GateSpec, TimingSpec, load_profile
from edgebench.devices.lock import device_lock
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.bench import BenchRequest, model_name, plan_job, resolve_target, run_bench
from edgebench.pipeline.gate import FAILING, LATENCY_PERCENTILES, Check, GateReport, compare, pool
from edgebench.pipeline.paired import run_paired
from edgebench.pipeline.sequential import Decision, decide
from edgebench.result import Result

# Each run short (the round pairs, not one long run, give the evidence), warm-up included in every run.
AB_TIMING = TimingSpec(warmup_s=0.1, min_duration_s=0.2, max_duration_s=10.0)
VERDICT = {"regression": "regression", "improved": "improved", "equivalent": "pass", "undecided": "inconclusive"}


@dataclass(frozen=True)
class Budget:
    """When the rounds stop without a verdict: after ``max_rounds`` round pairs, or before a pair that
    would end past ``max_time_s`` (predicted from the pairs so far)."""

    max_rounds: int = 40
    max_time_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_rounds < 1:
            raise EdgebenchError(f"max_rounds={self.max_rounds}: allow at least 1 round pair", ExitStatus.USAGE)
        if not self.max_time_s > 0:
            raise EdgebenchError(f"max_time_s={self.max_time_s}: allow a positive time", ExitStatus.USAGE)


@dataclass
class ABRounds:
    """What the rounds measured: each side pooled, the round ratios and decisions per latency metric, why
    the rounds stopped (``verdict`` | ``rounds`` | ``time`` | ``error``) and how long they took."""

    pooled: tuple[Result, Result]
    ratios: dict[str, list[float]] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    stopped: str = "verdict"
    elapsed_s: float = 0.0


def deciding_metrics(spec: GateSpec, device: str) -> list[str]:
    """The latency metrics whose verdicts end the rounds: those enabled with severity ``fail`` (else every
    enabled one; none when latency is not gated at all — then one round pair measures the rest)."""
    enabled = [m for m in LATENCY_PERCENTILES if spec.rule(m, device).enabled]
    return [m for m in enabled if spec.rule(m, device).severity == "fail"] or enabled


def run_sequential(pair: tuple[BenchRequest, BenchRequest], spec: GateSpec, budget: Budget = Budget(),
                   starting: Callable[[int, str], None] | None = None,
                   finished: Callable[[int, dict[str, Decision]], None] | None = None,
                   clock: Callable[[], float] = time.monotonic) -> ABRounds:
    """First A and B once each alone (memory, accuracy, and any error of either model on its own), then round
    pairs — both models in one runner process, timed in alternating blocks — until every deciding metric has
    a verdict or the budget is spent. ``starting(round, what)`` is called before each run (round 0: the
    runs alone), ``finished(round, decisions)`` after each round pair. A's device is held throughout (each
    run takes its lock again, re-entrant), so no other edgebench process measures on it meanwhile."""
    profile = load_profile(pair[0].device)
    deciding = deciding_metrics(spec, profile.name)
    ratios: dict[str, list[float]] = {}
    decisions: dict[str, Decision] = {}
    rounds: tuple[list[Result], list[Result]] = ([], [])
    start = clock()
    with device_lock(profile):
        alone = []
        for side, req in enumerate(pair):
            if starting is not None:
                starting(0, f"{'AB'[side]} alone ({model_name(req.model, req.name)})")
            alone.append(run_bench(req, profile))
            if not alone[-1].ok:
                return ABRounds((alone[0], alone[-1]), stopped="error", elapsed_s=clock() - start)
        jobs = [plan_job(req, profile, resolve_target(req)) for req in pair]
        stopped, k = "verdict", 0
        while deciding or k == 0:
            if starting is not None:
                starting(k + 1, "A and B together")
            for side, result in enumerate(run_paired(jobs[0], jobs[1])):
                rounds[side].append(result)
            k += 1
            for metric in LATENCY_PERCENTILES:
                rule = spec.rule(metric, profile.name)
                if rule.enabled:
                    p = LATENCY_PERCENTILES[metric]
                    a, b = _percentile(rounds[0][-1], p), _percentile(rounds[1][-1], p)
                    ratios.setdefault(metric, []).append(b / a if a and b else float("nan"))
                    decisions[metric] = decide(ratios[metric], rule.threshold or 0.0, rule.alpha or 0.0)
            if finished is not None:
                finished(k, decisions)
            if all(decisions[m].verdict != "undecided" for m in deciding):
                break
            if k >= budget.max_rounds:
                stopped = "rounds"
                break
            if (clock() - start) * (k + 1) / k > budget.max_time_s:
                stopped = "time"
                break
    elapsed = clock() - start
    record = {"round_pairs": k, "stopped": stopped, "elapsed_s": round(elapsed, 3),
              "ratios": {m: [round(r, 6) for r in v] for m, v in ratios.items()}}
    pooled = tuple(_pooled(runs, solo, record) for runs, solo in zip(rounds, alone))
    return ABRounds((pooled[0], pooled[1]), ratios, decisions, stopped, elapsed)


def _pooled(rounds: list[Result], alone: Result, record: dict[str, object]) -> Result:
    """The paired rounds' samples pooled, with memory and accuracy from the run alone (in a pair the
    process held both models and captured no outputs)."""
    pooled = pool(rounds)
    return dataclasses.replace(pooled, memory_mb=alone.memory_mb, accuracy=alone.accuracy,
                               extra={**pooled.extra, "ab": record})


def _percentile(result: Result, p: int) -> float | None:
    return result.latency_ms.percentile(p) if result.latency_ms is not None else None


def ab_label(pair: tuple[BenchRequest, BenchRequest]) -> str:
    """"NAME: A → B @DEVICE" as the checks are labelled."""
    a, b = pair
    label = f"{_shown(a)} → {_shown(b)} @{a.device}"
    named = a.name and not (a.source is not None and a.name == _shown(a))  # not the name a source export gave it
    return f"{a.name}: {label}" if named else label


def _shown(req: BenchRequest) -> str:
    """A side's model by bench's naming rule: its file, or the source model its hub ONNX was exported from."""
    return model_name(str(req.source["path"]) if req.source is not None else req.model)


def gate_rounds(rounds: ABRounds, pair: tuple[BenchRequest, BenchRequest], spec: GateSpec,
                budget: Budget = Budget(), settle: str = "") -> GateReport:
    """The verdicts on B against A: latency from the sequential test, the other metrics on the pooled runs.
    ``settle``: what to run for more evidence, named in an inconclusive verdict."""
    label = ab_label(pair)
    base, cand = rounds.pooled
    if rounds.stopped == "error":
        failed = base if not base.ok else cand
        err = failed.error
        why = f"{err.kind}: {err.message}" if err is not None else "no message"
        return GateReport(checks=[Check(cell=label, metric="status", verdict="error", failed=True,
                                        message=f"{'A' if failed is base else 'B'} failed: {why}")])
    checks = compare(base, cand, spec, label, skip=tuple(rounds.decisions))
    device = pair[0].device
    for metric, decision in rounds.decisions.items():
        rule = spec.rule(metric, device)
        p = LATENCY_PERCENTILES[metric]
        verdict = VERDICT[decision.verdict]
        lo, hi = decision.ci
        notes = [f"{decision.rounds} round pair(s), median paired ratio {decision.estimate - 1:+.1%}, "
                 f"confidence sequence [{lo - 1:+.1%}, {hi - 1:+.1%}]" if lo > 0 and hi < float("inf") else
                 f"{decision.rounds} round pair(s), median paired ratio {decision.estimate - 1:+.1%}: too few "
                 "rounds for a confidence bound"]
        if decision.verdict == "equivalent":
            notes.append(f"equivalent within ±{rule.threshold:.0%}")
        if verdict == "inconclusive":
            why = {"rounds": f"the budget of {budget.max_rounds} round pairs",
                   "time": f"the time budget of {budget.max_time_s:g} s",
                   "verdict": "the deciding metrics' verdicts"}.get(rounds.stopped, rounds.stopped)
            notes.append(f"stopped at {why} before this metric could decide" + (f": {settle}" if settle else ""))
        check = Check(cell=label, metric=metric, verdict=verdict, baseline=_percentile(base, p),
                      candidate=_percentile(cand, p), unit="ms", ratio=decision.estimate,
                      ci=decision.ci if lo > 0 and hi < float("inf") else None,
                      rule=f">{rule.threshold:.0%}, sequential α={rule.alpha:g}", message="; ".join(notes))
        # An undecided metric whose interval already excludes a regression past the threshold is no reason
        # to fail: the gate asks "slower or not", and that much is proven.
        excluded = verdict == "inconclusive" and hi < 1 + (rule.threshold or 0.0)
        if excluded:
            notes.append(f"a regression past +{rule.threshold:.0%} is excluded (upper bound {hi - 1:+.1%})")
        check.message = "; ".join(notes)
        check.failed = rule.severity == "fail" and (
            verdict in FAILING or (verdict == "inconclusive" and spec.inconclusive == "fail" and not excluded))
        if verdict == "regression" and rule.severity == "warn":
            check.message = "severity warn: reported, not failed; " + check.message
        checks.append(check)
    return GateReport(checks=checks)
