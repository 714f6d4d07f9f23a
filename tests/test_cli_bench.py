"""`edgebench bench` end to end with the real runtime, and every bad input it must refuse cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebench.cli import main
from edgebench.errors import ExitStatus
from tests.conftest import QUICK_TIMING
from tests.models import VOCAB

DESIGN_FIELDS = ("schema_version", "edgebench_version", "created_utc", "status", "model", "device", "runtime",
                 "latency_ms", "samples_ns", "iterations", "duration_s", "load_ms", "first_inference_ms",
                 "throughput_per_s", "memory_mb", "accuracy", "validity", "environment")


def bench(*args: str) -> ExitStatus:
    return main(["bench", *args, *QUICK_TIMING])


def test_bench_digits_writes_the_design_result(digits_onnx, digits_eval, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert bench(str(digits_onnx), "--dataset", str(digits_eval), "--threads", "1", "--json", str(out)) == 0
    table = capsys.readouterr().out
    assert "p50 ms" in table and "digits_cnn" in table
    result = json.loads(out.read_text())
    for key in DESIGN_FIELDS:
        assert key in result, key
    assert result["status"] == "ok" and result["iterations"] == len(result["samples_ns"]) >= 20
    for key in ("p50", "p90", "p95", "p99", "mean", "std", "min", "max", "cv"):
        assert result["latency_ms"][key] > 0 or key in ("std", "cv")
    assert result["accuracy"]["top1"] >= 0.97 and result["accuracy"]["samples"] == 450
    assert set(result["memory_mb"]) == {"baseline", "after_load", "peak"}
    assert set(result["validity"]) >= {"min_iterations_met", "min_duration_met", "cv_ok", "throttled"}
    assert result["model"]["size_bytes"] == digits_onnx.stat().st_size and 0 < result["model"]["gzip_bytes"]
    assert result["model"]["source_sha256"] and result["device"]["profile"] == "local-cpu"
    assert result["options"]["threads"] == 1 and result["runtime"]["version"]


def test_bench_random_inputs_with_batch(digits_onnx, tmp_path):
    out = tmp_path / "r.json"
    assert bench(str(digits_onnx), "--batch", "8", "--json", str(out)) == 0
    result = json.loads(out.read_text())
    assert result["batch"] == 8 and result["extra"]["input_shapes"]["input"] == [8, 1, 8, 8]
    assert result["accuracy"] == {}  # no dataset: nothing to score
    assert result["throughput_per_s"] == pytest.approx(8e3 * result["iterations"] / (sum(result["samples_ns"]) / 1e6))


def test_bench_multi_input_int64_model_with_dynamic_dims(multi_input_onnx, tmp_path):
    out = tmp_path / "r.json"
    assert bench(str(multi_input_onnx), "--shape", "ids:2x16", "--input-range", f"ids:0:{VOCAB}",
                 "--input-value", "scale=0.5", "--json", str(out)) == 0
    result = json.loads(out.read_text())
    assert result["extra"]["input_shapes"] == {"ids": [2, 16], "scale": []} and result["batch"] == 2
    assert result["options"] == {"threads": 0, "batch": 2}  # what identifies the cell: shapes follow from the model


def test_multi_input_dataset_is_scored(multi_input_onnx, tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "tokens.npz"
    np.savez(data, ids=rng.integers(0, VOCAB, size=(12, 16)), scale=np.ones(12, np.float32),
             labels=rng.integers(0, 4, size=12))
    out = tmp_path / "r.json"
    assert bench(str(multi_input_onnx), "--dataset", str(data), "--shape", "ids:1x16", "--json", str(out)) == 0
    assert json.loads(out.read_text())["accuracy"]["samples"] == 12


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgebench: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_nonexistent_model(capsys):
    assert bench("/no/such/model.onnx") == ExitStatus.NOT_FOUND
    assert "model file not found: /no/such/model.onnx" in one_line_error(capsys)


def test_file_that_is_not_onnx(tmp_path, capsys):
    bad = tmp_path / "notes.onnx"
    bad.write_text("these are my notes, not a model\n" * 20)
    assert bench(str(bad)) == ExitStatus.INVALID_MODEL
    assert "notes.onnx is not a readable ONNX model" in one_line_error(capsys)


def test_truncated_onnx(digits_onnx, tmp_path, capsys):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(digits_onnx.read_bytes()[: digits_onnx.stat().st_size // 2])
    assert bench(str(cut)) == ExitStatus.INVALID_MODEL
    assert "cut.onnx" in one_line_error(capsys)


def test_dataset_that_does_not_fit(digits_onnx, tmp_path, capsys):
    data = tmp_path / "wrong.npz"
    np.savez(data, input=np.zeros((4, 1, 28, 28), np.float32))
    assert bench(str(digits_onnx), "--dataset", str(data)) == ExitStatus.DATA_MISMATCH
    assert "input 'input' takes [1, 8, 8]" in one_line_error(capsys)


def test_unknown_device(digits_onnx, capsys):
    assert bench(str(digits_onnx), "--device", "my-phone") == ExitStatus.CONFIG
    assert "unknown device 'my-phone'" in one_line_error(capsys)


def test_profile_with_a_wrong_field(digits_onnx, tmp_path, capsys):
    profile = tmp_path / "board.yaml"
    profile.write_text("name: board\naccelerator: tpu\n")
    assert bench(str(digits_onnx), "--device", str(profile)) == ExitStatus.CONFIG
    assert "field 'accelerator'" in one_line_error(capsys)


def test_runner_process_killed(digits_onnx, tmp_path, capsys):
    killer = tmp_path / "python-that-dies"
    killer.write_text("#!/bin/sh\nkill -9 $$\n")
    killer.chmod(0o755)
    profile = tmp_path / "dying.yaml"
    profile.write_text(f"name: dying\npython: {killer}\n")
    assert bench(str(digits_onnx), "--device", str(profile)) == ExitStatus.RUNNER_FAILED
    assert "died (signal SIGKILL)" in one_line_error(capsys)


def test_traceback_flag_shows_the_traceback(capsys):
    assert main(["--traceback", "bench", "/no/such.onnx"]) == ExitStatus.NOT_FOUND
    assert "Traceback" in capsys.readouterr().err


def test_bad_option_is_a_usage_error(digits_onnx, capsys):
    assert main(["bench", str(digits_onnx), "--batch", "0"]) == ExitStatus.USAGE


def test_console_script_exit_status_and_version():
    exe = Path(sys.executable).parent / "edgebench"
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("edgebench ")
    proc = subprocess.run([str(exe), "bench", "/nope.onnx"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == ExitStatus.NOT_FOUND and proc.stderr.count("\n") == 1


def test_runtime_options_reach_onnxruntime(digits_onnx, tmp_path):
    out = tmp_path / "r.json"
    assert bench(str(digits_onnx), "--option", "graph_optimization_level=disable", "--option",
                 "execution_providers=CPUExecutionProvider", "--json", str(out)) == 0
    options = json.loads(out.read_text())["runtime"]["options"]
    assert options["graph_optimization_level"] == "disable" and options["providers"] == ["CPUExecutionProvider"]


def test_bad_runtime_option_value_is_reported(digits_onnx, capsys):
    assert bench(str(digits_onnx), "--option", "graph_optimization_level=max") == ExitStatus.USAGE
    assert "graph_optimization_level 'max' is not one of" in one_line_error(capsys)
