"""Cost metrics on hand-made tensors and files, QDQ dequantization, and the preservation checks."""

from __future__ import annotations

import gzip

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgebench.compress.metrics import check_preserved, onnx_metrics, onnx_weights, ratios, weight_stats
from tests.compress_models import MODEL


def test_weight_stats_on_hand_made_tensors():
    stats = weight_stats({"a": np.array([[0.0, 1.0], [1.0, 2.0]], np.float32),
                          "b": np.array([0, 0, 0, 5, 5, 7], np.int8)})
    assert stats.params == 10 and stats.nonzero_params == 6
    assert stats.sparsity == pytest.approx(0.4)
    assert stats.unique_values == {"a": 3, "b": 3} and stats.max_unique_values == 3
    assert stats.layer_sparsity == {"a": 0.25, "b": 0.5}
    assert weight_stats({}).params == 0 and weight_stats({}).sparsity == 0.0


def test_ratios():
    assert ratios({"size_bytes": 100, "gzip_bytes": 20}, {"size_bytes": 400, "gzip_bytes": 300}) == \
        {"size_ratio": 4.0, "gzip_ratio": 15.0}


def test_onnx_metrics_of_the_digits_model():
    m = onnx_metrics(MODEL)
    assert m["size_bytes"] == MODEL.stat().st_size
    assert m["gzip_bytes"] == pytest.approx(len(gzip.compress(MODEL.read_bytes(), 9)), abs=64)
    model = onnx.load(str(MODEL))
    # weights only (every initializer of more than one dimension here); biases are not counted
    assert m["params"] == sum(int(np.prod(i.dims)) for i in model.graph.initializer if len(i.dims) > 1) == 89360
    assert m["sparsity"] == 0.0 and m["nonzero_params"] == m["params"]


def _qdq_model(path, q, scale, zero, axis):
    inits = [numpy_helper.from_array(q, "w_q"), numpy_helper.from_array(scale, "w_scale"),
             numpy_helper.from_array(zero, "w_zp")]
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="dq", axis=axis),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_qdq_weights_are_dequantized_per_axis(tmp_path):
    q = np.array([[0, 2, -4], [1, 0, 3]], np.int8)
    scale = np.array([0.5, 1.0, 2.0], np.float32)
    zero = np.array([0, 1, 0], np.int8)
    params, layers = onnx_weights(_qdq_model(tmp_path / "q.onnx", q, scale, zero, axis=1))
    expected = (q.astype(np.float32) - zero) * scale
    np.testing.assert_allclose(layers["mm"], expected)
    assert list(params) == ["w_q"]  # scale and zero point are not parameters
    assert weight_stats(params).nonzero_params == 5  # q=1 with zero point 1 dequantizes to 0


def test_check_preserved_reports_revived_zeros_and_extra_values():
    before = {"l1": np.array([0.0, 0.0, 1.0, 2.0]), "l2": np.array([1.0, 2.0, 3.0, 1.0])}
    assert check_preserved(before, {"l1": np.array([0.0, 0.0, 1.1, 2.1]), "l2": before["l2"]}, {"l2": 3}) == []
    problems = check_preserved(before, {"l1": np.array([0.0, 0.01, 1.0, 2.0]),
                                        "l2": np.array([1.0, 2.0, 3.0, 1.5])}, {"l2": 3})
    assert problems == ["l1: 1 pruned weights are no longer zero", "l2: 4 distinct values, clustered to 3"]
