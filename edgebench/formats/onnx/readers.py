"""The precision an ONNX file holds, read from its protobuf (see ``formats.precision``)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from edgebench.formats.precision import by_weights


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
    return by_weights(elements, "int8")
