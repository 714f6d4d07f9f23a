"""The precision an artifact holds, read from the file itself: for artifacts given by path without the
``meta.json`` edgebench writes (made by another tool, or copied out of the cache).

The names are edgebench's own precisions (``convert.*.PRECISIONS``), judged by the weights' storage type
and by whether activations are quantized:

- ``int8``: activations quantized with fixed ranges (ONNX QuantizeLinear / QLinear ops, OpenVINO
  FakeQuantize, TFLite int8 activation tensors);
- ``int8-dynamic``: int8 weights with float activations (ONNX DynamicQuantizeLinear / *Integer ops or
  weight-only DequantizeLinear; OpenVINO i8/u8 weights without FakeQuantize, which is what
  ``compress_weights`` writes; TFLite dynamic-range models);
- ``fp16`` / ``fp32``: float weights, by the type that holds most weight elements;
- ``unknown``: anything else (no weights, bf16, int4 …), rather than a guess.

Only storage is read (ONNX protobuf without external data, IR XML, the TFLite interpreter's tensor table):
no model is compiled. Integer tensors wider than 8 bits (int32 biases of int8 models, int64 shapes) are
not weights for this purpose.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

UNKNOWN = "unknown"
_FLOATS = {"float32": "fp32", "float16": "fp16"}
_INT8 = {"int8", "uint8"}


def _by_weights(elements: Counter[str], int8_name: str) -> str:
    """The precision of the storage type holding most weight elements (int8/uint8 → ``int8_name``)."""
    weights = {k: v for k, v in elements.items() if k in _FLOATS or k in _INT8 or k in ("bfloat16", "float64",
                                                                                          "int4", "uint4")}
    if not weights:
        return UNKNOWN
    kind = max(sorted(weights), key=lambda k: weights[k])
    if kind in _INT8:
        return int8_name
    return _FLOATS.get(kind, UNKNOWN)


def onnx_precision(path: Path) -> str:
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)  # dims and types are enough: no weight bytes
    ops: set[str] = set()
    elements: Counter[str] = Counter()

    def count(tensor: onnx.TensorProto) -> None:
        try:
            dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type).name
        except (KeyError, ValueError, TypeError):  # undefined or exotic (string, float8 …): not a weight type
            return
        elements[dtype] += math.prod(tensor.dims)

    def walk(graph: onnx.GraphProto) -> None:
        for init in graph.initializer:
            count(init)
        for node in graph.node:
            ops.add(node.op_type)
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    count(attr.t)
                elif attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)

    walk(model.graph)
    if "QuantizeLinear" in ops or any(op.startswith("QLinear") for op in ops):
        return "int8"
    if ops & {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DequantizeLinear"}:
        return "int8-dynamic"
    return _by_weights(elements, "int8")


_OV_TYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i8": "int8",
             "u8": "uint8", "i4": "int4", "u4": "uint4"}


def openvino_precision(xml: Path) -> str:
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError):
        return UNKNOWN
    elements: Counter[str] = Counter()
    types = set()
    for layer in root.iter("layer"):
        types.add(layer.get("type"))
        data = layer.find("data")
        if layer.get("type") == "Const" and data is not None:
            shape = [int(d) for d in (data.get("shape") or "").split(",") if d.strip()]
            elements[_OV_TYPES.get(data.get("element_type", ""), "")] += math.prod(shape)
    if "FakeQuantize" in types:
        return "int8"
    return _by_weights(elements, "int8-dynamic")


def tflite_precision(path: Path) -> str:
    import numpy as np

    from edgebench.convert.tflite import _interpreter

    interp = _interpreter(path)
    produced = {int(t) for op in interp._get_ops_details() for t in op["outputs"]}  # as compress/readback does
    produced |= {int(d["index"]) for d in interp.get_input_details()}
    elements: Counter[str] = Counter()
    for d in interp.get_tensor_details():
        dtype = np.dtype(d["dtype"]).name
        if int(d["index"]) in produced:
            if dtype in _INT8:  # quantized activations: a full-integer model
                return "int8"
        else:
            elements[dtype] += int(np.prod(d["shape"])) if len(d["shape"]) else 1
    return _by_weights(elements, "int8-dynamic")


def detect(fmt: str, path: Path) -> str:
    """The precision ``path`` holds, or ``unknown`` when its format has no reader here (TensorRT engines)."""
    readers = {"onnx": onnx_precision, "openvino": openvino_precision, "tflite": tflite_precision}
    reader = readers.get(fmt)
    return reader(Path(path)) if reader else UNKNOWN
