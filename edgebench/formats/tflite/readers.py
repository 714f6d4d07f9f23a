"""A .tflite read back on the host through the LiteRT interpreter: its constant tensors, dequantized with
their (per-axis) scales and zero points and seen through DEQUANTIZE ops (fp16 weights), and the precision
its tensor table says it holds (see ``formats.precision``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from edgebench.formats.base import Weights
from edgebench.formats.precision import INT8, by_weights
from edgebench.formats.tflite.interpreter import interpreter
from edgebench.formats.tooling import quiet_stderr

TFLITE_LAYERS = {"CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "FULLY_CONNECTED": (1, 2),
                 "TRANSPOSE_CONV": (1, 3), "CONV_3D": (1, 2)}  # op → (weight input, bias input)
TFLITE_COUNTED = {**{op: (w,) for op, (w, _) in TFLITE_LAYERS.items()}, "BATCH_MATMUL": (1,), "GATHER": (0,),
                  "EMBEDDING_LOOKUP": (1,), "UNIDIRECTIONAL_SEQUENCE_LSTM": tuple(range(1, 9)),
                  "UNIDIRECTIONAL_SEQUENCE_RNN": (1, 2)}


def tflite_weights(path: Path) -> tuple[Weights, Weights]:
    interp = interpreter(path)
    with quiet_stderr():  # LiteRT announces its XNNPACK delegate on stderr
        interp.allocate_tensors()
    ops = interp._get_ops_details()  # the interpreter's only view of the op graph (stable since TF 2.4)
    details = {d["index"]: d for d in interp.get_tensor_details()}
    producer = {int(o): op for op in ops for o in op["outputs"]}

    def stored(index: int) -> int | None:
        """The constant tensor behind ``index``, seeing through DEQUANTIZE (fp16 weights); None: not constant."""
        op = producer.get(index)
        if op is None:
            return index
        return stored(int(op["inputs"][0])) if op["op_name"] == "DEQUANTIZE" else None

    def value(index: int) -> np.ndarray | None:
        d = details[index]
        arr = np.asarray(interp.get_tensor(index))
        q = d.get("quantization_parameters") or {}
        scales = np.asarray(q.get("scales", []), np.float64)
        if arr.dtype.kind in "iu" and scales.size:
            zeros = np.asarray(q.get("zero_points", np.zeros_like(scales)), np.float64)
            shape = [1] * arr.ndim
            if scales.size > 1:
                shape[int(q.get("quantized_dimension", 0))] = -1
            arr = (arr.astype(np.float64) - zeros.reshape(shape)) * scales.reshape(shape)
        return arr.astype(np.float32) if arr.dtype.kind == "f" or scales.size else None

    params: Weights = {}
    layers: Weights = {}
    for i, op in enumerate(ops):
        for position in TFLITE_COUNTED.get(op["op_name"], ()):
            if position >= len(op["inputs"]) or int(op["inputs"][position]) < 0:
                continue
            index = stored(int(op["inputs"][position]))
            weight = None if index is None else value(index)
            if weight is None:
                continue
            params[f"{details[index]['name']}#{index}"] = weight  # by index: each stored tensor once
            if op["op_name"] in TFLITE_LAYERS and position == TFLITE_LAYERS[op["op_name"]][0]:
                layers[details[int(op["outputs"][0])]["name"] or f"op{i}"] = weight
    return params, layers


def tflite_precision(path: Path) -> str:
    interp = interpreter(path)
    produced = {int(t) for op in interp._get_ops_details() for t in op["outputs"]}  # as tflite_weights does
    produced |= {int(d["index"]) for d in interp.get_input_details()}
    elements: Counter[str] = Counter()
    for d in interp.get_tensor_details():
        dtype = np.dtype(d["dtype"]).name
        if int(d["index"]) in produced:
            if dtype in INT8:  # quantized activations: a full-integer model
                return "int8"
        else:
            elements[dtype] += int(np.prod(d["shape"])) if len(d["shape"]) else 1
    return by_weights(elements, "int8-dynamic")
