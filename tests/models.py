"""Small real ONNX models built with onnx.helper, for shapes the digits model does not have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB = 50


def token_model(path: Path) -> Path:
    """int64 token ids [batch, seq] (seq dynamic) + a float32 scalar ``scale`` → logits [batch, 4].

    Like a text classifier head: Gather from an embedding, mean over the sequence, MatMul, scale.
    """
    rng = np.random.default_rng(0)
    emb = numpy_helper.from_array(rng.normal(size=(VOCAB, 8)).astype(np.float32), "emb")
    w = numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float32), "w")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"], axis=0),
        helper.make_node("ReduceMean", ["e", "axes"], ["m"], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["z"]),
        helper.make_node("Mul", ["z", "scale"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "tokens",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("scale", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        [emb, w, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
