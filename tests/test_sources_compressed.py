"""Compression made in a framework survives conversion (issue 19): the tfmot-pruned, -clustered and QAT Keras
models and the torch-pruned and torch.ao-QAT models that scripts/make_source_models.py builds, given as the
framework's own files, keep in every format their sparsity, their ≤ 16 values per layer and their int8 — read
back from the produced files — and their top-1 (bench with the eval set) stays within a point of the top-1 the
framework itself measured. The small tests at the end hold the pieces that make it so on tiny ONNX graphs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgebench import api
from edgebench.artifacts.meta import Preservation
from edgebench.compress.metrics import onnx_weights
from edgebench.compress.prior import prior_compression
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import get
from edgebench.formats.prequantized import (QUANTIZER, TFLITE_QUANTIZER, dequantized, prequantized,
                                            with_int8_weights)
from edgebench.formats.readback import align, read_weights
from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "make_source_models.py"
QUICK = {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 10, "min_duration_s": 0.02, "max_duration_s": 2}
FORMATS = ["onnx", "openvino", pytest.param("tflite", marks=pytest.mark.slow)]  # onnx2tf: ~12 s a conversion
# each compressed model and the precisions it is deployed at: its own float, and int8
COMPRESSED = {"digits_pruned.h5": ("fp32", "int8"), "digits_clustered.h5": ("fp32", "int8"),
              "digits_torch_pruned.pt2": ("fp32", "int8"), "digits_qat": ("int8",), "digits_torch_qat.pt2": ("int8",)}


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The source models, built once by the committed script (seeded; ~30 s on one core)."""
    out = tmp_path_factory.mktemp("source-models")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "models.json").read_text())
    return out, {m["file"]: m for m in manifest["models"]}


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compressed-cache")


def source(models: Path, file: str) -> Path:
    """The model as bench and convert take it: the framework's own file (edgebench.sources exports it)."""
    return models / file


def hub_weights(models: Path, file: str, cache: Path) -> dict[str, np.ndarray]:
    """Each weight layer's weight in the hub ONNX the source was exported to, as the model computes with it."""
    from edgebench.sources.hub import to_hub

    return onnx_weights(to_hub(source(models, file), cache).onnx)[1]


def test_script_builds_every_source_with_its_compression(built: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    models, manifest = built
    assert set(COMPRESSED) | {"digits_torch.pt2", "digits_torch.pt", "digits_keras.keras",
                              "digits_keras_savedmodel"} == set(manifest)
    for entry in manifest.values():
        assert source(models, entry["file"]).exists() and entry["top1"] >= 0.9, entry
    assert manifest["digits_pruned.h5"]["sparsity"] == 0.6 and manifest["digits_clustered.h5"]["clusters"] == 16
    assert manifest["digits_qat"]["int8"] and (models / "digits_qat" / "saved_model.pb").is_file()
    eval_nhwc = np.load(models / "eval_nhwc.npz")
    assert eval_nhwc["image"].shape[1:] == (8, 8, 1) and len(eval_nhwc["labels"]) == eval_nhwc["image"].shape[0]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("file, precision", [(f, p) for f, ps in COMPRESSED.items() for p in ps])
def test_compression_survives_conversion(built: tuple[Path, dict[str, dict[str, Any]]], cache: Path, file: str,
                                         precision: str, fmt: str) -> None:
    models, manifest = built
    expect = manifest[file]
    qat = expect["compression"] == "qat"
    # a QAT model's int8 takes its own ranges where the format can (no calibration set): from the QDQ ONNX, or — a
    # Keras model to TFLite — through TFLiteConverter directly; onnx2tf (a .pt2 to TFLite) calibrates again
    direct = qat and fmt == "tflite" and not file.endswith(".pt2")
    calibration = None if qat and (get(fmt).takes_qdq or direct) else models / expect["calibration"]
    (artifact,) = api.convert(source(models, file), fmt, precision=precision, calibration=calibration,
                              cache_dir=cache)
    meta = artifact.meta
    assert get(fmt).read_precision(artifact.main) == precision
    if "sparsity" in expect:
        assert meta.sparsity >= expect["sparsity"] - 0.01, meta.preservation_note
    if "clusters" in expect:  # one scale per tensor at int8: each value one integer (a value near 0 may become 0)
        assert meta.max_unique_values <= expect["clusters"] + 1, meta.preservation_note
    if "sparsity" in expect or "clusters" in expect:  # checked layer by layer on the produced file, as a recipe's
        assert meta.preservation is Preservation.CHECKED and "arrived compressed" in meta.preservation_note
    if qat:
        if direct:
            assert "quantization-aware-training ranges" in meta.details["quantizer"] and "TFLiteConverter" in \
                meta.route["route"], meta.route
        else:
            assert meta.details["quantizer"] == (QUANTIZER if calibration is None else TFLITE_QUANTIZER)
        before, (_, after) = hub_weights(models, file, cache), read_weights(fmt, artifact.main)
        paired = align(before, after)
        assert len(paired) == len(before) == 5
        for name, (weight, _) in paired.items():  # the trained int8 weights themselves; TFLite re-rounds a
            step = float(np.max(np.abs(before[name]))) / 127  # layer whose QAT grid is not its own by ≤ ½ step
            np.testing.assert_allclose(weight, before[name], rtol=0, atol=1e-6 if calibration is None else 0.51 * step,
                                       err_msg=name)
    result = api.bench(source(models, file), format=fmt, precision=precision, calibration=calibration,
                       dataset=models / expect["eval"], cache_dir=cache, timing=QUICK)
    assert result.accuracy.top1 is not None and abs(result.accuracy.top1 - expect["top1"]) <= 0.01


def test_tensorrt_refuses_asymmetric_qat(built: tuple[Path, dict[str, dict[str, Any]]], cache: Path) -> None:
    """tfmot quantizes activations as uint8 with zero points, which TensorRT's Q/DQ cannot take: one line on
    the host rather than a failed engine build on the device."""
    models, _ = built
    with pytest.raises(EdgebenchError, match="TensorRT takes only symmetric int8") as caught:
        api.convert(source(models, "digits_qat"), "tensorrt", precision="int8", cache_dir=cache)
    assert caught.value.status is ExitStatus.CONVERSION_FAILED


def test_compress_shows_the_kept_clusters(built: tuple[Path, dict[str, dict[str, Any]]], cache: Path,
                                          tmp_path: Path) -> None:
    """`edgebench compress` on a tfmot-clustered model: int8 per tensor, ≤ 16 values, preserved: checked."""
    from edgebench.cli import main

    models, manifest = built
    out = tmp_path / "metrics.json"
    code = main(["compress", str(source(models, "digits_clustered.h5")), "--recipe", "int8", "--to", "onnx",
                 "--calibration", str(models / manifest["digits_clustered.h5"]["calibration"]),
                 "--cache-dir", str(cache), "--json", str(out)])
    assert code == ExitStatus.OK
    (row,) = json.loads(out.read_text())
    assert row["preservation"] == "checked" and row["max_unique_values"] <= 17


# ---- the pieces, on tiny graphs ----------------------------------------------------------------------------------


def _conv_model(path: Path, weight: np.ndarray, qdq_input: bool = False) -> Path:
    """x [1,2,4,4] → (Q → DQ) → Conv(weight [4,2,3,3], float initializer) → y; with ``qdq_input`` the activation
    is fake-quantized as a QAT export leaves it."""
    inits = [numpy_helper.from_array(weight, "w")]
    nodes, data = [], "x"
    if qdq_input:
        inits += [numpy_helper.from_array(np.asarray(0.02, np.float32), "s"),
                  numpy_helper.from_array(np.asarray(128, np.uint8), "z")]
        nodes += [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                  helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"])]
        data = "xd"
    nodes.append(helper.make_node("Conv", [data, "w"], ["y"], pads=[1, 1, 1, 1]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path


def test_prior_compression_finds_pruning_and_clustering(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    pruned = np.where(np.abs(dense) < np.quantile(np.abs(dense), 0.6), 0, dense).astype(np.float32)
    clustered = rng.choice(np.linspace(-1, 1, 8), size=(4, 2, 3, 3)).astype(np.float32)
    assert not prior_compression(_conv_model(tmp_path / "dense.onnx", dense))
    found = prior_compression(_conv_model(tmp_path / "pruned.onnx", pruned))
    assert list(found.pruned.values()) == [pytest.approx(0.6, abs=0.02)] and not found.clustered
    found = prior_compression(_conv_model(tmp_path / "clustered.onnx", clustered))
    assert list(found.clustered.values()) == [8] and "clustered (≤8 values)" in found.describe()


def test_weights_on_an_int8_grid_are_stored_as_int8(tmp_path: Path) -> None:
    """tf2onnx folds tfmot's weight FakeQuant into float constants: stored back as int8 behind a
    DequantizeLinear, per output channel, with the same numbers; a weight off the grid stays float."""
    rng = np.random.default_rng(1)
    scales = rng.uniform(0.01, 0.1, size=4).astype(np.float32)
    q = rng.integers(-127, 128, size=(4, 2, 3, 3))
    q[:, 0, 0, 0] = 127  # each channel reaches its range, as tfmot's narrow-range grid does
    on_grid = (q * scales[:, None, None, None]).astype(np.float32)
    src = _conv_model(tmp_path / "qat.onnx", on_grid, qdq_input=True)
    assert prequantized(src) and not prequantized(_conv_model(tmp_path / "float.onnx", on_grid))
    restored = with_int8_weights(src, tmp_path / "restored.onnx")
    from edgebench.formats.onnx.quantize import int8_structure

    structure = int8_structure(restored)
    assert structure["int8_ops"] == {"Conv": 1} and structure["per_channel"]
    (weight,) = onnx_weights(restored)[1].values()
    np.testing.assert_allclose(weight, on_grid, rtol=1e-6)
    off = on_grid + np.float32(1e-3)  # activations quantized, weights float: no QAT export, refused in one line
    with pytest.raises(EdgebenchError, match="off.onnx quantizes activations .* but holds no weight as int8"):
        with_int8_weights(_conv_model(tmp_path / "off.onnx", off, qdq_input=True), tmp_path / "o.onnx")


def test_float_copy_drops_pairs_on_outputs_and_through_transposes(tmp_path: Path) -> None:
    """tfmot's QAT export ends in a Q/DQ pair on the logits and puts a Transpose between a Q and its DQ: the
    float copy TFLite converts has neither, and keeps the output's name."""
    inits = [numpy_helper.from_array(np.asarray(0.05, np.float32), "s"),
             numpy_helper.from_array(np.asarray(128, np.uint8), "z")]
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"]),
             helper.make_node("Transpose", ["rq"], ["rt"], perm=[0, 2, 1]),
             helper.make_node("DequantizeLinear", ["rt", "s", "z"], ["rd"]),
             helper.make_node("Neg", ["rd"], ["n"]),
             helper.make_node("QuantizeLinear", ["n", "s", "z"], ["nq"]),
             helper.make_node("DequantizeLinear", ["nq", "s", "z"], ["logits"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 2])], inits)
    src = tmp_path / "qdq.onnx"
    src.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    import onnx
    import onnxruntime as ort

    copy = onnx.load(str(dequantized(src, tmp_path / "float.onnx")))
    assert [n.op_type for n in copy.graph.node] == ["Relu", "Transpose", "Neg"]
    assert [o.name for o in copy.graph.output] == ["logits"]
    x = np.arange(-3, 3, dtype=np.float32).reshape(1, 2, 3)
    (y,) = ort.InferenceSession(copy.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, -np.transpose(np.maximum(x, 0), (0, 2, 1)))


@pytest.mark.slow
def test_a_keras_qat_model_through_the_hub_to_tflite_is_calibrated_again(built: tuple[Path, dict[str, dict[str, Any]]],
                                                                         cache: Path) -> None:
    """``--route hub``: onnx2tf cannot take Q/DQ ranges, so the activations are calibrated again and the trained int8
    weights re-rounded by at most half a step where TFLite's grid is not the QAT one."""
    models, manifest = built
    expect = manifest["digits_qat"]
    (artifact,) = api.convert(source(models, "digits_qat"), "tflite", precision="int8", cache_dir=cache,
                              calibration=models / expect["calibration"], route="hub")
    assert artifact.meta.details["quantizer"] == TFLITE_QUANTIZER
    before, (_, after) = hub_weights(models, "digits_qat", cache), read_weights("tflite", artifact.main)
    for name, (weight, _) in align(before, after).items():
        step = float(np.max(np.abs(before[name]))) / 127
        np.testing.assert_allclose(weight, before[name], rtol=0, atol=0.51 * step, err_msg=name)
