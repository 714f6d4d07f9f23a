"""Fresh inputs are fed outside each timed sample (as benchmark_app and litert-benchmark time), still rotating; and
a backend's timed ``infer`` runs on the input it is given, fed or not (real OpenVINO and LiteRT)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from edgebench.artifacts import cache as artifacts
from edgebench.runner.edgebench_runner import load_backend
from edgebench.runner.job import RunnerJob
from edgebench.runner.timing import TimingRules, measure, measure_pair
from tests.corpus import corpus

DIGITS = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo"
RULES = TimingRules(warmup_iterations=2, warmup_s=0, min_iterations=10, min_duration_s=0, max_duration_s=60)


class Model:
    """A fake model on an injected clock: feeding costs ``feed_ns``, inference ``step_ns``; it records both."""

    def __init__(self, clock: list[int], feed_ns: int, step_ns: int) -> None:
        self.clock, self.feed_ns, self.step_ns = clock, feed_ns, step_ns
        self.fed: list[Any] = []
        self.ran: list[Any] = []

    def feed(self, x: Any) -> None:
        self.fed.append(x)
        self.clock[0] += self.feed_ns

    def infer(self, x: Any) -> None:
        assert self.fed[-1] is x, "inferred on an input that was not fed last"
        self.ran.append(x)
        self.clock[0] += self.step_ns


def test_feeding_stays_outside_every_sample_and_inputs_rotate() -> None:
    now = [0]
    model = Model(now, feed_ns=400_000, step_ns=1_000_000)
    out = measure(model.infer, [0, 1, 2], RULES, lambda: now[0], feed=model.feed)
    assert out["samples_ns"] == [1_000_000] * out["iterations"]  # the 0.4 ms feed is in none of them
    assert model.ran == model.fed and model.ran[:7] == [0, 1, 2, 0, 1, 2, 0]


def test_a_paired_job_feeds_both_models_outside_their_samples() -> None:
    now = [0]
    a, b = Model(now, 300_000, 1_000_000), Model(now, 500_000, 2_000_000)
    out_a, out_b = measure_pair((a.infer, b.infer), ([0, 1], [5, 6, 7]), RULES, 0.0, lambda: now[0],
                                (a.feed, b.feed))
    assert set(out_a["samples_ns"]) == {1_000_000} and set(out_b["samples_ns"]) == {2_000_000}
    assert a.ran == a.fed and b.ran == b.fed and b.ran[:4] == [5, 6, 7, 5]


def check_infer_runs_on_what_it_is_given(backend: Any, feeds: list[dict[str, np.ndarray]],
                                         first_output: Callable[[], np.ndarray]) -> None:
    """outputs() of two distinct inputs differ; feed(x) then infer(x) leaves x's outputs in the runtime, and infer(y)
    after feed(x) y's (infer feeds what it is given when that is not what was fed)."""
    first, second = (backend.prepare(f) for f in feeds)
    want = [next(iter(backend.outputs(p).values())) for p in (first, second)]
    assert not np.allclose(want[0], want[1])
    for fed, ran, expected in ((first, first, want[0]), (second, second, want[1]), (first, second, want[1]),
                               (second, first, want[0])):
        backend.feed(fed)
        backend.infer(ran)
        np.testing.assert_allclose(first_output(), expected, rtol=1e-5, atol=1e-6)


def open_backend(kind: str, artifact: Path) -> Any:
    backend = load_backend(kind)(RunnerJob(backend=kind, artifact=str(artifact), threads=1))
    backend.open()
    backend.load(str(artifact))
    return backend


def test_openvino_infer_runs_on_the_fed_input(tmp_path: Path) -> None:
    pytest.importorskip("openvino", reason="OpenVINO is in the 'openvino' extra")
    xml = artifacts.ensure(DIGITS / "digits_cnn.onnx", "openvino", "fp32", root=tmp_path / "c").main
    backend = open_backend("openvino", xml)
    with np.load(DIGITS / "eval.npz") as npz:
        x = npz["inputs"]
    name = backend.input_names[0]
    check_infer_runs_on_what_it_is_given(backend, [{name: x[0:1].copy()}, {name: x[1:2].copy()}],
                                         lambda: np.array(backend.request.get_output_tensor(0).data))


def test_litert_infer_runs_on_the_fed_input() -> None:
    pytest.importorskip("ai_edge_litert", reason="LiteRT is in the 'tflite' extra")
    model = corpus("mp_face_detection")
    backend = open_backend("tflite", model.path)
    with np.load(model.data) as npz:
        feeds = [{k: npz[k][i:i + 1].copy() for k in npz.files} for i in (0, 1)]
    index = backend.output_details[0]["index"]
    check_infer_runs_on_what_it_is_given(backend, feeds, lambda: backend.interp.get_tensor(index))
