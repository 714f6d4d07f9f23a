"""ONNX → PyTorch → ONNX for fine-tuning (onnx2torch, torch.onnx) and filter pruning with torch-pruning, on
real models: the bundled digits CNN, hand-built ONNX graphs and corpus models, checked with onnxruntime."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import torch

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgebench.compress.graph import Graph, LayerSelection, lift_constants
from edgebench.compress.prune_filters import prune_filters as numpy_prune_filters
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.paths import demo_dir
from edgebench.training.importer import module_names, to_onnx, to_torch
from edgebench.training.methods.filters import prune_filters
from tests.corpus import corpus

pytestmark = pytest.mark.usefixtures("torch_one_thread")

DIGITS = demo_dir() / "digits_cnn.onnx"
CONVS = ["/conv1/Conv", "/conv2/Conv", "/conv3/Conv"]


def _run(path: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    return list(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed))


def _close(want: list[np.ndarray], got: list[np.ndarray]) -> None:
    assert [w.shape for w in want] == [g.shape for g in got]
    for w, g in zip(want, got):
        assert np.abs(w - g).max() <= 1e-4 * max(1.0, float(np.abs(w).max()))


def _dims(value: onnx.ValueInfoProto) -> list[object]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_digits_round_trip_keeps_names_dims_and_outputs(tmp_path: Path) -> None:
    model = to_torch(DIGITS)
    for layer in (model.get_submodule(n) for n in module_names(CONVS + ["/fc1/Gemm", "/fc2/Gemm"], model).values()):
        assert isinstance(layer.weight, torch.nn.Parameter) and layer.weight.requires_grad
        assert isinstance(layer.bias, torch.nn.Parameter) and layer.bias.requires_grad
    assert module_names(CONVS + ["/relu1/Relu", "fc1.weight"], model) == {
        "/conv1/Conv": "conv1/Conv", "/conv2/Conv": "conv2/Conv", "/conv3/Conv": "conv3/Conv", "fc1.weight": "fc1/Gemm"}
    out = tmp_path / "digits.onnx"
    to_onnx(model, DIGITS, out)
    exported, reference = onnx.load(str(out)), onnx.load(str(DIGITS))
    assert [(v.name, _dims(v)) for v in exported.graph.input] == [("input", ["batch", 1, 8, 8])]
    assert [(v.name, _dims(v)) for v in exported.graph.output] == [("logits", ["batch", 10])]
    assert next(o.version for o in exported.opset_import if o.domain == "") == reference.opset_import[0].version
    for batch in (1, 5):
        feed = {"input": np.random.default_rng(batch).random((batch, 1, 8, 8), dtype=np.float32)}
        _close(_run(DIGITS, feed), _run(out, feed))


def _matmul_model(path: Path) -> np.ndarray:
    """x[batch, 6] @ W[6, 4] + b, unnamed nodes, int64 second input passed through: a torch.nn.Linear export's
    MatMul form, which onnx2torch keeps as a matmul by a buffer."""
    w = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"]),
         helper.make_node("Identity", ["ids"], ["ids_out"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, ["n", "seq"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("ids_out", TensorProto.INT64, ["n", "seq"])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.arange(4, dtype=np.float32), "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return w


def test_matmul_by_a_constant_becomes_a_trainable_linear(tmp_path: Path) -> None:
    ref = tmp_path / "mm.onnx"
    w = _matmul_model(ref)
    model = to_torch(ref)
    assert module_names(["W"], model) == {"W": "MatMul"}
    linear = model.get_submodule("MatMul")
    assert isinstance(linear, torch.nn.Linear) and linear.weight.requires_grad
    assert np.array_equal(linear.weight.detach().numpy(), w.T)
    assert not any(b.shape == (6, 4) for b in model.buffers())  # the matrix is no buffer any more
    out = tmp_path / "out.onnx"
    to_onnx(model, ref, out)
    exported = onnx.load(str(out))
    assert [(v.name, v.type.tensor_type.elem_type, _dims(v)) for v in exported.graph.input] == [
        ("x", TensorProto.FLOAT, ["n", 6]), ("ids", TensorProto.INT64, ["n", "seq"])]
    assert [v.name for v in exported.graph.output] == ["y", "ids_out"]
    rng = np.random.default_rng(1)
    feed = {"x": rng.random((3, 6), dtype=np.float32), "ids": rng.integers(0, 9, (3, 5))}
    _close(_run(ref, feed), _run(out, feed))


def test_unsupported_ops_are_named_before_converting(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["picked"]),
         helper.make_node("Fancy", ["scores"], ["fancy"], domain="com.example")], "nms",
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 5, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 5])],
        [helper.make_tensor_value_info("picked", TensorProto.INT64, [None, 3]),
         helper.make_tensor_value_info("fancy", TensorProto.FLOAT, None)])
    path = tmp_path / "nms.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12), helper.make_opsetid("com.example", 1)]),
              str(path))
    with pytest.raises(EdgebenchError) as err:
        to_torch(path)
    assert err.value.status == ExitStatus.CONVERSION_FAILED
    message = str(err.value)
    assert "\n" not in message and "(opset 12)" in message and "com.example.Fancy" in message
    try:
        import torchvision  # noqa: F401
    except ImportError:
        assert "NonMaxSuppression (needs torchvision)" in message
    assert "torchvision" not in sys.modules or hasattr(sys.modules["torchvision"], "__file__")


def test_control_flow_model_is_refused_naming_the_ops_inside() -> None:
    model = corpus("silero_vad")
    with pytest.raises(EdgebenchError) as err:
        to_torch(model.path)
    assert err.value.status == ExitStatus.CONVERSION_FAILED
    assert "If, Size, LSTM (opset 16)" in str(err.value)  # LSTM is inside the If branches


def test_corpus_classifier_exports_a_batch_it_was_not_traced_at(tmp_path: Path) -> None:
    """ppocr_cls (Paddle2ONNX, opset 11, weights in Constant nodes): the opset < 13 Softmax must not bake the
    traced batch into the export."""
    source = onnx.load(str(corpus("ppocr_cls").path))
    lift_constants(source)  # as the artifact cache hands it over
    ref = tmp_path / "cls.onnx"
    onnx.save(source, str(ref))
    out = tmp_path / "out.onnx"
    to_onnx(to_torch(ref), ref, out, shapes={"x": (1, 3, 48, 192)})
    for batch in (1, 3):
        feed = {"x": np.random.default_rng(batch).random((batch, 3, 48, 192), dtype=np.float32)}
        _close(_run(ref, feed), _run(out, feed))


def test_prune_filters_shrinks_every_consumer_like_the_numpy_path(tmp_path: Path) -> None:
    model = to_torch(DIGITS)
    names = module_names(CONVS, model)
    report = prune_filters(model, (torch.rand(1, 1, 8, 8),), {m: model.get_submodule(m) for m in names.values()}, 0.5)
    assert report == {"conv1/Conv": {"filters_before": 16, "filters_after": 8},
                      "conv2/Conv": {"filters_before": 32, "filters_after": 16},
                      "conv3/Conv": {"filters_before": 64, "filters_after": 32}}
    out = tmp_path / "pruned.onnx"
    to_onnx(model, DIGITS, out)
    shapes = {tuple(i.dims) for i in onnx.load(str(out)).graph.initializer}
    assert {(8, 1, 3, 3), (16, 8, 3, 3), (32, 16, 3, 3), (64, 512), (10, 64)} <= shapes
    # the same L1 rule as the post-training path: the same filters go, so both compute the same function
    graph = Graph.load(DIGITS)
    numpy_prune_filters(graph, 0.5, LayerSelection(first_last=True))
    numpy_path = graph.save(tmp_path / "numpy.onnx")
    feed = {"input": np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)}
    _close(_run(numpy_path, feed), _run(out, feed))


def test_prune_filters_refuses_a_layer_that_feeds_the_output() -> None:
    model = to_torch(DIGITS)
    with pytest.raises(EdgebenchError) as err:
        prune_filters(model, (torch.rand(1, 1, 8, 8),), {"fc2/Gemm": model.get_submodule("fc2/Gemm")}, 0.5)
    assert err.value.status == ExitStatus.CONVERSION_FAILED
    assert "fc2/Gemm" in str(err.value) and "model output" in str(err.value)
    assert model.get_submodule("fc2/Gemm").out_features == 10


def test_prune_filters_prunes_residual_coupled_convs_the_numpy_path_refuses(tmp_path: Path) -> None:
    class Residual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem, self.body, self.head = (torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1),
                                               torch.nn.Conv2d(8, 4, 1))
            self.fc = torch.nn.Linear(4 * 8 * 8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.stem(x))
            return self.fc(torch.flatten(torch.relu(self.head(y + self.body(y))), 1))

    ref = tmp_path / "residual.onnx"
    torch.onnx.export(Residual().eval(), (torch.rand(1, 1, 8, 8),), str(ref), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    with pytest.raises(EdgebenchError, match="Add"):
        numpy_prune_filters(Graph.load(ref), 0.5, LayerSelection(include=("/stem/Conv",)))
    model = to_torch(ref)
    report = prune_filters(model, (torch.rand(1, 1, 8, 8),), {"stem/Conv": model.get_submodule("stem/Conv")}, 0.5)
    assert report == {"stem/Conv": {"filters_before": 8, "filters_after": 4}}
    assert model.get_submodule("body/Conv").out_channels == 4  # coupled through the Add
    assert model.get_submodule("head/Conv").in_channels == 4
    out = tmp_path / "pruned.onnx"
    to_onnx(model, ref, out)
    assert _run(out, {"x": np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)})[0].shape == (2, 3)
