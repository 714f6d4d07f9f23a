"""ONNX → TFLite (onnx2tf) on real third-party models: a scalar input and a state, names TensorFlow
refuses (`onnx::Flatten_0`, Paddle's `Softmax@0`), `-1` and `?` dimensions fixed from the calibration
data — each converted, run by its runner through bench and checked against onnxruntime; and what the
user reads when onnx2tf cannot convert a model (the node, the op, the converter's root cause)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edgebench.artifacts import cache as artifacts
from edgebench.pipeline.bench import BenchRequest, Outcome, execute
from edgebench.pipeline.compare import COMPARE_TIMING
from edgebench.formats.tflite.convert import sample_inputs
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.data.source import load_onnx_info
from tests.corpus import CorpusModel, corpus


def onnx_outputs(m: CorpusModel) -> dict[str, np.ndarray]:
    """onnxruntime on each sample of the model's data (batch 1), stacked on axis 0."""
    session = ort.InferenceSession(str(m.path), providers=["CPUExecutionProvider"])
    with np.load(m.data) as npz:
        data = {i.name: npz[i.name] for i in session.get_inputs()}
    runs = [session.run(None, {k: v[n:n + 1] for k, v in data.items()}) for n in range(len(next(iter(data.values()))))]
    return {o.name: np.concatenate([r[i] for r in runs]) for i, o in enumerate(session.get_outputs())}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def agrees_with_onnx(m: CorpusModel, cache: Path) -> Outcome:
    """The .tflite run by its runner (bench) on the model's data, each output mapped back to the ONNX
    layout, against onnxruntime."""
    ours = execute(BenchRequest(model=m.path, dataset=m.data, threads=1, timing=COMPARE_TIMING, format="tflite",
                                calibration=m.data, cache_dir=cache))
    ref = onnx_outputs(m)
    assert set(ours.outputs) == set(ref)
    for name, value in ref.items():
        assert ours.outputs[name].shape == value.shape, name
        assert cosine(ours.outputs[name], value) > 0.9999, name
    return ours


def one_line(exc: pytest.ExceptionInfo[EdgebenchError]) -> str:
    msg = str(exc.value)
    assert exc.value.status == ExitStatus.CONVERSION_FAILED
    assert "\n" not in msg and "Traceback" not in msg and "/tmp" not in msg and "edgebench-onnx2tf" not in msg
    return msg


def test_a_scalar_input_and_a_state_make_one_sample_each():
    """silero_vad: `sr` is 0-d and `state` carries its batch on axis 1; the data holds one of each per
    sample. The conversion sample is one whole input of each, not a slice of the sample axis."""
    m = corpus("silero_vad")
    specs = load_onnx_info(m.path).inputs
    sample = sample_inputs(specs, m.data)
    assert {k: v.shape for k, v in sample.items()} == {"input": (1, 576), "state": (2, 1, 128), "sr": ()}
    assert int(sample["sr"]) == 16000 and sample["sr"].dtype == np.int64
    random = sample_inputs(specs, None, {"input": (1, 576), "state": (2, 1, 128)})
    assert random["sr"].shape == () and random["state"].shape == (2, 1, 128)


def test_onnx2tf_failure_on_a_stateful_model_names_the_if_node(recipe_cache: Path):
    """onnx2tf cannot convert silero_vad's sample-rate `If` (its branches hold the STFT convolutions):
    one line naming the node, the op, the onnx2tf converter that raised and TensorFlow's root cause."""
    m = corpus("silero_vad")
    with pytest.raises(EdgebenchError) as exc:
        artifacts.ensure(m.path, "tflite", "fp32", calibration=m.data, root=recipe_cache)
    msg = one_line(exc)
    assert msg.startswith("onnx2tf cannot convert the model: op If (node If_0): ValueError in onnx2tf's Conv "
                          "converter: Depth of output (258) is not a multiple of the number of groups (640)")
    assert "use another format (onnx, openvino)" in msg


def test_double_colon_input_name(recipe_cache: Path):
    """oww_alexa's input is `onnx::Flatten_0`: the .tflite's tensor has a TF-safe name and meta.json maps it
    back. onnx2tf's guess that the [1, 16, 96] window is channel-first makes the Flatten after it wrong,
    so the input keeps its shape (converted a second time with keep_shape_absolutely_input_names)."""
    m = corpus("oww_alexa")
    outcome = agrees_with_onnx(m, recipe_cache)
    (tensor,) = outcome.target.inputs
    assert tensor.source_name == "onnx::Flatten_0" and tensor.name == "onnx__Flatten_0"
    assert tensor.shape == (1, 16, 96) and tensor.permutation is None
    assert outcome.target.meta.details["kept_input_shapes"] == ["onnx::Flatten_0"]


def test_minus_one_and_unknown_dims_are_fixed_from_the_calibration_data(recipe_cache: Path):
    """ppocr_cls: input [-1, 3, ?, ?] (Paddle2ONNX) and node names with `@`; the .tflite is made at the
    calibration data's 1x3x48x192, NHWC, and classifies the labelled crops as onnxruntime does."""
    m = corpus("ppocr_cls")
    outcome = agrees_with_onnx(m, recipe_cache)
    assert outcome.target.meta.details["converted_shapes"] == {"x": [1, 3, 48, 192]}
    (tensor,) = outcome.target.inputs
    assert tensor.shape == (1, 48, 192, 3) and tensor.layout == "NHWC" and tensor.source_shape == (None, 3, None, None)
    assert outcome.result.accuracy.top1 == 1.0


def test_without_a_calibration_set_the_dataset_fixes_the_tflite_shapes(recipe_cache: Path):
    """`bench --format tflite --dataset D` with no --calibration: the dynamic dims take the dataset's sizes
    (at batch 1) instead of sizes the dataset would not fit; other formats and a given --shape are left as
    they are, so their cache entries do not change."""
    from edgebench.pipeline.bench import conversion_shapes

    m = corpus("ppocr_cls")
    assert conversion_shapes(m.path, "tflite", m.data, None, {}) == {"x": (1, 3, 48, 192)}
    assert conversion_shapes(m.path, "onnx", m.data, None, {}) == {}
    assert conversion_shapes(m.path, "tflite", m.data, m.data, {}) == {}  # the calibration sample decides
    assert conversion_shapes(m.path, "tflite", m.data, None, {"x": (1, 3, 48, 96)}) == {"x": (1, 3, 48, 96)}
    outcome = execute(BenchRequest(model=m.path, dataset=m.data, threads=1, timing=COMPARE_TIMING, format="tflite",
                                   cache_dir=recipe_cache))
    assert outcome.target.meta.details["converted_shapes"] == {"x": [1, 3, 48, 192]}
    assert outcome.result.accuracy.top1 == 1.0


def if_conv_model(path: Path) -> Path:
    """A valid ONNX (onnxruntime runs it) with a Conv inside each branch of an `If`: onnx2tf cannot convert it."""
    vi = helper.make_tensor_value_info
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 1, 3], [1.0] * 12)
    then = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["t"])], "then", [],
                             [vi("t", TensorProto.FLOAT, [1, 4, 62])])
    other = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["e"], pads=[1, 1])], "else", [],
                              [vi("e", TensorProto.FLOAT, [1, 4, 64])])
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0), helper.make_node("Greater", ["s", "zero"], ["c"]),
         helper.make_node("If", ["c"], ["y"], name="branch@0", then_branch=then, else_branch=other)],
        "if_conv", [vi("x", TensorProto.FLOAT, [1, 1, 64])], [vi("y", TensorProto.FLOAT, [1, 4, None])],
        initializer=[w, helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_converter_failure_names_node_op_and_root_cause(tmp_path: Path):
    model = if_conv_model(tmp_path / "if_conv.onnx")
    with pytest.raises(EdgebenchError) as exc:
        artifacts.ensure(model, "tflite", "fp32", root=tmp_path / "cache")
    msg = one_line(exc)
    assert msg.startswith("onnx2tf cannot convert the model: op If (node branch@0): TypeError in onnx2tf's "
                          "Conv converter: ")
    assert str(tmp_path) not in msg
    assert not any((tmp_path / "cache").rglob("meta.json"))


def test_a_flex_op_is_rebuilt_from_builtin_ops(tmp_path: Path):
    """MiniLM's GELU holds Erf, which onnx2tf emits as a TensorFlow (Flex) op that LiteRT cannot run:
    it is converted with onnx2tf's pseudo Erf, built from builtin TFLite ops."""
    gelu_like = helper.make_graph(
        [helper.make_node("Erf", ["x"], ["e"]), helper.make_node("Mul", ["e", "x"], ["y"])], "erf",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    model = tmp_path / "erf.onnx"
    onnx.save(helper.make_model(gelu_like, opset_imports=[helper.make_opsetid("", 13)]), model)
    how = artifacts.ensure(model, "tflite", "fp32", root=tmp_path / "cache").meta.details
    assert how["pseudo_ops"] == ["erf"] and how["sample_rel_err"]["y"] < 1e-5


def test_a_converter_crash_is_named_as_such_not_by_a_runtime_warning():
    """ddddocr_common to int8: TensorFlow's converter died with SIGSEGV after onnxruntime had logged shape
    warnings; the one line named the warning. Now it names the crash, and warnings are never the reason."""
    from edgebench.formats.tflite.convert import crash_message

    log = ("\x1b[0;93m2026-11-30 20:00:35.045 [W:onnxruntime:, execution_frame.cc:943 VerifyOutputSizes] Expected "
           "shape from model of {1,-1} does not match actual shape of {24,1,8210} for output 387\x1b[m\n")
    msg = crash_message(-11, log, "int8")
    assert msg.startswith("the TFLite converter crashed (SIGSEGV) converting the model to int8")
    assert "onnxruntime" not in msg and "\n" not in msg
    failed = crash_message(1, log + "ValueError: Dimensions must be equal, but are 3 and 4\n", "fp32")
    assert failed == "onnx2tf cannot convert the model: ValueError: Dimensions must be equal, but are 3 and 4"
    assert crash_message(1, log, "fp32") == "onnx2tf cannot convert the model: the converter process ended with status 1"


def test_int8_of_a_model_with_integer_inputs_is_refused_before_converting(tmp_path: Path):
    """MiniLM's input_ids/attention_mask/token_type_ids are int64: onnx2tf's int8 calibration feeds them
    float32 and TensorFlow refuses after minutes of conversion. edgebench says so at once, with the way out."""
    from edgebench.formats.tflite.convert import convert

    m = corpus("minilm_l6_v2")
    with pytest.raises(EdgebenchError) as exc:
        convert(m.path, "int8", tmp_path / "out", calibration=m.data)
    msg = one_line(exc)
    assert "cannot calibrate integer inputs (input_ids, attention_mask, token_type_ids)" in msg
    assert "int8-dynamic" in msg and not (tmp_path / "out").exists()
