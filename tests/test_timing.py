"""The timing rules, driven by an injected clock: no sleeping, exact stopping points."""

from __future__ import annotations

import pytest

from edgebench.runner.timing import TimingRules, measure


class FakeClock:
    """Advances only when the model 'runs': each inference costs ``step_ns``."""

    def __init__(self, step_ns: int) -> None:
        self.now = 0
        self.step_ns = step_ns
        self.fed: list[int] = []

    def __call__(self) -> int:
        return self.now

    def infer(self, feed: int) -> None:
        self.fed.append(feed)
        self.now += self.step_ns


def run(rules: TimingRules, step_ms: float, feeds: int = 4) -> tuple[dict, FakeClock]:
    clock = FakeClock(int(step_ms * 1e6))
    return measure(clock.infer, list(range(feeds)), rules, clock), clock


def test_min_iterations_reached_first_then_runs_until_min_duration():
    # 10 ms per iteration: 50 iterations take 0.5 s, but 1 s is required → 100 iterations.
    out, _ = run(TimingRules(warmup_iterations=0, warmup_s=0, min_iterations=50, min_duration_s=1.0,
                             max_duration_s=60), step_ms=10)
    assert out["iterations"] == 100
    assert out["validity"] == {"min_iterations_met": True, "min_duration_met": True,
                               "stopped_by_max_duration": False}


def test_min_duration_reached_first_then_runs_until_min_iterations():
    # 100 ms per iteration: 1 s passes after 10 iterations, but 50 are required.
    out, _ = run(TimingRules(warmup_iterations=0, warmup_s=0, min_iterations=50, min_duration_s=1.0,
                             max_duration_s=60), step_ms=100)
    assert out["iterations"] == 50
    assert out["duration_s"] == pytest.approx(5.0)


def test_max_duration_caps_the_run_and_flags_unmet_minimums():
    # 1 s per iteration: 50 iterations would take 50 s; the cap stops at 10 s.
    out, _ = run(TimingRules(warmup_iterations=0, warmup_s=0, min_iterations=50, min_duration_s=1.0,
                             max_duration_s=10), step_ms=1000)
    assert out["iterations"] == 10
    assert out["validity"]["min_iterations_met"] is False
    assert out["validity"]["stopped_by_max_duration"] is True


def test_warmup_needs_both_iterations_and_seconds():
    out, _ = run(TimingRules(warmup_iterations=3, warmup_s=0.5, min_iterations=1, min_duration_s=0,
                             max_duration_s=60), step_ms=100)
    assert out["warmup"]["iterations"] == 5  # 0.5 s at 100 ms, more than the 3 iterations asked
    out, _ = run(TimingRules(warmup_iterations=8, warmup_s=0.05, min_iterations=1, min_duration_s=0,
                             max_duration_s=60), step_ms=100)
    assert out["warmup"]["iterations"] == 8


def test_every_sample_is_one_iteration_and_inputs_rotate():
    out, clock = run(TimingRules(warmup_iterations=2, warmup_s=0, min_iterations=6, min_duration_s=0,
                                 max_duration_s=60), step_ms=3, feeds=4)
    assert out["samples_ns"] == [3_000_000] * 6
    assert clock.fed == [0, 1, 2, 3, 0, 1, 2, 3]  # warm-up continues the rotation; no buffer reused twice in a row


def test_rules_from_job_dict_keep_defaults_for_missing_keys():
    rules = TimingRules.from_dict({"min_iterations": 7, "max_duration_s": None})
    assert rules.min_iterations == 7 and rules.max_duration_s == TimingRules().max_duration_s
