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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from edgebench.errors import EdgebenchError, ExitStatus

QUANTIZER = "quantization-aware training (the QDQ ONNX's own int8 weights and scales, no calibration)"
TFLITE_QUANTIZER = "qat-weights, activations calibrated: onnx2tf cannot take Q/DQ ranges"


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

    graph = Graph.load(source)
    body = graph.model.graph
    producers = {o: n for n in body.node for o in n.output}
    rename: dict[str, str] = {}
    for node in [n for n in body.node if n.op_type == "DequantizeLinear"]:
        quant = producers.get(node.input[0])
        if node.input[0] in graph.arrays:
            body.initializer.append(numpy_helper.from_array(dequantize(graph, node), node.output[0]))
        elif quant is not None and quant.op_type == "QuantizeLinear":
            rename[node.output[0]] = quant.input[0]
        else:
            continue
        body.node.remove(node)
    if any(output.name in rename for output in body.output):
        raise EdgebenchError(f"{source.name} ends in a QuantizeLinear → DequantizeLinear pair, which the float "
                             "copy for TFLite cannot drop: convert it to onnx or openvino", ExitStatus.CONVERSION_FAILED)
    for node in body.node:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
    read = {name for n in body.node for name in n.input}
    for node in [n for n in body.node if n.op_type == "QuantizeLinear" and n.output[0] not in read]:
        body.node.remove(node)
    used = {name for n in body.node for name in n.input}
    for init in [i for i in body.initializer if i.name not in used]:
        body.initializer.remove(init)
    return save_model(graph.model, out)
