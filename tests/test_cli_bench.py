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


def nearest_rank_ms(samples_ns: list[int], p: int) -> float:
    """sorted[ceil(p·n/100) − 1], with numpy and integer arithmetic (not edgebench.pipeline.stats)."""
    ms = np.sort(np.asarray(samples_ns, dtype=np.int64)) / 1e6
    return float(ms[(p * len(ms) + 99) // 100 - 1])


def robust_cv(samples_ns: list[int]) -> float:
    ms = np.sort(np.asarray(samples_ns, dtype=np.int64)) / 1e6
    median = nearest_rank_ms(samples_ns, 50)
    mad = np.sort(np.abs(ms - median))[(50 * len(ms) + 99) // 100 - 1]
    return float(1.4826 * mad / median)


def check_latency_summary(lat: dict, samples_ns: list[int]) -> None:
    """The summary is the raw samples' (recomputed here with numpy), and ordered as percentiles must be."""
    ms = np.asarray(samples_ns, dtype=np.int64) / 1e6
    assert all(isinstance(s, int) and s > 0 for s in samples_ns)
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert (lat["min"], lat["max"]) == (ms.min(), ms.max())
    for p in (50, 90, 95, 99):
        assert lat[f"p{p}"] == nearest_rank_ms(samples_ns, p), p  # a measured value, never interpolated
    assert lat["mean"] == pytest.approx(ms.mean(), rel=1e-12)
    assert lat["std"] == pytest.approx(ms.std(ddof=1), rel=1e-9)
    assert lat["cv"] == pytest.approx(ms.std(ddof=1) / ms.mean(), rel=1e-9)
    assert lat["robust_cv"] == pytest.approx(robust_cv(samples_ns), rel=1e-12)


def check_validity(result: dict, min_iterations: int, min_duration_s: float, max_duration_s: float,
                   cv_threshold: float = 0.1) -> None:
    """Every flag is a boolean that says what the timing rules say about this run."""
    v = result["validity"]
    assert set(v) == {"min_iterations_met", "min_duration_met", "stopped_by_max_duration", "cv_ok", "throttled"}
    assert all(type(flag) is bool for flag in v.values()), v
    assert v["min_iterations_met"] == (result["iterations"] >= min_iterations)
    duration_ns = round(result["duration_s"] * 1e9)  # the runner's own ns count, exactly
    assert v["min_duration_met"] == (duration_ns >= round(min_duration_s * 1e9))
    assert v["stopped_by_max_duration"] == (duration_ns >= round(max_duration_s * 1e9))
    # the runner stops only once both minimums are met, or at the maximum
    assert (v["min_iterations_met"] and v["min_duration_met"]) or v["stopped_by_max_duration"]
    assert v["cv_ok"] == (robust_cv(result["samples_ns"]) <= cv_threshold)
    assert v["throttled"] == bool(result["environment"]["thermal"]["throttle_reasons"])
    assert result["duration_s"] >= sum(result["samples_ns"]) / 1e9  # the run holds every timed iteration


def test_bench_digits_writes_the_design_result(digits_onnx, digits_eval, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert bench(str(digits_onnx), "--dataset", str(digits_eval), "--threads", "1", "--json", str(out)) == 0
    table = capsys.readouterr().out
    assert "p50 ms" in table and "digits_cnn" in table
    result = json.loads(out.read_text())
    for key in DESIGN_FIELDS:
        assert key in result, key
    assert result["status"] == "ok" and result["iterations"] == len(result["samples_ns"]) >= 20
    check_latency_summary(result["latency_ms"], result["samples_ns"])
    assert result["accuracy"]["top1"] >= 0.97 and result["accuracy"]["samples"] == 450
    memory = result["memory_mb"]
    assert set(memory) == {"baseline", "after_load", "peak"}
    assert 0 < memory["baseline"] <= memory["after_load"] <= memory["peak"]
    check_validity(result, min_iterations=20, min_duration_s=0.05, max_duration_s=5)
    assert result["model"]["size_bytes"] == digits_onnx.stat().st_size and 0 < result["model"]["gzip_bytes"]
    assert result["model"]["source_sha256"] and result["device"]["profile"] == "local-cpu"
    assert result["options"]["threads"] == 1 and result["runtime"]["version"]


def test_bench_random_inputs_with_batch(digits_onnx, tmp_path):
    out = tmp_path / "r.json"
    assert bench(str(digits_onnx), "--batch", "8", "--json", str(out)) == 0
    result = json.loads(out.read_text())
    assert result["batch"] == 8 and result["extra"]["input_shapes"]["input"] == [8, 1, 8, 8]
    assert result["accuracy"] == {}  # no dataset: nothing to score
    # synchronous single stream: batch / mean latency (numpy's mean, in seconds), and never more than the
    # timed iterations could deliver over the whole measured run, gaps between iterations included
    mean_s = np.mean(np.asarray(result["samples_ns"], dtype=np.float64)) / 1e9
    assert result["throughput_per_s"] == pytest.approx(8 / mean_s, rel=1e-9)
    assert result["throughput_per_s"] >= 8 * result["iterations"] / result["duration_s"]


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
