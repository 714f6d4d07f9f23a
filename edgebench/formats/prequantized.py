"""A pre-quantized QDQ ONNX as a format's int8 source: ``quantization={"qdq": "<path>"}``.

Quantization-aware training (``training.qdq``) writes a QDQ ONNX whose int8 weights and activation scales
are the trained ones, in the scheme every format's int8 runs (symmetric, zero point 0). Given as
``quantization["qdq"]`` beside the float ``source``, each format's int8 path converts it instead of
quantizing ``source``, without re-calibration where its toolchain can (``Format.takes_qdq``): onnx ships
the file as it is, OpenVINO
converts its Q/DQ pairs into FakeQuantize (executed in int8, no NNCF), TensorRT builds its engine on the
target from the Q/DQ scales. onnx2tf cannot take Q/DQ ranges (it drops an activation QuantizeLinear that a
DequantizeLinear follows and computes the rest in float), so TFLite gets ``dequantized``: the float model
whose weights already lie on the int8 grid (the int8 conversion reproduces them exactly), with activation
ranges calibrated again on the calibration set — ``TFLITE_QUANTIZER`` says so in the artifact's meta.

A source exported from quantization-aware training elsewhere (tfmot's ``quantize_model`` through tf2onnx,
torch.ao's fake quantizers through torch.onnx) is such a QDQ ONNX itself (``prequantized``): its int8 is its
own, the QDQ file for every format. tf2onnx folds each weight's FakeQuant into a float constant, so its
weights lie on an int8 grid but are stored float; ``with_int8_weights`` stores them as the int8 they are
behind a DequantizeLinear, exactly, which makes the file the QDQ form the formats take. onnx and OpenVINO
convert such a source as it is at any precision; TFLite, whose onnx2tf float32 of a Q/DQ graph disagrees with
onnxruntime, converts its float copy (``FLOAT_COPY`` in the meta).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus

QUANTIZER = "quantization-aware training (the QDQ ONNX's own int8 weights and scales, no calibration)"
TFLITE_QUANTIZER = "qat-weights, activations calibrated: onnx2tf cannot take Q/DQ ranges"
FLOAT_COPY = "the QDQ source's float copy (weights on its int8 grid): onnx2tf cannot take Q/DQ ranges"


def qdq_file(quantization: Mapping[str, Any] | None) -> Path | None:
    """The pre-quantized QDQ ONNX the conversion's ``quantization`` options name, or None."""
    path = (quantization or {}).get("qdq")
    return Path(path) if path else None


def check_qdq(source: Path, precision: str, fmt: str) -> dict[str, Any]:
    """The QDQ structure of ``source`` (``onnx.quantize.int8_structure``) and the quantizer, for the meta;
    USAGE where int8 is not the precision asked, INVALID_MODEL where the file holds no int8 weights behind
    DequantizeLinear."""
    from edgebench.data.source import require_file
    from edgebench.formats.onnx.quantize import int8_structure

    require_file(source, "pre-quantized QDQ model")
    if precision != "int8":
        raise EdgebenchError(f"a pre-quantized (QAT) model converts to int8 only, not {precision} in {fmt}: "
                             "ask for int8, or convert the float model", ExitStatus.USAGE)
    structure = int8_structure(source)
    if not structure["int8_ops"]:
        raise EdgebenchError(f"{source.name} is not a QDQ ONNX with int8 weights: pass the QDQ file that "
                             "quantization-aware training wrote",
                             ExitStatus.INVALID_MODEL)
    return {"quantizer": QUANTIZER, **structure}


def dequantized(source: Path, out: Path) -> Path:
    """The float model of a QDQ ONNX into ``out``: each DequantizeLinear of a constant replaced by its float
    value (weights on the int8 grid), each activation QuantizeLinear → DequantizeLinear pair removed."""
    from onnx import numpy_helper

    from edgebench.compress.graph import Graph, dequantize, save_model
    from edgebench.formats.onnx.quantize import DQ_COMMUTES

    graph = Graph.load(source)
    body = graph.model.graph
    producers = {o: n for n in body.node for o in n.output}
    rename: dict[str, str] = {}
    for node in [n for n in body.node if n.op_type == "DequantizeLinear"]:
        chain, quant = [], producers.get(node.input[0])
        while quant is not None and quant.op_type in DQ_COMMUTES:  # tf2onnx: Q → Transpose → DQ
            chain.append(quant)
            quant = producers.get(quant.input[0])
        if node.input[0] in graph.arrays:
            body.initializer.append(numpy_helper.from_array(dequantize(graph, node), node.output[0]))
        elif quant is not None and quant.op_type == "QuantizeLinear":
            if chain:  # the ops between now move the float tensor
                chain[-1].input[0] = quant.input[0]
            rename[node.output[0]] = chain[0].output[0] if chain else quant.input[0]
        else:
            continue
        body.node.remove(node)
    outputs = {output.name for output in body.output}
    # a pair ending on a graph output (tfmot quantizes the logits) keeps the output's name: the float tensor
    # before the QuantizeLinear takes it, unless that is a graph input too
    inputs = {i.name for i in body.input}
    keep = {dq: q for dq, q in rename.items() if dq in outputs and q not in inputs and q not in outputs}
    if any(name in outputs and name not in keep for name in rename):
        raise EdgebenchError(f"{source.name} ends in a QuantizeLinear → DequantizeLinear pair on an input, which the "
                             "float copy for TFLite cannot drop: convert it to onnx or openvino",
                             ExitStatus.CONVERSION_FAILED)
    named = {q: dq for dq, q in keep.items()}
    rename = {dq: named.get(q, q) for dq, q in rename.items() if dq not in keep} | named
    for node in body.node:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
        for i, name in enumerate(node.output):
            node.output[i] = named.get(name, name)
    read = {name for n in body.node for name in n.input}
    for node in [n for n in body.node if n.op_type == "QuantizeLinear" and n.output[0] not in read]:
        body.node.remove(node)
    used = {name for n in body.node for name in n.input}
    for init in [i for i in body.initializer if i.name not in used]:
        body.initializer.remove(init)
    return save_model(graph.model, out)


def asymmetric_quantizers(source: Path) -> int:
    """How many QuantizeLinear nodes of ``source`` quantize asymmetrically (uint8, or a zero point other than
    0): TF Model Optimization's and torch.ao's default for activations, which TensorRT cannot take."""
    import onnx
    from onnx import numpy_helper

    from edgebench.compress.graph import graphs

    proto = onnx.load(str(source), load_external_data=False)
    count = 0
    for graph in graphs(proto.graph):
        zeros = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for node in (n for n in graph.node if n.op_type == "QuantizeLinear"):
            zero = zeros.get(node.input[2]) if len(node.input) > 2 else None
            count += zero is not None and (zero.dtype != np.int8 or bool(np.any(zero != 0)))
    return count


def prequantized(source: Path) -> bool:
    """Whether the ONNX ``source`` is quantized already: a QuantizeLinear of an activation (not of a constant),
    as quantization-aware training's exports and static int8 models hold."""
    import onnx

    from edgebench.compress.graph import graphs

    proto = onnx.load(str(source), load_external_data=False)
    for graph in graphs(proto.graph):
        constants = {i.name for i in graph.initializer}
        if any(n.op_type == "QuantizeLinear" and n.input[0] not in constants for n in graph.node):
            return True
    return False


GRID_TOLERANCE = 1e-3  # of one int8 step: float32 rounding of k × scale stays far below it


def with_int8_weights(source: Path, out: Path) -> Path:
    """A copy of the QDQ ``source`` into ``out`` whose float weights lying on a symmetric int8 grid (one
    scale per tensor, or per output channel) are stored as those int8 values behind a DequantizeLinear
    (zero point 0): the same numbers, now in the form the formats' QDQ paths read. A weight off any such
    grid stays float; a model with no int8 weight at all is refused (INVALID_MODEL)."""
    from onnx import helper, numpy_helper

    from edgebench.compress.graph import Graph, save_model, topological_sort

    graph = Graph.load(source)
    body = graph.model.graph
    readers = {name: [n for n in body.node if name in n.input] for name in graph.arrays}
    layers = graph.weight_layers()
    integer = sum(graph.arrays[layer.weight].dtype.kind != "f" for layer in layers)
    for layer in layers:
        w = graph.arrays[layer.weight]
        if not layer.main or w.dtype.kind != "f" or any(n.op_type == "DequantizeLinear" for n in readers[layer.weight]):
            continue
        reader = next((n for n in readers[layer.weight] if n.input[1:2] == [layer.weight]), None)
        if reader is None:  # read through a Transpose …: which axis is the output channel is not known
            continue
        found = int8_grid(w, _channel_axis(reader))
        if found is None:
            continue
        q, scale, axis = found
        name = layer.weight
        body.initializer.remove(next(i for i in body.initializer if i.name == name))
        body.initializer.extend([numpy_helper.from_array(q, f"{name}_int8"),
                                 numpy_helper.from_array(scale, f"{name}_scale"),
                                 numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}_zero")])
        node = helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"], [name],
                                name=f"{name}_DequantizeLinear")
        if scale.ndim:
            node.attribute.append(helper.make_attribute("axis", axis))
        body.node.append(node)
        integer += 1
    if not integer:
        raise EdgebenchError(f"{source.name} quantizes activations (QuantizeLinear) but holds no weight as int8 or on "
                             "an int8 grid, so its int8 is neither a quantization-aware model's nor a float model's: "
                             "export the float model (edgebench quantizes it) or the QAT model with its weights' "
                             "fake quantization", ExitStatus.INVALID_MODEL)
    topological_sort(graph.model)
    return save_model(graph.model, out)


def _channel_axis(node: Any) -> int:
    """The output-channel axis of a weight layer's stored weight (Conv OIHW: 0; MatMul [K, N]: 1; Gemm by transB)."""
    if node.op_type == "MatMul":
        return 1
    if node.op_type == "Gemm":
        return 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
    return 0


def int8_grid(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(int8 values, scale, axis) with ``q × scale == w`` to float32 rounding, |q| ≤ 127: one scale for the
    tensor where one fits, else one per slice along ``axis``; None when ``w`` lies on no such grid."""
    def fit(part: np.ndarray) -> np.float32 | None:
        top = float(np.max(np.abs(part))) if part.size else 0.0
        if top == 0.0:
            return np.float32(1.0)
        steps = np.diff(np.unique(np.abs(part)))
        for scale in (top / 127, float(steps.min()) if steps.size else top):
            q = part.astype(np.float64) / scale
            if np.max(np.abs(q)) <= 127 + GRID_TOLERANCE and np.max(np.abs(q - np.round(q))) <= GRID_TOLERANCE:
                return np.float32(scale)
        return None

    whole = fit(w)
    if whole is not None:
        return np.round(w / whole).astype(np.int8), np.asarray(whole, np.float32), axis
    if w.ndim < 2:
        return None
    moved = np.moveaxis(w, axis, 0)
    scales = [fit(channel) for channel in moved]
    if any(s is None for s in scales):
        return None
    scale = np.asarray(scales, np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    return np.round(w / scale.reshape(shape)).astype(np.int8), scale, axis
