"""The sequential A/B test (pipeline/sequential.py), the paired runner job it reads and its timing loop: exact
counts and verdicts on fixed round ratios, the false-alarm guarantee checked by seeded simulation, the
confidence sequence against a brute-force inversion, and the paired measurement loop on an injected clock.
Nothing here depends on how busy the machine is."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebench.devices.reply import read_reply
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.sequential import decide, log_mixture, min_rounds, rejecting_count
from edgebench.runner.job import PARTNER, JobError, RunnerJob
from edgebench.runner.timing import TimingRules, measure_pair

ALPHA = 0.002  # the default latency rule's alpha


def test_the_rejecting_count_is_the_first_that_crosses_one_over_alpha():
    level = math.log(1 / ALPHA)
    for n in range(1, 61):
        s = rejecting_count(n, ALPHA)
        if s is None:
            assert log_mixture(n, n) < level
        else:
            assert log_mixture(n, s) >= level > log_mixture(n, s - 1)


def test_fewest_rounds_and_counts_at_the_default_alpha():
    assert (min_rounds(ALPHA), min_rounds(0.01), min_rounds(0.05)) == (12, 9, 7)
    assert [rejecting_count(n, ALPHA) for n in (11, 12, 16, 18, 20, 40)] == [None, 12, 16, 17, 18, 32]


@pytest.mark.parametrize("ratio, verdict", [(1.20, "regression"), (1.0, "equivalent"), (0.80, "improved")])
def test_rounds_that_all_agree_decide_at_the_fewest_rounds(ratio, verdict):
    ratios = [ratio * (1 + 0.001 * k) for k in range(12)]
    assert decide(ratios[:11], 0.05, ALPHA).verdict == "undecided"
    d = decide(ratios, 0.05, ALPHA)
    assert (d.verdict, d.rounds) == (verdict, 12)
    assert d.ci == (min(ratios), max(ratios))


def test_one_burst_costs_rounds_never_the_verdict():
    """A round that a neighbour's burst hit (one side 3× slower) is one vote against: the A/A pair is proven
    equivalent once 16 of 17 rounds are inside the threshold (5 rounds later than without it), never called a
    regression."""
    ratios = [1.0 + 0.002 * (k % 5) for k in range(16)]
    ratios.insert(5, 3.0)
    verdicts = [decide(ratios[:n], 0.05, ALPHA).verdict for n in range(1, 18)]
    assert verdicts == ["undecided"] * 16 + ["equivalent"]


def test_a_change_at_the_threshold_is_never_proven_either_way():
    ratios = [1.05 * (1 + 0.01 * (-1) ** k) for k in range(40)]  # half just above, half just below
    assert {decide(ratios[:n], 0.05, ALPHA).verdict for n in range(1, 41)} == {"undecided"}


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_false_alarms_stay_below_alpha_under_continuous_monitoring(alpha):
    """Ville's guarantee, simulated (seeded, so exact): 4000 A/B runs whose true median ratio is exactly at
    the threshold (+5%), each looked at after every one of 40 round pairs and stopped at the first verdict,
    with heavy-tailed noise (Student t, 2 d.o.f.). The share ever called a regression stays ≤ alpha."""
    rng = np.random.default_rng(7)
    runs, rounds, threshold = 4000, 40, 0.05
    ratios = (1 + threshold) * np.exp(0.03 * rng.standard_t(2, size=(runs, rounds)))
    alarms = 0
    for row in ratios:
        for n in range(min_rounds(alpha), rounds + 1):
            if decide(row[:n], threshold, alpha).verdict == "regression":
                alarms += 1
                break
    assert alarms / runs <= alpha, alarms


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.5, 2.0, allow_nan=False), min_size=1, max_size=40, unique=True),
       st.sampled_from([0.002, 0.01, 0.05]))
def test_the_confidence_sequence_is_the_set_of_ratios_no_test_rejects(ratios, alpha):
    """Brute force: θ is outside the interval exactly when the count of rounds past it proves the median past it."""
    d = decide(ratios, 0.05, alpha)
    n, level = len(ratios), math.log(1 / alpha)
    grid = sorted(ratios) + [min(ratios) - 1e-9, max(ratios) + 1e-9]
    for theta in grid:
        above = sum(r > theta for r in ratios)
        below = sum(r < theta for r in ratios)
        rejected = log_mixture(n, above) >= level or log_mixture(n, below) >= level
        inside = d.ci[0] <= theta <= d.ci[1]
        assert rejected != inside or theta in (d.ci[0], d.ci[1]), (theta, d.ci)


# --- the paired job and its timing loop -------------------------------------------------------------------


class Clock:
    """A fake ns clock that only the fake models advance."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def test_measure_pair_alternates_blocks_and_meets_both_minimums():
    clock, order = Clock(), []

    def model(name: str, ns: int):
        def infer(feed: object) -> None:
            order.append(name)
            clock.now += ns
        return infer

    rules = TimingRules(warmup_iterations=2, warmup_s=0.0, min_iterations=10, min_duration_s=0.001,
                        max_duration_s=1.0)
    a, b = measure_pair((model("A", 100_000), model("B", 250_000)), ([0], [0]), rules, block_s=0.0005, clock=clock)
    assert order[:6] == ["A"] * 3 + ["B"] * 3  # each warmed up alone: 2 warm-up iterations and 1 timed
    # blocks of ≥ 0.5 ms: 5 iterations of A, 2 of B; the first of each block pair alternating A B, B A …;
    # B needs 10 iterations, so 5 block pairs
    a_block, b_block = ["A"] * 5, ["B"] * 2
    assert order[6:] == (a_block + b_block + b_block + a_block) * 2 + a_block + b_block
    assert a["samples_ns"] == [100_000] * a["iterations"] and b["samples_ns"] == [250_000] * b["iterations"]
    assert (a["iterations"], b["iterations"]) == (25, 10)
    assert (a["duration_s"], b["duration_s"]) == (0.0025, 0.0025)
    assert a["validity"] == {"min_iterations_met": True, "min_duration_met": True, "stopped_by_max_duration": False}
    assert a["warmup"]["blocks"] == b["warmup"]["blocks"] == 5


def test_a_paired_job_round_trips_and_places_its_partners_files():
    job = RunnerJob(backend="onnxruntime", partner=RunnerJob(backend="openvino"), block_s=0.02)
    placed = job.placed({"artifact": "/a.onnx", "inputs_npz": "/a.npz", PARTNER + "artifact": "/b.xml",
                         PARTNER + "artifact_weights": "/b.bin", PARTNER + "inputs_npz": "/b.npz"}, "/out.npz")
    assert placed.partner is not None
    assert (placed.partner.artifact, placed.partner.artifact_weights, placed.partner.inputs_npz) == \
        ("/b.xml", "/b.bin", "/b.npz")
    assert RunnerJob.from_dict(json.loads(json.dumps(placed.to_dict()))) == placed
    bad = {**job.placed({"artifact": "a", "inputs_npz": "i", PARTNER + "artifact": "b",
                         PARTNER + "inputs_npz": "j"}, "o").to_dict(), "block_s": 0}
    with pytest.raises(JobError, match="block_s"):
        RunnerJob.from_dict(bad)


def test_a_paired_reply_with_a_broken_partner_is_a_protocol_error():
    part = {"status": "ok", "runtime": {"name": "onnxruntime", "version": "1"}, "samples_ns": [5, 6],
            "duration_s": 0.1, "load_ms": 1.0, "first_inference_ms": 1.0, "memory_mb": {},
            "validity": {"min_iterations_met": True, "min_duration_met": True, "stopped_by_max_duration": False}}
    ok = {**part, "partner": part}
    assert read_reply(json.dumps(ok), "", 0, "local-cpu", "exit 0")["partner"]["samples_ns"] == [5, 6]
    broken = {**part, "partner": {**part, "samples_ns": []}}
    with pytest.raises(EdgebenchError) as err:
        read_reply(json.dumps(broken), "", 0, "local-cpu", "exit 0")
    assert err.value.status == ExitStatus.RUNNER_FAILED and "samples_ns" in str(err.value)
