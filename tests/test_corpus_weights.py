"""Weights on real third-party models (issue 11, items 2, 6 and 10): weights held in Constant nodes,
layer selection by share of weights with a warning when the model got less than the recipe asked, one
parameter count in every format, labels (precision of a bare artifact, model names).

Counts are checked against counts made here independently (straight from the protobuf), never against
edgebench's own figures; outputs against onnxruntime on the model as shipped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgebench.artifacts import cache as artifacts
from edgebench.pipeline.bench import BenchRequest, model_name, run_bench
from edgebench.cli import main
from edgebench.compress.graph import LayerSelection, constant_weights, lift_constants
from edgebench.compress.metrics import onnx_weights
from edgebench.compress.recipe import parse_recipe
from edgebench.compress.weights import apply_weight_steps
from edgebench.config import SweepSpec, TimingSpec
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import get as get_format
from edgebench.formats.readback import costs
from edgebench.pipeline.sweep.cells import model_layers
from edgebench.artifacts.targets import resolve
from tests.conftest import QUICK_TIMING
from tests.corpus import corpus

CLS_SHAPE = {"x": (1, 3, 48, 192)}  # the feed shape of its data (manifest: data.feed_shapes)
QUICK = TimingSpec(warmup_s=0.0, warmup_iterations=1, min_iterations=5, min_duration_s=0.0, max_duration_s=5)


def _constant_weight_elements(path: Path) -> int:
    """Independent count: elements of the Constant tensors that Conv / MatMul read as their weight."""
    model = onnx.load(str(path))
    constants = {n.output[0]: n.attribute[0].t for n in model.graph.node if n.op_type == "Constant"}
    return sum(int(np.prod(constants[n.input[1]].dims)) for n in model.graph.node
               if n.op_type in ("Conv", "MatMul") and n.input[1] in constants)


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])


# --- item 2: weights in Constant nodes ---------------------------------------------------------------

def test_constant_node_weights_are_counted():
    cls = corpus("ppocr_cls")
    assert cls.entry["initializer_bytes"] == 0  # every weight is a Constant node in the file as shipped
    expected = _constant_weight_elements(cls.path)
    params = onnx_weights(cls.path)[0]
    assert sum(w.size for w in params.values()) == expected > 100_000
    # the weights are most of what the Constant nodes hold (the rest: BN statistics, biases, shapes)
    assert 0.85 * cls.entry["constant_node_bytes"] < 4 * expected < cls.entry["constant_node_bytes"]


@pytest.mark.parametrize("name", ["ppocr_cls", "silero_vad"])
def test_lifting_constants_changes_nothing_the_model_computes(tmp_path, name):
    """silero_vad keeps its weights in Constant nodes inside If branches: lifted into those subgraphs."""
    m = corpus(name)
    model = onnx.load(str(m.path))
    assert lift_constants(model) == constant_weights(m.path) > 20
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(tmp_path / "lifted.onnx"))
    assert constant_weights(tmp_path / "lifted.onnx") == 0
    data = np.load(m.data)
    if name == "silero_vad":  # per-sample state and 0-d sample rate (manifest: data.layout)
        feeds = [{"input": data["input"][i:i + 1], "state": data["state"][i], "sr": np.array(data["sr"][i])}
                 for i in range(4)]
    else:
        feeds = [{"x": data["x"][i:i + 1]} for i in range(4)]
    shipped, lifted = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                       for p in (m.path, tmp_path / "lifted.onnx"))
    for feed in feeds:
        for a, b in zip(shipped.run(None, feed), lifted.run(None, feed)):
            np.testing.assert_array_equal(a, b)


def test_prune_and_cluster_work_on_constant_node_weights(recipe_cache):
    cls = corpus("ppocr_cls")
    pruned = artifacts.ensure(cls.path, "onnx", recipe="prune:0.5", root=recipe_cache)
    step = pruned.meta.weight_steps["prune:0.5"]
    assert step["sparsity"] == pytest.approx(0.5, abs=0.01) and "warning" not in step
    assert pruned.meta.sparsity == pytest.approx(0.5, abs=0.01)  # read back from the produced file
    assert constant_weights(pruned.main) == 0  # the weights are initializers now
    zeros = sum(int(np.sum(numpy_helper.to_array(i) == 0)) for i in onnx.load(str(pruned.main)).graph.initializer)
    assert zeros >= 0.49 * _constant_weight_elements(cls.path)
    clustered = artifacts.ensure(cls.path, "onnx", recipe="cluster:16", root=recipe_cache)
    report = clustered.meta.weight_steps["cluster:16"]
    assert report["layers_touched"] >= 50 and report["weights_touched"] > 0.98
    assert max(report["unique_values"].values()) <= 16
    x = np.load(cls.data)["x"]
    assert np.isfinite(_run(clustered.main, x)).all()


def test_onnx_int8_of_constant_node_weights_keeps_agreement_and_shrinks(recipe_cache):
    """Before: the quantizer saw no weights (they were Constant nodes), so the int8 file grew (0.78× the
    fp32 size) with weights left float. Now it quantizes them and agrees with fp32 on the labelled data."""
    cls = corpus("ppocr_cls")
    data = np.load(cls.data)
    int8 = artifacts.ensure(cls.path, "onnx", "int8", calibration=cls.data, root=recipe_cache,
                            shapes=CLS_SHAPE)
    assert int8.meta.size_ratio > 1.3  # smaller than fp32
    fp32, out = _run(cls.path, data["x"]), _run(int8.main, data["x"])
    labels = data["labels"]
    assert np.mean(out.argmax(1) == labels) >= np.mean(fp32.argmax(1) == labels)
    assert np.mean(out.argmax(1) == fp32.argmax(1)) == 1.0
    cosine = np.sum(out * fp32, 1) / np.linalg.norm(out, axis=1) / np.linalg.norm(fp32, axis=1)
    assert cosine.min() > 0.99
    assert int8.meta.params == _constant_weight_elements(cls.path)  # int8 weights counted like floats


def test_a_model_without_float_weight_layers_is_refused_for_what_it_is(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(tmp_path / "relu.onnx"))
    with pytest.raises(EdgebenchError) as err:
        apply_weight_steps(tmp_path / "relu.onnx", parse_recipe("prune:0.5"), tmp_path / "out.onnx")
    assert "has no Conv, ConvTranspose, Gemm or MatMul layer" in str(err.value)
    assert "--all-layers" not in str(err.value) and err.value.status == ExitStatus.USAGE


# --- item 6: which layers, and what the model got ----------------------------------------------------

def test_prune_of_a_small_mlp_reaches_the_asked_share_of_all_weights(tmp_path):
    """oww_alexa: Gemm 1536→128 (92 % of the weights), 128→128, 128→1. Skipping the first and last layer
    as before left 92 % unpruned (prune:0.9 gave 6.9 %); the first layer is now kept in."""
    alexa = corpus("oww_alexa")
    sizes = [int(np.prod(i.dims)) for i in onnx.load(str(alexa.path)).graph.initializer if len(i.dims) == 2]
    report, _ = apply_weight_steps(alexa.path, parse_recipe("prune:0.9"), tmp_path / "p.onnx")
    step = report["prune:0.9"]
    zeros = sum(int(np.sum(numpy_helper.to_array(i) == 0)) for i in onnx.load(str(tmp_path / "p.onnx")).graph.initializer
                if len(i.dims) == 2)
    assert zeros / sum(sizes) == pytest.approx(step["sparsity"], abs=1e-6)
    assert step["sparsity"] > 0.89 and step["left_alone"] == ["Gemm_5"] and "warning" not in step
    # excluding the big layer: the recipe cannot be met, and the report says so
    report, _ = apply_weight_steps(alexa.path, parse_recipe("prune:0.9"), tmp_path / "q.onnx",
                                   LayerSelection(exclude=("Gemm_1",)))
    step = report["prune:0.9"]
    assert step["sparsity"] < 0.1 and step["sparsity_requested"] == 0.9
    assert "not 90%" in step["warning"] and "Gemm_1" in step["warning"] and "--exclude 'Gemm_1'" in step["warning"]


def test_bench_takes_layer_options_and_reports_the_shortfall(tmp_path, recipe_cache):
    alexa = corpus("oww_alexa")
    result = run_bench(BenchRequest(model=alexa.path, recipe="prune:0.9", cache_dir=recipe_cache, timing=QUICK,
                                    layers=LayerSelection(exclude=("Gemm_1",))))
    assert result.model.costs["sparsity_requested"] == 0.9 and result.model.costs["sparsity"] < 0.1
    assert "not 90%" in result.model.warnings[0]
    out = tmp_path / "r.json"
    assert main(["bench", str(alexa.path), "--recipe", "prune:0.9", "--exclude", "Gemm_1", "--cache-dir",
                 str(recipe_cache), "--json", str(out), *QUICK_TIMING]) == ExitStatus.OK
    model = json.loads(out.read_text())["model"]
    assert model["warnings"] == result.model.warnings


# --- item 10: labels ----------------------------------------------------------------------------------

def test_params_are_the_same_in_every_format(recipe_cache):
    alexa = corpus("oww_alexa")
    expected = sum(int(np.prod(i.dims)) for i in onnx.load(str(alexa.path)).graph.initializer if len(i.dims) == 2)
    for fmt in ("onnx", "openvino", "tflite"):
        artifact = artifacts.ensure(alexa.path, fmt, "fp32", root=recipe_cache)
        assert artifact.meta.params == expected, fmt
        assert costs(fmt, artifact.main)["params"] == expected  # as bench reads a bare artifact


def test_google_tflite_with_fp16_weights_is_labelled_fp16():
    """MediaPipe ships float16 weights behind DEQUANTIZE ops; an 'fp32' passed along (a sweep's as-is
    recipe, --precision) no longer relabels them."""
    for name in ("mp_face_detection", "mp_hand_landmark"):
        assert get_format("tflite").read_precision(corpus(name).path) == "fp16", name
    face = corpus("mp_face_detection").path  # (resolve gzips the file: the small one)
    assert resolve(face).precision == resolve(face, precision="fp32").precision == "fp16"


def test_generic_file_names_take_their_folder_name(tmp_path):
    alexa = corpus("oww_alexa")
    copy = tmp_path / "wakeword" / "model.onnx"
    copy.parent.mkdir()
    shutil.copy(alexa.path, copy)
    assert model_name(copy) == "wakeword" and model_name(alexa.path) == "alexa_v0.1"
    assert model_name(tmp_path / "resnet50" / "export" / "inference.tflite") == "resnet50"
    assert model_name(copy, "given") == "given"
    assert run_bench(BenchRequest(model=copy, timing=QUICK)).model.name == "wakeword"
    out = tmp_path / "r.json"
    assert main(["bench", str(copy), "--name", "alexa", "--json", str(out), *QUICK_TIMING]) == ExitStatus.OK
    assert json.loads(out.read_text())["model"]["name"] == "alexa"


def test_sweep_spec_takes_layer_options_per_model():
    spec = SweepSpec.model_validate({"name": "s", "models": [
        {"name": "alexa", "path": "alexa.onnx", "layers": {"exclude": ["Gemm_1"], "all_layers": True}},
        {"name": "plain", "path": "plain.onnx"}]})
    assert model_layers(spec.models[0]) == LayerSelection(exclude=("Gemm_1",), first_last=True)
    assert model_layers(spec.models[1]) == LayerSelection()  # the default: no layers in the cache key
