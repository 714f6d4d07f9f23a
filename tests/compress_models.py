"""What the compression tests share: the bundled digits files, top-1 through onnxruntime, and small real
ONNX graphs (built with onnx.helper) for the cases the digits model does not have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DIGITS = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo"
MODEL = DIGITS / "digits_cnn.onnx"
EVAL = DIGITS / "eval.npz"
CALIB = DIGITS / "calib.npz"


def run(path: Path, inputs: np.ndarray | None = None) -> np.ndarray:
    """The model's first output on ``inputs`` (default: the eval set), with onnxruntime on CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if inputs is None:
        with np.load(EVAL) as data:
            inputs = data["inputs"]
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def top1(path: Path) -> float:
    with np.load(EVAL) as data:
        labels = data["labels"]
    return float(np.mean(run(path).argmax(axis=1) == labels))


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def residual_model(path: Path) -> Path:
    """x → Conv a → Relu → Conv b → Add(relu, b) → Conv c: b's channels meet a residual Add."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name) for name, shape in
             (("a.w", (8, 1, 3, 3)), ("b.w", (8, 8, 3, 3)), ("c.w", (4, 8, 3, 3)), ("d.w", (2, 4, 1, 1)))]
    nodes = [helper.make_node("Conv", ["x", "a.w"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ra"], name="relu_a"),
             helper.make_node("Conv", ["ra", "b.w"], ["b"], name="conv_b", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["ra", "b"], ["s"], name="residual_add"),
             helper.make_node("Conv", ["s", "c.w"], ["c"], name="conv_c", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c", "d.w"], ["y"], name="conv_d")]
    graph = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])], inits)
    return _save(graph, path)


def tiny_layer_model(path: Path) -> Path:
    """Three MatMuls; the middle one's weights are all far smaller than the others', so global pruning
    at 50% would zero it entirely."""
    rng = np.random.default_rng(0)
    weights = {"w0": rng.normal(size=(4, 16)), "w1": rng.normal(size=(16, 4)) * 1e-4,
               "w2": rng.normal(size=(4, 16)), "w3": rng.normal(size=(16, 3))}
    inits = [numpy_helper.from_array(w.astype(np.float32), n) for n, w in weights.items()]
    nodes = [helper.make_node("MatMul", [src, w], [dst], name=f"mm{i}")
             for i, (src, w, dst) in enumerate((("x", "w0", "h0"), ("h0", "w1", "h1"), ("h1", "w2", "h2"),
                                                 ("h2", "w3", "y")))]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])], inits)
    return _save(graph, path)
