"""The precision an artifact holds, read from the file itself: for artifacts given by path without the
``meta.json`` edgebench writes (made by another tool, or copied out of the cache).

The names are edgebench's own precisions (a format's ``precisions``), judged by the weights' storage type
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

from collections import Counter

UNKNOWN = "unknown"
FLOATS = {"float32": "fp32", "float16": "fp16"}
INT8 = {"int8", "uint8"}


def by_weights(elements: Counter[str], int8_name: str) -> str:
    """The precision of the storage type holding most weight elements (int8/uint8 → ``int8_name``)."""
    weights = {k: v for k, v in elements.items()
               if k in FLOATS or k in INT8 or k in ("bfloat16", "float64", "int4", "uint4")}
    if not weights:
        return UNKNOWN
    kind = max(sorted(weights), key=lambda k: weights[k])
    if kind in INT8:
        return int8_name
    return FLOATS.get(kind, UNKNOWN)
