"""The runner's memory figures mean what the docs say: ``peak − baseline`` is the model's own footprint,
whatever the size of the dataset it is fed.

The same model is run on a small and a large inputs .npz through the real runner in its own process.
Only resident memory is compared (never time), so a busy machine does not move the verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebench.artifacts import cache as artifacts
from tests.compress_models import MODEL
from tests.test_runner import RUNNERS, make_job, run_runner

RUNNER = RUNNERS / "edgebench_runner.py"
SMALL, LARGE = 450, 200_000  # samples of 1×8×8 float32: 0.11 MB and 48.8 MB


def run_on(work: Path, backend: str, artifact: Path, samples: int) -> dict:
    work.mkdir()
    digits = np.load(MODEL.parent / "eval.npz")["inputs"]
    inputs = np.resize(digits, (samples, *digits.shape[1:])).astype(np.float32)
    job = make_job(work, artifact, {"input": inputs}, backend=backend, capture_outputs=False, rotation=64,
                   timing={"warmup_iterations": 2, "warmup_s": 0.0, "min_iterations": 20, "min_duration_s": 0.0,
                           "max_duration_s": 30})
    reply, _ = run_runner(RUNNER, job)
    assert reply["status"] == "ok", reply
    reply["dataset_mb"] = inputs.nbytes / 2**20
    return reply


def artifact_for(backend: str, cache: Path) -> Path:
    if backend == "onnxruntime":
        return MODEL
    pytest.importorskip("openvino", reason="OpenVINO is in the 'openvino' extra")
    return artifacts.ensure(MODEL, "openvino", "fp32", root=cache).main


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_model_footprint_does_not_grow_with_the_dataset(recipe_cache, tmp_path, backend):
    artifact = artifact_for(backend, recipe_cache)
    small = run_on(tmp_path / "small", backend, artifact, SMALL)
    large = run_on(tmp_path / "large", backend, artifact, LARGE)
    footprint = {}
    for name, reply in (("small", small), ("large", large)):
        mem = reply["memory_mb"]
        assert 0 < mem["baseline"] <= mem["after_load"] <= mem["peak"], mem
        footprint[name] = mem["peak"] - mem["baseline"]
    grown = large["dataset_mb"] - small["dataset_mb"]  # 48.7 MB more inputs
    # the inputs are in the baseline (they are loaded before it is read) ...
    assert large["memory_mb"]["baseline"] - small["memory_mb"]["baseline"] >= 0.9 * grown
    # ... and not in the footprint: before the fix it grew by the whole dataset (8.5 → 57.4 MB on onnxruntime)
    assert abs(footprint["large"] - footprint["small"]) < 0.1 * grown, (footprint, grown)
    # the footprint holds at least the weights the runtime loaded (89 546 fp32 values = 0.34 MB)
    assert min(footprint.values()) >= 89546 * 4 / 2**20


READ_SHAPES = """
import json, sys
from edgebench.runner.backends.tensorrt_backend import _npz_shapes  # TensorRT itself is imported only by open()
from edgebench.runner.runner_env import peak_rss_mb, reset_peak_rss
assert reset_peak_rss()
before = peak_rss_mb()
shapes = _npz_shapes(sys.argv[1])
print(json.dumps({"grew_mb": peak_rss_mb() - before, "shapes": shapes}))
"""


def test_tensorrt_reads_input_shapes_without_loading_the_dataset(tmp_path):
    """The TensorRT backend needs the input shapes at load time; reading the arrays for them would put a second
    copy of the dataset into the model's footprint. Headers only: shapes right, memory flat."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip(reason="needs Linux's resettable VmHWM")
    big = np.ones((100_000, 1, 8, 8), np.float32)  # 24.4 MB, every page touched
    np.savez(tmp_path / "plain.npz", input=big, sr=np.array(16000, np.int64), ids=np.zeros((3, 16), np.int64))
    np.savez_compressed(tmp_path / "packed.npz", input=big)
    expected = {"plain.npz": {"input": [100_000, 1, 8, 8], "sr": [], "ids": [3, 16]},
                "packed.npz": {"input": [100_000, 1, 8, 8]}}
    for name, shapes in expected.items():
        proc = subprocess.run([sys.executable, "-c", READ_SHAPES, str(tmp_path / name)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        reply = json.loads(proc.stdout)
        assert reply["shapes"] == shapes
        assert reply["grew_mb"] < 0.1 * big.nbytes / 2**20, reply  # far less than the 24.4 MB one read costs
