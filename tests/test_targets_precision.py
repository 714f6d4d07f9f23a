"""An artifact given by path without meta.json records the precision its file holds (read from the file),
or "unknown" — never a blanket fp32. Real files: small ONNX graphs made with onnx.helper, and the
project's own converters' artifacts copied out of the cache without their meta.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgebench.artifacts import cache as artifacts
from edgebench.cli import main
from edgebench.artifacts.targets import resolve
from tests.compress_models import CALIB, MODEL
from tests.conftest import QUICK_TIMING

W = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)


def save(path: Path, nodes: list, inits: list, in_type: int = TensorProto.FLOAT, out_type: int = TensorProto.FLOAT,
         opset: int = 17) -> Path:
    graph = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("x", in_type, [1, 4])],
                              [helper.make_tensor_value_info("y", out_type, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def fp32_model(path: Path) -> Path:
    return save(path, [helper.make_node("MatMul", ["x", "w"], ["y"])], [numpy_helper.from_array(W, "w")])


def fp16_model(path: Path) -> Path:
    return save(path, [helper.make_node("MatMul", ["x", "w"], ["y"])],
                [numpy_helper.from_array(W.astype(np.float16), "w")], TensorProto.FLOAT16, TensorProto.FLOAT16)


def int8_weights(name: str) -> list:
    q = np.clip(np.round(W / 0.02), -127, 127).astype(np.int8)
    return [numpy_helper.from_array(q, f"{name}_q"), numpy_helper.from_array(np.float32(0.02), f"{name}_s"),
            numpy_helper.from_array(np.int8(0), f"{name}_z")]


def qdq_model(path: Path) -> Path:
    """Static int8: the activation is quantized with a fixed scale (QuantizeLinear), the weight stored int8."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "x_s", "x_z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["wd"]),
             helper.make_node("MatMul", ["xd", "wd"], ["y"])]
    inits = [numpy_helper.from_array(np.float32(0.05), "x_s"), numpy_helper.from_array(np.int8(0), "x_z"),
             *int8_weights("w")]
    return save(path, nodes, inits)


def weight_only_int8_model(path: Path) -> Path:
    """int8 weights dequantized to float; activations stay float."""
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["wd"]),
             helper.make_node("MatMul", ["x", "wd"], ["y"])]
    return save(path, nodes, int8_weights("w"))


def no_weights_model(path: Path) -> Path:
    return save(path, [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"])],
                [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
                 (("starts", [0]), ("ends", [3]), ("axes", [1]))])


def bf16_model(path: Path) -> Path:
    w = helper.make_tensor("w", TensorProto.BFLOAT16, W.shape, W.ravel().tolist())
    return save(path, [helper.make_node("Cast", ["w"], ["wf"], to=TensorProto.FLOAT),
                       helper.make_node("MatMul", ["x", "wf"], ["y"])], [w])


@pytest.mark.parametrize("make, expected", [
    (fp32_model, "fp32"), (fp16_model, "fp16"), (qdq_model, "int8"), (weight_only_int8_model, "int8-dynamic"),
    (no_weights_model, "unknown"), (bf16_model, "unknown"),
])
def test_onnx_made_with_helper(tmp_path, make, expected):
    target = resolve(make(tmp_path / "m.onnx"))
    assert target.precision == expected and target.format == "onnx" and target.meta is None


def test_what_the_file_holds_wins_over_a_given_precision(tmp_path):
    # issue 11: an fp16 file was labelled fp32 when fp32 was passed (a sweep's as-is recipe, --precision)
    assert resolve(fp16_model(tmp_path / "m.onnx"), precision="fp32").precision == "fp16"
    assert resolve(bf16_model(tmp_path / "b.onnx"), precision="fp32").precision == "fp32"  # unreadable: as given


CONVERTED = [(fmt, p) for fmt in ("onnx", "openvino", "tflite") for p in ("fp32", "fp16", "int8", "int8-dynamic")]


@pytest.mark.parametrize("fmt, precision", CONVERTED)
def test_converted_artifact_without_its_meta(recipe_cache, tmp_path, fmt, precision):
    """What the project's converters wrote, copied out of the cache alone: the file says what it holds."""
    a = artifacts.ensure(MODEL, fmt, recipe=precision, calibration=CALIB, root=recipe_cache)
    assert a.meta.precision == precision
    for f in a.files:
        shutil.copy(f, tmp_path / f.name)
    assert not (tmp_path / "meta.json").exists()
    target = resolve(tmp_path / a.main.name)
    assert target.meta is None and target.precision == precision


@pytest.mark.parametrize("make, expected", [(fp16_model, "fp16"), (qdq_model, "int8"), (no_weights_model, "unknown")])
def test_bench_records_the_read_precision_and_recipe(tmp_path, capsys, make, expected):
    out = tmp_path / "r.json"
    assert main(["bench", str(make(tmp_path / "m.onnx")), "--json", str(out), *QUICK_TIMING]) == 0, \
        capsys.readouterr().err
    model = json.loads(out.read_text())["model"]
    assert (model["precision"], model["recipe"]) == (expected, expected)
