"""The standalone runner through a real subprocess: one JSON object, no edgebench import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebench.paths import runner_dir

RUNNERS = runner_dir()
# Make `import edgebench` fail inside the runner process, even though the venv has it installed.
BLOCK_EDGEBENCH = ("import runpy, sys; sys.modules['edgebench'] = None; sys.argv = sys.argv[1:]; "
                   "runpy.run_path(sys.argv[0], run_name='__main__')")


@pytest.fixture(scope="module")
def runner_copy(tmp_path_factory) -> Path:
    """The runner's folder copied alone into an empty directory, as it is pushed to a device."""
    dest = tmp_path_factory.mktemp("device") / "runner"
    shutil.copytree(RUNNERS, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest / "edgebench_runner.py"


def make_job(tmp_path: Path, artifact: Path, inputs: dict, **over) -> Path:
    np.savez(tmp_path / "inputs.npz", **inputs)
    job = {"schema_version": 1, "backend": "onnxruntime", "artifact": str(artifact), "device": "CPU", "threads": 1,
           "timing": {"warmup_iterations": 2, "warmup_s": 0.01, "min_iterations": 30, "min_duration_s": 0.05,
                      "max_duration_s": 5},
           "inputs_npz": str(tmp_path / "inputs.npz"), "batch": 1, "capture_outputs": True,
           "outputs_npz": str(tmp_path / "outputs.npz"), **over}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    return path


def run_runner(runner: Path, job: Path) -> tuple[dict, subprocess.CompletedProcess]:
    proc = subprocess.run([sys.executable, "-c", BLOCK_EDGEBENCH, str(runner), str(job)],
                          capture_output=True, text=True, timeout=120, cwd=runner.parent.parent)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout + proc.stderr  # exactly one JSON object on stdout
    return json.loads(lines[0]), proc


def test_runner_reports_raw_samples_memory_and_outputs(runner_copy, tmp_path, digits_onnx, digits_eval):
    data = np.load(digits_eval)
    job = make_job(tmp_path, digits_onnx, {"input": data["inputs"][:40]})
    reply, proc = run_runner(runner_copy, job)
    assert proc.returncode == 0 and reply["status"] == "ok", reply
    assert reply["iterations"] == len(reply["samples_ns"]) >= 30
    assert all(isinstance(s, int) and s > 0 for s in reply["samples_ns"])
    assert reply["load_ms"] > 0 and reply["first_inference_ms"] > 0
    mem = reply["memory_mb"]
    assert 0 < mem["baseline"] <= mem["after_load"] <= mem["peak"]
    assert reply["runtime"]["name"] == "onnxruntime" and reply["runtime"]["options"]["threads"] == 1
    assert reply["distinct_inputs"] == 40  # batch 1: every sample a distinct feed
    assert reply["environment"]["cores"] >= 1 and reply["environment"]["python"]
    outputs = np.load(reply["outputs"]["path"], allow_pickle=False)
    assert outputs["logits"].shape == (40, 10)


def test_runner_pads_the_last_batch_and_trims_outputs(runner_copy, tmp_path, digits_onnx, digits_eval):
    data = np.load(digits_eval)
    job = make_job(tmp_path, digits_onnx, {"input": data["inputs"][:10]}, batch=4)
    reply, _ = run_runner(runner_copy, job)
    assert reply["status"] == "ok" and reply["batch"] == 4 and reply["distinct_inputs"] == 3
    assert np.load(reply["outputs"]["path"])["logits"].shape == (10, 10)


def test_runner_reports_a_bad_model_as_an_error_object(runner_copy, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    reply, proc = run_runner(runner_copy, make_job(tmp_path, bad, {"input": np.zeros((2, 1, 8, 8), np.float32)}))
    assert proc.returncode == 1 and reply["status"] == "error"
    assert reply["error"]["kind"] == "invalid_model" and "bad.onnx" in reply["error"]["message"]


def test_runner_reports_inputs_that_do_not_fit(runner_copy, tmp_path, digits_onnx):
    reply, _ = run_runner(runner_copy, make_job(tmp_path, digits_onnx, {"input": np.zeros((2, 3, 8, 8), np.float32)}))
    assert reply["status"] == "error" and reply["error"]["kind"] == "data_mismatch"


def test_runner_refuses_a_job_of_another_schema(runner_copy, tmp_path, digits_onnx):
    reply, _ = run_runner(runner_copy, make_job(tmp_path, digits_onnx, {"input": np.zeros((2, 1, 8, 8), np.float32)},
                                                schema_version=99))
    assert reply["status"] == "error" and "schema_version" in reply["error"]["message"]


def test_runner_names_an_unknown_backend(runner_copy, tmp_path, digits_onnx):
    reply, _ = run_runner(runner_copy, make_job(tmp_path, digits_onnx, {"input": np.zeros((2, 1, 8, 8), np.float32)},
                                                backend="nosuchruntime"))
    assert reply["status"] == "error" and "nosuchruntime" in reply["error"]["message"]


@pytest.mark.parametrize("change, message", [
    ({"threads": "four"}, "job field 'threads' is 'four', not an integer"),
    ({"backend_options": {"nosuch": 1}}, "bad runtime option: onnxruntime takes no nosuch (it takes "
                                         "execution_providers, graph_optimization_level, inter_op_threads)"),
])
def test_runner_refuses_a_bad_job_or_option_as_a_usage_error(runner_copy, tmp_path, digits_onnx, change, message):
    reply, proc = run_runner(runner_copy, make_job(tmp_path, digits_onnx,
                                                   {"input": np.zeros((2, 1, 8, 8), np.float32)}, **change))
    assert proc.returncode == 1 and reply["status"] == "error" and reply["schema_version"] == 1
    assert reply["error"] == {"kind": "usage", "message": message}


def test_runner_sources_never_import_edgebench():
    for path in RUNNERS.rglob("*.py"):
        text = path.read_text()
        assert "import edgebench" not in text and "from edgebench" not in text, path
