"""An OpenVINO IR read back on the host: its weights, evaluated by the OpenVINO CPU plugin itself (the
constant sub-graph feeding each layer's weight: int8 → Convert → Multiply …, so every decompression
pattern is covered), and the precision its XML says it holds (see ``formats.precision``)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.formats.base import Weights
from edgebench.formats.openvino.convert import ov_module
from edgebench.formats.precision import UNKNOWN, by_weights

OV_LAYERS = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul")
# What else the parameter count covers (as ONNX's graph.COUNTED_INPUTS): embedding tables, recurrent matrices.
OV_COUNTED = {**{op: (1,) for op in OV_LAYERS}, "Gather": (0,), "LSTMSequence": (4, 5), "GRUSequence": (3, 4),
              "RNNSequence": (3, 4), "LSTMCell": (3, 4), "GRUCell": (2, 3), "RNNCell": (2, 3)}


def openvino_weights(xml: Path) -> tuple[Weights, Weights]:
    ov = ov_module()
    core = ov.Core()
    model = core.read_model(str(xml))
    values: dict[str, object] = {}  # one entry per constant, however many ops read it
    layers: list[tuple[str, str]] = []
    for op in model.get_ordered_ops():
        for index in OV_COUNTED.get(op.get_type_name(), ()):
            if index >= op.get_input_size():
                continue
            value = op.input_value(index)
            if not value.get_element_type().is_real() or not _ov_constant(value):
                continue
            key = f"{value.get_node().get_friendly_name()}:{value.get_index()}"
            values.setdefault(key, value)
            if op.get_type_name() in OV_LAYERS:
                layers.append((op.get_friendly_name(), key))
    if not values:
        return {}, {}
    sub = ov.Model(list(values.values()), [], "weights")
    computed = core.compile_model(sub, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({})
    params = {key: np.asarray(v, np.float32) for key, v in zip(values, computed.values())}
    return params, {name: params[key] for name, key in layers}


def _ov_constant(value: Any) -> bool:
    """True when no Parameter feeds ``value`` (an ``openvino.Output``; OpenVINO ships no types): it is a
    (possibly decompressed) constant."""
    stack, seen = [value.get_node()], set[int]()
    while stack:
        node = stack.pop()
        if node.get_type_name() == "Parameter":
            return False
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.input_value(i).get_node() for i in range(node.get_input_size()))
    return True


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
    return by_weights(elements, "int8-dynamic")
