"""`bench --profile` and a sweep's `profile: true`: per-layer times from each runtime's own profiler, taken after
the timed loop, stored in the result and printed as a top-N table; real runtimes, the digits model and corpus models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edgebench import api
from edgebench.artifacts import cache as artifacts
from edgebench.cli import main
from edgebench.config import TimingSpec
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.bench import BenchRequest, execute
from edgebench.result import LayerProfile, Result, read_results
from edgebench.runner import profiling
from edgebench.runner.job import JobError, RunnerJob
from tests.conftest import DIGITS, QUICK_TIMING
from tests.corpus import corpus

QUICK = TimingSpec(warmup_iterations=1, warmup_s=0, min_iterations=10, min_duration_s=0, max_duration_s=2)


def request(model: Path, dataset: Path | None = None) -> BenchRequest:
    return BenchRequest(model=model, dataset=dataset, threads=1, timing=QUICK, profile=True)


def check_profile(profile: LayerProfile | None, source: str) -> LayerProfile:
    """What holds for any profile a runtime gave: ops longest first, shares of one total, a pass of 10–100."""
    assert profile is not None and profile.source == source and profile.ops, profile
    assert profiling.MIN_ITERATIONS <= profile.iterations <= profiling.MAX_ITERATIONS
    assert [op.ms for op in profile.ops] == sorted((op.ms for op in profile.ops), reverse=True)
    assert all(op.ms >= 0 and 0 <= op.share <= 1 and op.node and op.op for op in profile.ops)
    total = sum(op.share for op in profile.ops)
    assert total == pytest.approx(1.0) if profile.note is None else total <= 1.0 + 1e-9
    return profile


def test_job_wire_format_is_unchanged_unless_profiled() -> None:
    job = RunnerJob(backend="onnxruntime", artifact="m.onnx", inputs_npz="i.npz")
    assert "profile" not in job.to_dict()
    profiled = RunnerJob(backend="onnxruntime", artifact="m.onnx", inputs_npz="i.npz", profile=True)
    assert profiled.to_dict()["profile"] is True and RunnerJob.from_dict(profiled.to_dict()) == profiled
    with pytest.raises(JobError, match="job field 'profile' is 'yes', not true or false"):
        RunnerJob.from_dict({**job.to_dict(), "profile": "yes"})


def test_bench_profile_digits_onnx_prints_and_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    status = main(["bench", str(DIGITS / "digits_cnn.onnx"), "--threads", "1", "--profile", *QUICK_TIMING,
                   "--json", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "per-layer profile: top" in printed and "onnxruntime profiling trace" in printed
    (result,) = read_results(out)
    profile = check_profile(result.profile, "onnxruntime profiling trace")
    assert {"Conv", "MaxPool"} <= {op.op for op in profile.ops}  # ORT's fused nodes keep their op type
    assert all(op.precision == "float" for op in profile.ops)  # fp32 on the CPU provider
    assert result.iterations >= 20 and len(result.samples_ns) == result.iterations  # the timed loop, as ever
    assert Result.from_dict(json.loads(out.read_text())).profile == profile  # the JSON round trip


def test_bench_without_profile_writes_no_profile_key(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["bench", str(DIGITS / "digits_cnn.onnx"), "--threads", "1", *QUICK_TIMING, "--json", str(out)]) == 0
    assert "profile" not in json.loads(out.read_text())


def test_openvino_counters_name_the_kernel_and_precision(recipe_cache: Path) -> None:
    """The digits model in OpenVINO fp32 and int8: exec_type shows the int8 kernels (what a user looks for
    when int8 is slower than fp32)."""
    pytest.importorskip("openvino", reason="OpenVINO is in the 'openvino' extra")
    fp32 = artifacts.ensure(DIGITS / "digits_cnn.onnx", "openvino", "fp32", root=recipe_cache).main
    profile = check_profile(execute(request(fp32)).result.profile, "openvino performance counters")
    assert "Convolution" in {op.op for op in profile.ops}
    assert all(op.precision and op.precision.lower().endswith("f32") for op in profile.ops if op.op == "Convolution")
    int8 = artifacts.ensure(DIGITS / "digits_cnn.onnx", "openvino", "int8", calibration=DIGITS / "calib.npz",
                            root=recipe_cache).main
    profile = check_profile(execute(request(int8)).result.profile, "openvino performance counters")
    assert any(op.precision and op.precision.upper().endswith("I8") for op in profile.ops), profile.ops


def test_corpus_model_onnx_and_openvino(recipe_cache: Path) -> None:
    """ppocr_cls (PaddleOCR's orientation CNN, 229 ORT nodes): the table keeps the 100 longest, the note says how
    much the rest took."""
    pytest.importorskip("openvino", reason="OpenVINO is in the 'openvino' extra")
    model = corpus("ppocr_cls")
    onnx = check_profile(execute(request(model.path, dataset=model.data)).result.profile, "onnxruntime profiling trace")
    assert len(onnx.ops) == profiling.TOP and onnx.note and "shorter ops" in onnx.note
    assert {"Conv", "GlobalAveragePool"} <= {op.op for op in onnx.ops}
    xml = artifacts.ensure(model.path, "openvino", "fp32", root=recipe_cache).main
    ov = check_profile(execute(request(xml, dataset=model.data)).result.profile, "openvino performance counters")
    assert {"Convolution", "GroupConvolution"} <= {op.op for op in ov.ops}


def test_tflite_says_what_is_missing_and_still_measures() -> None:
    model = corpus("mp_face_detection")  # a Google-made .tflite, run as it is, through the Python API
    result = api.bench(model.path, threads=1, timing=QUICK, profile=True)
    assert result.ok and result.iterations >= 10
    profile = result.profile
    assert profile is not None and profile.ops == () and profile.iterations == 0
    assert profile.note and "no op profiler" in profile.note and "--enable_op_profiling=true" in profile.note


def test_sweep_profile_option(tmp_path: Path) -> None:
    spec = {"name": "p", "models": [{"name": "digits", "path": str(DIGITS / "digits_cnn.onnx"),
                                     "dataset": str(DIGITS / "eval.npz")}],
            "recipes": ["fp32"], "formats": ["onnx"], "devices": ["local-cpu"], "options": {"threads": [1]},
            "timing": QUICK.model_dump(exclude={"cv_threshold"}), "profile": True}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "all.json"
    assert main(["sweep", str(tmp_path / "s.yaml"), "--store", str(tmp_path / "r.db"), "--cache-dir",
                 str(tmp_path / "cache"), "--json", str(out)]) == 0
    (result,) = read_results(out)
    check_profile(result.profile, "onnxruntime profiling trace")


def test_summary_keeps_the_longest_and_says_what_it_left_out() -> None:
    times = {f"n{i}": profiling.NodeTime("Conv", "float", float(i + 1)) for i in range(150)}
    part = profiling.summary("trace", 10, times)
    assert len(part["ops"]) == profiling.TOP and part["ops"][0]["node"] == "n149" and part["ops"][0]["ms"] == 15.0
    assert part["note"] == f"50 shorter ops ({sum(range(1, 51)) / sum(range(1, 151)):.1%} of the time) left out"
    assert profiling.summary("trace", 10, {})["iterations"] == 0
    assert profiling.iterations_for([10**6] * 5) == 100 and profiling.iterations_for([10**9] * 5) == 10


def test_a_foreign_profile_is_refused_in_one_line() -> None:
    op = {"node": "a", "op": "Conv", "ms": 0.1, "share": 1.0, "precision": None}
    good = {"source": "x", "iterations": 3, "ops": [op], "note": None}
    assert LayerProfile.from_dict(good).to_dict() == good
    with pytest.raises(EdgebenchError, match="profile op: field 'ms'") as err:
        Result.from_dict({"schema_version": 1, "model": {"name": "m"}, "device": {"profile": "d"}, "status": "ok",
                          "profile": {**good, "ops": [{**op, "ms": "fast"}]}})
    assert err.value.status == ExitStatus.USAGE
