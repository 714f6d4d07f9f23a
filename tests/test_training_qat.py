"""Quantization-aware training: fake quant stacked on pruning/clustering, the QDQ export (int8 weights,
onnxruntime agreeing with torch) and each format's int8 path taking the QDQ file without re-calibration,
with the zeros and ≤ K values read back from every produced file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgebench import formats
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.readback import Preservation, read_weights, verify
from edgebench.paths import demo_dir
from edgebench.training.importer import to_torch
from edgebench.training.methods.clustering import ClusterTrainer
from edgebench.training.methods.magnitude import MagnitudePruner
from edgebench.training.methods.qat import prepare_qat
from edgebench.training.methods.schedule import PolynomialDecay
from edgebench.training.qdq import export_qdq

pytestmark = pytest.mark.usefixtures("torch_one_thread")

DEMO = demo_dir()
DIGITS = DEMO / "digits_cnn.onnx"


def _layers(model: Any) -> dict[str, Any]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}


def _train(model: Any, x: Any, y: Any, steps: int, hooks: tuple[Any, ...] = ()) -> None:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    model.train()
    for step in range(steps):
        batch = torch.randint(0, len(x), (64,))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        opt.step()
        for hook in hooks:
            hook.on_step(step)
    model.eval()


def _ort(path: Path, feeds: dict[str, np.ndarray], optimized: bool = False) -> np.ndarray:
    options = ort.SessionOptions()
    if not optimized:  # Q/DQ evaluated as written, not fused into int8 kernels with their own rounding
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0])


def _int8_weights(path: Path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    arrays = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.input[0]: arrays[n.input[0]] for n in model.graph.node
            if n.op_type == "DequantizeLinear" and n.input[0] in arrays and arrays[n.input[0]].dtype == np.int8}


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 6 * 6, 10)

    def forward(self, x: Any) -> Any:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_tiny_model_qdq_export_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Tiny()
    reference = tmp_path / "float.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(reference), dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["scores"], dynamic_axes={"image": {0: "n"}})
    x, y = torch.randn(256, 1, 8, 8), torch.randint(0, 10, (256,))
    prepare_qat(model, {"conv": model.conv, "fc": model.fc}, per_channel=False)
    _train(model, x, y, 5)
    report = export_qdq(model, reference, tmp_path / "qdq.onnx")
    assert report["ops_quantized"] == {"Conv": 1, "Gemm": 1}
    assert report["weights_int8"] == 2 and report["activation_scales"] == 2 and report["per_channel"] is False
    qdq = onnx.load(str(tmp_path / "qdq.onnx"))
    assert [i.name for i in qdq.graph.input] == ["image"] and [o.name for o in qdq.graph.output] == ["scores"]
    assert qdq.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "n"
    assert not [n for n in qdq.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in
                {i.name for i in qdq.graph.initializer}], "a weight QuantizeLinear was left unfolded"
    zero_points = [onnx.numpy_helper.to_array(i) for i in qdq.graph.initializer if i.data_type == onnx.TensorProto.INT8
                   and not i.dims]
    assert zero_points and all(int(z) == 0 for z in zero_points)  # symmetric: every zero point is 0
    for w in _int8_weights(tmp_path / "qdq.onnx").values():
        assert w.min() >= -127 and np.abs(w).max() == 127  # scale max|w| / 127: ±127 used, -128 never
    with torch.no_grad():
        expected = model(x[:32]).numpy()
    np.testing.assert_allclose(_ort(tmp_path / "qdq.onnx", {"image": x[:32].numpy()}), expected, atol=1e-4)


@pytest.fixture(scope="module")
def pruned_qat(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The digits CNN pruned to 50% (masks kept), then fake-quantized per channel and trained; its QDQ export."""
    work = tmp_path_factory.mktemp("qat")
    data = np.load(DEMO / "eval.npz")
    x, y = torch.from_numpy(data["inputs"]), torch.from_numpy(data["labels"])
    model = to_torch(DIGITS)
    layers = _layers(model)
    pruner = MagnitudePruner(layers, PolynomialDecay(0.0, 0.5, 0, 1, frequency=1))
    pruner.finalize()
    prepare_qat(model, layers, per_channel=True)
    _train(model, x, y, 8, (pruner,))
    with torch.no_grad():
        expected = model(x).numpy()
    report = export_qdq(model, DIGITS, work / "qdq.onnx")
    return {"work": work, "qdq": work / "qdq.onnx", "report": report, "inputs": data["inputs"],
            "labels": data["labels"], "expected": expected, "masks": {n: pruner.masks[n].mask.numpy() for n in layers}}


def test_digits_qdq_is_int8_smaller_and_agrees(pruned_qat: dict[str, Any]) -> None:
    report, qdq = pruned_qat["report"], pruned_qat["qdq"]
    assert report["ops_quantized"] == {"Conv": 3, "Gemm": 2} and report["per_channel"] is True
    assert report["weights_int8"] == 5 and report["activation_scales"] == 5
    assert qdq.stat().st_size < 0.3 * DIGITS.stat().st_size  # int8 weights: about 4x smaller
    feeds = {"input": pruned_qat["inputs"]}
    reference = _ort(qdq, feeds)  # onnxruntime's reference QDQ kernels: the fake-quantized model's arithmetic
    # Torch and onnxruntime sum a convolution in different orders; an activation that lands on a rounding boundary
    # in one of them moves one quantization step, in that sample only (seen: 1 of 450, by 0.03). Every other
    # sample agrees to 1e-3, and the predictions agree.
    off = np.any(~np.isclose(reference, pruned_qat["expected"], atol=1e-3), axis=1)
    assert off.mean() <= 0.02, f"{off.sum()} of {len(off)} samples differ"
    assert np.abs(reference - pruned_qat["expected"]).max() < 0.5
    assert np.mean(reference.argmax(1) == pruned_qat["expected"].argmax(1)) >= 0.99
    fused = _ort(qdq, feeds, optimized=True)  # onnxruntime's int8 kernels: its requantization rounds a little
    assert np.mean(fused.argmax(1) == pruned_qat["expected"].argmax(1)) >= 0.98
    assert np.mean(fused.argmax(1) == pruned_qat["labels"]) >= 0.9
    stored = sorted(_int8_weights(qdq).items())
    masks = [m for _, m in sorted(pruned_qat["masks"].items())]
    for (name, w), mask in zip(stored, masks):  # the pruned weights are int8 zeros
        assert w.shape == mask.shape, name
        assert np.all(w[mask == 0] == 0), name


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "tensorrt", "tflite"])
def test_formats_take_the_qdq_without_calibration(pruned_qat: dict[str, Any], fmt: str) -> None:
    assert formats.get(fmt).takes_qdq is (fmt != "tflite")
    calibration = DEMO / "calib.npz" if fmt == "tflite" else None  # onnx2tf cannot take Q/DQ ranges
    out = pruned_qat["work"] / fmt
    artifact = formats.convert(DIGITS, fmt, "int8", out, calibration, quantization={"qdq": str(pruned_qat["qdq"])})
    assert artifact.meta["per_channel"] is True
    if fmt == "tflite":
        assert artifact.meta["quantizer"] == "qat-weights, activations calibrated: onnx2tf cannot take Q/DQ ranges"
    else:
        assert artifact.meta["quantizer"].startswith("quantization-aware training")
        assert artifact.meta["int8_ops"] == {"Conv": 3, "Gemm": 2}
    assert formats.get(fmt).read_precision(artifact.main) in ("int8", None)
    if fmt in ("onnx", "tensorrt"):
        assert artifact.main.read_bytes() == pruned_qat["qdq"].read_bytes()
    if fmt == "openvino":  # Q/DQ became FakeQuantize, run in int8 by the CPU plugin
        import openvino as ov

        got = ov.Core().compile_model(str(artifact.main), "CPU")(pruned_qat["inputs"])[0]
        assert np.mean(got.argmax(1) == pruned_qat["expected"].argmax(1)) >= 0.97
    # the weights the file holds are the QDQ's int8 grid, pruned zeros included
    _, qdq_layers = read_weights("onnx", pruned_qat["qdq"])
    outcome, note = verify(fmt, artifact.main, qdq_layers, {})
    assert outcome is Preservation.CHECKED, note
    _, layers = read_weights(fmt, artifact.main)
    for before, after in zip(qdq_layers.values(), layers.values()):
        assert np.count_nonzero(after) == np.count_nonzero(before)
        assert np.unique(after).size == np.unique(before).size


def test_clustered_qat_keeps_k_values_in_openvino(tmp_path: Path) -> None:
    data = np.load(DEMO / "eval.npz")
    x, y = torch.from_numpy(data["inputs"]), torch.from_numpy(data["labels"])
    model = to_torch(DIGITS)
    layers = _layers(model)
    pruner = MagnitudePruner(layers, PolynomialDecay(0.0, 0.5, 0, 1, frequency=1))
    pruner.finalize()
    clusterer = ClusterTrainer(layers, 8)
    prepare_qat(model, layers, per_channel=False)  # one scale per layer: each centroid one integer
    _train(model, x, y, 4, (clusterer,))
    export_qdq(model, DIGITS, tmp_path / "qdq.onnx")
    _, qdq_layers = read_weights("onnx", tmp_path / "qdq.onnx")
    assert all(np.unique(w).size <= 8 for w in qdq_layers.values())
    weights = np.concatenate([w.ravel() for w in qdq_layers.values()])
    assert np.mean(weights == 0) >= 0.5  # global pruning to 50%: kept through clustering and fake quant
    artifact = formats.convert(DIGITS, "openvino", "int8", tmp_path / "ov",
                               quantization={"qdq": str(tmp_path / "qdq.onnx")})
    outcome, note = verify("openvino", artifact.main, qdq_layers, {name: 8 for name in qdq_layers})
    assert outcome is Preservation.CHECKED and "≤K values" in note


def test_export_needs_observed_ranges(tmp_path: Path) -> None:
    model = Tiny()
    prepare_qat(model, {"conv": model.conv}, per_channel=True)
    with pytest.raises(ValueError, match="never seen data"):
        export_qdq(model, DIGITS, tmp_path / "qdq.onnx")
    with pytest.raises(TypeError, match="Conv and Linear"):
        prepare_qat(model, {"relu": torch.nn.ReLU()}, per_channel=True)


def test_qdq_option_refuses_a_float_model_or_another_precision(tmp_path: Path) -> None:
    with pytest.raises(EdgebenchError) as err:
        formats.convert(DIGITS, "onnx", "int8", tmp_path, quantization={"qdq": str(DIGITS)})
    assert err.value.status == ExitStatus.INVALID_MODEL and "not a QDQ ONNX" in str(err.value)
    with pytest.raises(EdgebenchError) as err:
        formats.convert(DIGITS, "openvino", "fp16", tmp_path, quantization={"qdq": str(DIGITS)})
    assert err.value.status == ExitStatus.USAGE and "int8 only" in str(err.value)
