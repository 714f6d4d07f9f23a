"""TensorRT backend on an NVIDIA GPU: engine built on the target, cached, timing split H2D/compute/D2H.

This machine has no GPU and no TensorRT wheel, so these are skipped here with the reason; the
"TensorRT is not installed" path is tested in test_convert_errors.py.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from edgebench.pipeline.bench import BenchRequest, execute
from edgebench.config import TimingSpec, load_profile

DIGITS = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo"
HAVE_GPU = shutil.which("nvidia-smi") is not None and importlib.util.find_spec("tensorrt") is not None

pytestmark = [pytest.mark.requires_cuda,
              pytest.mark.skipif(not HAVE_GPU, reason="needs an NVIDIA GPU with TensorRT and cuda-python "
                                                      "(none on this machine)")]


@pytest.fixture
def gpu_profile(tmp_path: Path) -> Path:
    path = tmp_path / "local-gpu.yaml"
    path.write_text("name: local-gpu\nconnection: {type: local}\nruntimes: [tensorrt]\naccelerator: gpu\n")
    return path


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_is_built_once_then_cached(tmp_path: Path, gpu_profile: Path, precision: str) -> None:
    options = {"engine_cache": str(tmp_path / "engines")}
    req = BenchRequest(model=DIGITS / "digits_cnn.onnx", device=str(gpu_profile), dataset=DIGITS / "eval.npz",
                       format="tensorrt", precision=precision, cache_dir=tmp_path / "c", backend_options=options,
                       timing=TimingSpec(warmup_s=0.1, min_iterations=50, min_duration_s=0.2, max_duration_s=5))
    first = execute(req, load_profile(str(gpu_profile))).result
    second = execute(req, load_profile(str(gpu_profile))).result
    assert first.extra["engine_cache_hit"] is False and first.extra["engine_build_ms"] > 0
    assert second.extra["engine_cache_hit"] is True and "engine_build_ms" not in second.extra
    for result in (first, second):
        assert result.model.format == "tensorrt" and result.model.precision == precision
        assert result.accuracy.top1 >= 0.97
        stages = result.extra["stages"]
        assert set(stages) == {"h2d_ms", "compute_ms", "d2h_ms"} and stages["compute_ms"]["p50"] > 0
