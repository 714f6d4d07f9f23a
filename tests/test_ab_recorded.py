"""The sequential A/B on recorded rounds (tests/fixtures/gate/ab-rounds.json, made by record_rounds.py): real
round pairs of ``edgebench ab`` of the digits model against itself and against a +10% slower variant, under a
busy loop on the runner's core (steady, in bursts, from round 7, every other round) on a machine that another
benchmark kept busy. The ratios are fixed, so every verdict and the round it is reached at are exact; no
load on the machine running the tests can change them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgebench.config import GateSpec
from edgebench.pipeline.sequential import decide

SETS = json.loads((Path(__file__).resolve().parent / "fixtures" / "gate" / "ab-rounds.json").read_text())
RULE = GateSpec().rule("latency_p50", "local-cpu")

# set → the first verdict per metric (p50, p90, p99) and the round pair it came at; None: never decided
FIRST = {
    "quiet": {"p50": ("equivalent", 20), "p90": ("equivalent", 20), "p99": None},
    "steady": {"p50": ("equivalent", 27), "p90": ("equivalent", 27), "p99": None},
    "bursty": {"p50": ("equivalent", 37), "p90": ("equivalent", 17), "p99": None},
    "drifting": {"p50": ("equivalent", 17), "p90": None, "p99": None},
    "bimodal": {"p50": ("equivalent", 27), "p90": None, "p99": None},
    "slow-bursty": {"p50": ("regression", 20), "p90": None, "p99": None},
}


def first_verdict(ratios: list[float]) -> tuple[str, int] | None:
    for n in range(1, len(ratios) + 1):
        verdict = decide(ratios[:n], RULE.threshold, RULE.alpha).verdict
        if verdict != "undecided":
            return verdict, n
    return None


@pytest.mark.parametrize("name", list(FIRST))
def test_recorded_rounds_decide_exactly_when_they_did(name):
    got = {metric: first_verdict(ratios) for metric, ratios in SETS[name]["ratios"].items()}
    assert got == FIRST[name]
    # the rounds stopped at the p50 verdict (the only deciding metric by default), never later
    assert SETS[name]["stopped"] == "verdict" and len(SETS[name]["ratios"]["p50"]) == FIRST[name]["p50"][1]


@pytest.mark.parametrize("name", list(FIRST))
def test_pairing_holds_the_ratio_where_the_latency_wanders(name):
    """What the paired rounds buy: each model's p50 wanders between rounds (interquartile range 17–68%, up to
    2× between extremes), the paired ratio moves by a fraction of that."""
    a = np.asarray(SETS[name]["a_p50_ms"])
    ratios = np.asarray(SETS[name]["ratios"]["p50"])
    iqr = lambda x: np.percentile(x, 75) / np.percentile(x, 25)  # noqa: E731
    assert iqr(a) > 1.15 and a.max() / a.min() > 1.8
    assert iqr(ratios) < 1.06 and iqr(ratios) - 1 < (iqr(a) - 1) / 3


def test_no_aa_set_is_ever_a_regression_or_an_improvement_at_any_round():
    for name, data in SETS.items():
        if name.startswith("slow"):
            continue
        for metric, ratios in data["ratios"].items():
            rule = GateSpec().rule(f"latency_{metric}", "local-cpu")
            verdicts = {decide(ratios[:n], rule.threshold, rule.alpha).verdict for n in range(1, len(ratios) + 1)}
            assert verdicts <= {"undecided", "equivalent"}, (name, metric)


def test_the_slower_model_is_never_called_equivalent_or_faster():
    ratios = SETS["slow-bursty"]["ratios"]["p50"]
    verdicts = [decide(ratios[:n], RULE.threshold, RULE.alpha).verdict for n in range(1, len(ratios) + 1)]
    assert set(verdicts) == {"undecided", "regression"} and np.median(ratios) > 1.05


@pytest.mark.parametrize("ci, failed", [((0.97, 1.03), False), ((0.97, 1.08), True)])
def test_an_undecided_ab_fails_in_ci_unless_a_regression_is_already_excluded(ci, failed):
    """At the budget, p50 undecided: with the interval's upper end below +5% the gate's question (slower or
    not) is answered and CI passes; with it above, CI fails and the message names the budget to try next."""
    from edgebench.pipeline.ab import ABRounds, Budget, gate_rounds
    from edgebench.pipeline.bench import BenchRequest
    from edgebench.pipeline.sequential import Decision
    from tests.test_gate_recorded import recorded

    rounds = ABRounds((recorded("quiet-a"), recorded("quiet-b")), {"latency_p50": [1.0] * 40},
                      {"latency_p50": Decision("undecided", 40, 1.0, ci)}, stopped="rounds")
    pair = (BenchRequest(model=Path("a.onnx")), BenchRequest(model=Path("b.onnx")))
    spec = GateSpec().for_ci(True)
    check = next(c for c in gate_rounds(rounds, pair, spec, Budget(), "try --max-rounds 80").checks
                 if c.metric == "latency_p50")
    assert check.verdict == "inconclusive" and check.failed == failed
    assert "stopped at the budget of 40 round pairs before this metric could decide: try --max-rounds 80" in check.message
    assert ("a regression past +5% is excluded (upper bound +3.0%)" in check.message) != failed
