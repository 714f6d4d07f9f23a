"""Real conversions of the digits model (OpenVINO, TFLite; fp32 and fp16), each run in its runner."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edgebench.artifacts import cache as artifacts
from edgebench.pipeline.bench import BenchRequest, Outcome, execute
from edgebench.cli import main
from edgebench.pipeline.compare import COMPARE_TIMING
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import check_precision, format_of, get, parse_formats

DIGITS = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo"
ONNX, EVAL, CALIB = DIGITS / "digits_cnn.onnx", DIGITS / "eval.npz", DIGITS / "calib.npz"
CASES = [("openvino", "fp32"), ("openvino", "fp16"), ("tflite", "fp32"), ("tflite", "fp16")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: each (format, precision) is converted once, here."""
    root = tmp_path_factory.mktemp("cache")
    for fmt, prec in CASES:
        artifacts.ensure(ONNX, fmt, prec, calibration=CALIB, root=root)
    return root


def run(cache: Path, fmt: str | None, prec: str | None, model: Path = ONNX) -> Outcome:
    return execute(BenchRequest(model=model, dataset=EVAL, threads=1, timing=COMPARE_TIMING, format=fmt,
                                precision=prec, calibration=CALIB, cache_dir=cache))


@pytest.fixture(scope="module")
def reference(cache: Path) -> Outcome:
    return run(cache, None, None)


@pytest.mark.parametrize("fmt,prec", CASES)
def test_artifact_runs_in_its_runner_and_agrees_with_onnx(cache: Path, reference: Outcome, fmt: str,
                                                          prec: str) -> None:
    outcome = run(cache, fmt, prec)
    result = outcome.result
    assert outcome.target.cache_hit is True  # converted once by the fixture, never again
    assert result.model.format == fmt and result.model.precision == prec
    assert result.runtime["name"].startswith(fmt)
    assert result.accuracy.top1 >= 0.97
    ours, ref = outcome.outputs["logits"], reference.outputs["logits"]
    assert ours.shape == ref.shape == (450, 10)
    assert np.mean(ours.argmax(1) == ref.argmax(1)) >= 0.99
    assert np.max(np.abs(ours - ref)) < (1e-4 if prec == "fp32" else 1e-2)


def test_second_conversion_is_a_cache_hit(cache: Path) -> None:
    before = dict(artifacts.STATS)
    again = artifacts.ensure(ONNX, "openvino", "fp16", calibration=CALIB, root=cache)
    assert again.hit and artifacts.STATS["hits"] == before["hits"] + 1
    assert artifacts.STATS["conversions"] == before["conversions"]
    other = artifacts.ensure(ONNX, "openvino", "fp16", root=cache)  # no calibration: a different key
    assert not other.hit and other.path != again.path


def test_meta_json_carries_the_design_fields(cache: Path) -> None:
    entry = artifacts.ensure(ONNX, "tflite", "fp32", calibration=CALIB, root=cache)
    meta = json.loads((entry.path / "meta.json").read_text())
    for key in ("format", "precision", "recipe", "source_sha256", "files", "size_bytes", "gzip_bytes", "params",
                "nonzero_params", "sparsity", "max_unique_values", "tool_versions", "inputs", "outputs"):
        assert key in meta, key
    assert meta["source_sha256"] == hashlib.sha256(ONNX.read_bytes()).hexdigest()
    assert meta["params"] > 80_000 and meta["nonzero_params"] <= meta["params"]
    assert meta["tool_versions"]["onnx2tf"]
    (inp,), (out,) = meta["inputs"], meta["outputs"]
    assert inp["shape"] == [1, 8, 8, 1] and inp["source_shape"] == ["batch", 1, 8, 8]  # fixed at the sample's
    assert meta["converted_shapes"] == {"input": [1, 1, 8, 8]} and meta["kept_input_shapes"] == []
    assert inp["layout"] == "NHWC" and inp["permutation"] == [0, 2, 3, 1]
    assert out["source_name"] == "logits" and out["permutation"] is None


def test_fp16_artifacts_are_smaller(cache: Path) -> None:
    for fmt in ("openvino", "tflite"):
        fp32 = artifacts.ensure(ONNX, fmt, "fp32", calibration=CALIB, root=cache).meta
        fp16 = artifacts.ensure(ONNX, fmt, "fp16", calibration=CALIB, root=cache).meta
        assert fp16.size_bytes < 0.7 * fp32.size_bytes


def test_onnx2tf_leaves_the_source_model_untouched(cache: Path) -> None:
    meta = artifacts.ensure(ONNX, "tflite", "fp32", calibration=CALIB, root=cache).meta
    assert hashlib.sha256(ONNX.read_bytes()).hexdigest() == meta.source_sha256


def test_cached_artifact_benches_by_path_with_its_meta(cache: Path) -> None:
    """A .tflite given by path picks up the NHWC mapping from the meta.json beside it."""
    tflite = artifacts.ensure(ONNX, "tflite", "fp32", calibration=CALIB, root=cache).main
    outcome = run(cache, None, None, model=tflite)
    assert outcome.result.model.format == "tflite" and outcome.result.accuracy.top1 >= 0.97


def test_convert_cli_prints_the_table_with_cache_hits(cache: Path, capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    status = main(["convert", str(ONNX), "--to", "onnx,openvino,tflite", "--calibration", str(CALIB),
                   "--cache-dir", str(cache), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert status == ExitStatus.OK
    assert out.count("hit") >= 2 and "openvino" in out and "tflite" in out
    assert (tmp_path / "out" / "tflite-fp32" / "model.tflite").is_file()
    assert (tmp_path / "out" / "openvino-fp32" / "model.bin").is_file()


def test_compare_cli_passes_for_fp16(cache: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status = main(["compare", str(ONNX), "--formats", "onnx,openvino,tflite", "--dataset", str(EVAL),
                   "--precision", "fp16", "--calibration", str(CALIB), "--cache-dir", str(cache), "--threads", "1",
                   "--json", str(tmp_path / "c.json")])
    assert status == ExitStatus.OK, capsys.readouterr().err
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert [r["format"] for r in rows] == ["onnx", "openvino", "tflite"]
    assert all(r["passed"] and r["agreement_top1"] >= 0.99 for r in rows)
    assert all(r["snr_db"] >= 30 and r["cosine"] >= 0.999 for r in rows[1:])  # fp16 digits: ~71 dB measured
    assert rows[1]["precision"] == "fp16" and 0 < rows[1]["required_atol"] < 1e-2


def test_compare_fails_with_exit_1_when_the_criteria_are_too_tight(cache: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["compare", str(ONNX), "--formats", "openvino", "--dataset", str(EVAL), "--precision", "fp16",
                   "--cache-dir", str(cache), "--calibration", str(CALIB), "--min-snr", "fp16:100"])
    assert status == ExitStatus.REGRESSION
    assert "openvino/fp16 (logits: SNR 71." in capsys.readouterr().err


def test_registry_and_precisions() -> None:
    assert parse_formats("onnx, OpenVINO,onnx") == ["onnx", "openvino"]
    assert format_of(Path("m.xml")) == "openvino" and format_of(Path("m.plan")) == "tensorrt"
    assert get("tflite").runtime == "tflite"
    with pytest.raises(EdgebenchError, match="choose one of fp32, fp16, int8$") as err:
        check_precision("tensorrt", "int8-dynamic")
    assert err.value.status == ExitStatus.USAGE
    with pytest.raises(EdgebenchError, match="unknown format 'coreml'"):
        parse_formats("onnx,coreml")
