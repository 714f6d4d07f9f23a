"""OpenVINO-native int8 with NNCF: convert the digits ONNX, quantize, run it with OpenVINO's runtime."""

from __future__ import annotations

import numpy as np
import pytest

from edgebench.errors import EdgebenchError, ExitStatus
from tests.compress_models import CALIB, EVAL, MODEL

ov = pytest.importorskip("openvino", reason="OpenVINO is in the 'openvino' extra")
pytest.importorskip("nncf", reason="NNCF is in the 'openvino' extra")

from edgebench.formats.openvino.quantize import input_specs, quantize_openvino  # noqa: E402


def _top1(model) -> float:
    compiled = ov.Core().compile_model(model, "CPU")
    with np.load(EVAL) as data:
        outputs = compiled({0: data["inputs"]})[0]
        return float(np.mean(outputs.argmax(axis=1) == data["labels"]))


def test_nncf_int8_runs_on_openvino_and_keeps_accuracy():
    model = ov.convert_model(str(MODEL))
    assert input_specs(model)[0].shape == (None, 1, 8, 8)
    quantized = quantize_openvino(model, CALIB)
    assert sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ops()) >= 5
    assert _top1(quantized) >= 0.95


def test_openvino_int8_refuses_a_misfit_calibration_set(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, inputs=np.zeros((4, 3, 8, 8), np.float32))
    with pytest.raises(EdgebenchError) as err:
        quantize_openvino(ov.convert_model(str(MODEL)), bad)
    assert "'input'" in str(err.value) and err.value.status == ExitStatus.DATA_MISMATCH
    with pytest.raises(EdgebenchError, match="--calibration"):
        quantize_openvino(ov.convert_model(str(MODEL)), None)
