"""OpenVINO runner backend: options reach the runtime, compile time is reported cold and warm."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.artifacts import cache as artifacts
from edgebench.pipeline.bench import BenchRequest, execute
from edgebench.pipeline.compare import COMPARE_TIMING
from edgebench.errors import EdgebenchError, ExitStatus

pytest.importorskip("openvino", reason="OpenVINO is in the 'openvino' extra")

DIGITS = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo"


def test_cache_dir_cold_then_warm(tmp_path: Path) -> None:
    xml = artifacts.ensure(DIGITS / "digits_cnn.onnx", "openvino", "fp32", root=tmp_path / "c").main
    opts = {"cache_dir": str(tmp_path / "blobs"), "num_streams": 1, "performance_hint": "latency"}
    cold = execute(BenchRequest(model=xml, threads=1, timing=COMPARE_TIMING, backend_options=opts)).result
    warm = execute(BenchRequest(model=xml, threads=1, timing=COMPARE_TIMING, backend_options=opts)).result
    assert cold.extra["cache_hit"] is False and warm.extra["cache_hit"] is True
    assert cold.extra["compile_ms"] > 0 and cold.extra["warm_compile_ms"] > 0
    assert any((tmp_path / "blobs").iterdir())
    effective = warm.runtime["options"]["effective"]
    assert effective["PERFORMANCE_HINT"] == "LATENCY" and effective["INFERENCE_NUM_THREADS"] == "1"
    assert effective["INFERENCE_PRECISION_HINT"] == "f32"  # fp32 artifacts run in fp32, not the CPU's bf16 default


def test_bad_performance_hint_is_refused(tmp_path: Path) -> None:
    xml = artifacts.ensure(DIGITS / "digits_cnn.onnx", "openvino", "fp32", root=tmp_path / "c").main
    # OpenVINO imports (it just converted the model), so the runner gets as far as check_options, which
    # refuses the hint before the model loads: a usage error (runner kind "usage"), not a bad model.
    with pytest.raises(EdgebenchError, match="bad runtime option: performance_hint 'FAST' is not one of "
                                             "LATENCY, THROUGHPUT, CUMULATIVE_THROUGHPUT") as err:
        execute(BenchRequest(model=xml, timing=COMPARE_TIMING, backend_options={"performance_hint": "fast"}))
    assert err.value.status == ExitStatus.USAGE and err.value.kind == "usage"
