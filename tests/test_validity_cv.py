"""The `cv_ok` validity flag and the latency summary the host builds from a runner's reply, on sample sets
whose robust CV (1.4826·MAD/median, nearest-rank median and MAD) was worked out by hand.

The reply comes from a real run of the runner on the digits model; only its ``samples_ns`` are replaced by
the constructed sets, so everything else build_result reads (validity, memory, environment) is real."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgebench.pipeline.bench import BenchRequest, build_result
from edgebench.config import TimingSpec, load_profile
from edgebench.formats.tensors import source_tensor_specs
from edgebench.data.inputs import plan_inputs
from edgebench.artifacts.targets import resolve
from tests.test_runner import RUNNERS, make_job, run_runner


# median 1.0 ms; |x − median| sorted: 0, 0.0674, 0.0674, 0.1, 0.2 → MAD (3rd of 5) = 0.0674 ms;
# robust CV = 1.4826 · 0.0674 / 1.0 = 0.09992724: just below 0.1
JUST_BELOW = [900_000, 932_600, 1_000_000, 1_067_400, 1_200_000]
# the same with 0.0675: robust CV = 1.4826 · 0.0675 = 0.10007550: just above 0.1
JUST_ABOVE = [900_000, 932_500, 1_000_000, 1_067_500, 1_200_000]
# 19 × 1 ms and one 10 ms hiccup: MAD 0, robust CV 0; but mean 1.45 ms, std √(77.0/19) = 2.0125 ms, CV 1.388
ONE_HICCUP = [1_000_000] * 19 + [10_000_000]


@pytest.fixture(scope="module")
def reply(tmp_path_factory, digits_onnx, digits_eval) -> dict:
    work = tmp_path_factory.mktemp("cv-job")
    job = make_job(work, digits_onnx, {"input": np.load(digits_eval)["inputs"][:16]}, capture_outputs=False,
                   rotation=64,
                   timing={"warmup_iterations": 2, "warmup_s": 0.01, "min_iterations": 5, "min_duration_s": 0.01,
                           "max_duration_s": 5})
    reply, _ = run_runner(RUNNERS / "edgebench_runner.py", job)
    assert reply["status"] == "ok", reply
    return reply


def result_for(reply: dict, digits_onnx: Path, samples_ns: list[int], cv_threshold: float = 0.1):
    target = resolve(digits_onnx)
    plan = plan_inputs(source_tensor_specs(target.inputs))
    req = BenchRequest(model=digits_onnx, threads=1, timing=TimingSpec(cv_threshold=cv_threshold))
    return build_result(req, load_profile("local-cpu"), target, plan, {**reply, "samples_ns": samples_ns}, 1,
                        None, None)


def test_robust_cv_just_below_the_threshold_is_ok(reply, digits_onnx):
    r = result_for(reply, digits_onnx, JUST_BELOW)
    assert r.latency_ms.p50 == 1.0 and r.latency_ms.robust_cv == pytest.approx(0.09992724, abs=1e-12)
    assert r.validity.cv_ok is True


def test_robust_cv_just_above_the_threshold_is_not_ok(reply, digits_onnx):
    r = result_for(reply, digits_onnx, JUST_ABOVE)
    assert r.latency_ms.p50 == 1.0 and r.latency_ms.robust_cv == pytest.approx(0.10007550, abs=1e-12)
    assert r.validity.cv_ok is False


def test_the_threshold_is_the_timing_spec_s(reply, digits_onnx):
    assert result_for(reply, digits_onnx, JUST_ABOVE, cv_threshold=0.1001).validity.cv_ok is True
    assert result_for(reply, digits_onnx, JUST_BELOW, cv_threshold=0.0999).validity.cv_ok is False


def test_cv_ok_judges_the_robust_cv_not_the_classic_one(reply, digits_onnx):
    r = result_for(reply, digits_onnx, ONE_HICCUP)
    assert r.latency_ms.cv == pytest.approx(2.0124611797 / 1.45, rel=1e-9)  # √4.05 / 1.45 = 1.3879
    assert r.latency_ms.robust_cv == 0.0 and r.validity.cv_ok is True


def test_summary_and_throughput_of_a_hand_computed_set(reply, digits_onnx):
    r = result_for(reply, digits_onnx, [3_000_000, 1_000_000, 2_000_000])  # in time order, not sorted
    # nearest rank on [1, 2, 3] ms: p50 = sorted[ceil(1.5) − 1] = 2, p90/p95/p99 = sorted[2] = 3
    assert {k: getattr(r.latency_ms, k) for k in ("p50", "p90", "p95", "p99", "min", "max")} == \
        {"p50": 2.0, "p90": 3.0, "p95": 3.0, "p99": 3.0, "min": 1.0, "max": 3.0}
    assert r.latency_ms.mean == 2.0 and r.latency_ms.std == 1.0 and r.latency_ms.cv == 0.5
    # MAD: |1−2|, |2−2|, |3−2| sorted 0, 1, 1 → 2nd = 1 ms; robust CV = 1.4826 / 2
    assert r.latency_ms.robust_cv == pytest.approx(0.7413, abs=1e-12)
    assert r.iterations == 3 and r.throughput_per_s == pytest.approx(500.0)  # 3 inferences in 6 ms
    assert r.validity.cv_ok is False
