"""ONNX quantization with onnxruntime.quantization, run for real and scored with onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.calibration import calibration_batches
from edgebench.formats.onnx.quantize import convert_fp16, quantize_dynamic_int8, quantize_int8
from tests.compress_models import CALIB, MODEL, run, top1

FP32_TOP1 = 0.9889  # the bundled model's top-1 on eval.npz


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_int8_static_qdq_per_method(tmp_path, method):
    path = quantize_int8(MODEL, tmp_path / "q.onnx", CALIB, method)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert path.stat().st_size < MODEL.stat().st_size / 3.4
    assert top1(path) >= 0.95
    assert list(tmp_path.iterdir()) == [path]  # no temp or augmented model left in the output folder


def test_int8_per_tensor_has_one_scale_per_weight(tmp_path):
    path = quantize_int8(MODEL, tmp_path / "q.onnx", CALIB, per_channel=False)
    scales = {i.name: list(i.dims) for i in onnx.load(str(path)).graph.initializer if i.name.endswith("weight_scale")}
    assert scales and all(dims in ([], [1]) for dims in scales.values())


def test_int8_dynamic_quantizes_dense_layers(tmp_path):
    path = quantize_dynamic_int8(MODEL, tmp_path / "d.onnx")
    assert "MatMulInteger" in {n.op_type for n in onnx.load(str(path)).graph.node}
    assert top1(path) >= 0.95


def test_fp16_halves_the_file_and_keeps_float32_io(tmp_path):
    path = convert_fp16(MODEL, tmp_path / "h.onnx")
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {i.data_type for i in model.graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert path.stat().st_size < 0.55 * MODEL.stat().st_size
    np.testing.assert_allclose(run(path), run(MODEL), atol=2e-2)


def test_calibration_feeds_are_equal_batches():
    feeds = list(calibration_batches(MODEL, CALIB))
    assert {f["input"].shape for f in feeds} == {(30, 1, 8, 8)} and len(feeds) == 10  # 300 samples


def test_int8_without_calibration_suggests_the_fix(tmp_path):
    with pytest.raises(EdgebenchError) as err:
        quantize_int8(MODEL, tmp_path / "q.onnx", None)
    assert "--calibration" in str(err.value) and "int8-dynamic" in str(err.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("arrays, needle", [
    ({"inputs": np.zeros((10, 1, 8, 8), np.float64)}, "is float64 but the model's input is float32"),
    ({"inputs": np.zeros((10, 1, 28, 28), np.float32)}, "samples of shape [1, 28, 28]"),
    ({"pixels": np.zeros((10, 1, 8, 8), np.float32)}, "no array for input 'input'"),
])
def test_calibration_set_that_does_not_fit_is_refused(tmp_path, arrays, needle):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(EdgebenchError) as err:
        quantize_int8(MODEL, tmp_path / "out" / "q.onnx", bad)
    assert needle in str(err.value) and err.value.status == ExitStatus.DATA_MISMATCH
    assert not (tmp_path / "out").exists()
