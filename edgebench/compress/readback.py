"""Weights read back from a produced artifact, in any format, for cost metrics and preservation checks.

The metrics must describe the file a device loads, not the ONNX it came from: a converter may fold,
transpose or requantize weights, and a quantizer may undo pruning (a non-zero zero point) or un-share
clustered values (per-channel scales). Each reader returns the counted weights (the same set in every
format: weight layers' weights, embedding tables, recurrent matrices; not biases, which converters fold
differently) and the weight of every weight layer (Conv, MatMul/FullyConnected …), dequantized to float32
as the runtime computes with them:

- ONNX (and the QDQ ONNX a TensorRT engine is built from): initializers, DequantizeLinear applied;
- OpenVINO IR: the constant sub-graph feeding each layer's weight (int8 → Convert → Multiply …)
  evaluated by the OpenVINO CPU plugin itself, so every decompression pattern is covered;
- TFLite: constant tensors via the LiteRT interpreter, dequantized with their (per-axis) scales and
  zero points, seeing through DEQUANTIZE ops (fp16 weights).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Mapping

import numpy as np

from edgebench.compress.metrics import check_preserved, onnx_weights, weight_stats
from edgebench.errors import EdgebenchError, ExitStatus

Weights = dict[str, np.ndarray]
OV_LAYERS = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul")
# What else the parameter count covers (as ONNX's graph.COUNTED_INPUTS): embedding tables, recurrent matrices.
OV_COUNTED = {**{op: (1,) for op in OV_LAYERS}, "Gather": (0,), "LSTMSequence": (4, 5), "GRUSequence": (3, 4),
              "RNNSequence": (3, 4), "LSTMCell": (3, 4), "GRUCell": (2, 3), "RNNCell": (2, 3)}
TFLITE_LAYERS = {"CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "FULLY_CONNECTED": (1, 2),
                 "TRANSPOSE_CONV": (1, 3), "CONV_3D": (1, 2)}  # op → (weight input, bias input)
TFLITE_COUNTED = {**{op: (w,) for op, (w, _) in TFLITE_LAYERS.items()}, "BATCH_MATMUL": (1,), "GATHER": (0,),
                  "EMBEDDING_LOOKUP": (1,), "UNIDIRECTIONAL_SEQUENCE_LSTM": tuple(range(1, 9)),
                  "UNIDIRECTIONAL_SEQUENCE_RNN": (1, 2)}


def read_weights(fmt: str, main: Path) -> tuple[Weights, Weights]:
    """(every counted weight tensor, each weight layer's weight keyed by layer), dequantized float32. The
    counted tensors are the same in every format (see ``metrics.onnx_weights``): weight layers' weights,
    embedding tables and recurrent matrices, each once; not biases, normalization parameters or scales."""
    if fmt in ("onnx", "tensorrt"):
        return onnx_weights(main)
    if fmt == "openvino":
        return _openvino(main)
    if fmt == "tflite":
        return _tflite(main)
    raise ValueError(f"no weight reader for format {fmt!r}")


def _openvino(xml: Path) -> tuple[Weights, Weights]:
    import openvino as ov

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

def _ov_constant(value: object) -> bool:
    """True when no Parameter feeds ``value``: it is a (possibly decompressed) constant."""
    stack, seen = [value.get_node()], set()  # type: ignore[attr-defined]
    while stack:
        node = stack.pop()
        if node.get_type_name() == "Parameter":
            return False
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.input_value(i).get_node() for i in range(node.get_input_size()))
    return True


def _tflite(path: Path) -> tuple[Weights, Weights]:
    from edgebench.convert.tflite import _interpreter

    interp = _interpreter(path)
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


def costs(fmt: str, main: Path) -> dict[str, object]:
    """params, nonzero_params, sparsity and max_unique_values of the artifact's own weights."""
    params, _ = read_weights(fmt, main)
    stats = weight_stats(params)
    return {"params": stats.params, "nonzero_params": stats.nonzero_params, "sparsity": round(stats.sparsity, 6),
            "max_unique_values": stats.max_unique_values, "weights_from": f"{main.name} (dequantized)"}


def align(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, bool]]:
    """Pair each float layer with the artifact tensor holding it: same size, in graph order, turned by the
    axis permutation that best reproduces the float values (converters store OIHW as OHWI, Gemm weights
    transposed). The flag says the pairing is exact enough to compare positions; without it only counts
    (zeros, distinct values) are compared, which no reordering changes."""
    free = list(after.items())
    paired = {}
    for name, w in before.items():
        w = np.asarray(w, np.float32)
        idx = next((i for i, (_, a) in enumerate(free) if a.size == w.size), None)
        if idx is None:
            continue
        _, a = free.pop(idx)
        best, best_err = a.reshape(w.shape) if a.ndim != w.ndim else a, np.inf
        for perm in itertools.permutations(range(a.ndim)) if a.ndim <= 4 else [tuple(range(a.ndim))]:
            moved = np.transpose(a, perm)
            if moved.shape == w.shape and (err := float(np.mean(np.abs(moved - w)))) < best_err:
                best, best_err = moved, err
        close = best.shape == w.shape and best_err <= 0.05 * float(np.mean(np.abs(w)) or 1.0)
        paired[name] = (best, close)
    return paired


def verify(fmt: str, main: Path, before: Mapping[str, np.ndarray], clustered: Mapping[str, int]) -> str:
    """Check on the artifact that pruned weights are still zero and clustered layers hold ≤ K values;
    raise when not, else return what was checked (for meta.json)."""
    if not clustered and all(np.all(np.asarray(w) != 0) for w in before.values()):
        return "nothing to preserve: no weight is zero or clustered"
    _, after = read_weights(fmt, main)
    paired = align(before, after)
    if len(paired) < len(before):
        missing = [n for n in before if n not in paired]
        return f"not checked: layers {', '.join(missing[:3])} have no counterpart in {main.name}"
    exact = {n: a for n, (a, close) in paired.items() if close}
    problems = check_preserved({n: before[n] for n in exact}, exact, {n: k for n, k in clustered.items()})
    for name, (a, close) in paired.items():
        if not close and np.count_nonzero(a) > np.count_nonzero(before[name]):
            problems.append(f"{name}: {np.count_nonzero(a)} non-zero weights, {np.count_nonzero(before[name])} "
                            "before")
        if not close and name in clustered and np.unique(a).size > clustered[name]:
            problems.append(f"{name}: {np.unique(a).size} distinct values, clustered to {clustered[name]}")
    if problems:
        raise EdgebenchError(f"the {fmt} artifact lost the pruning/clustering it was built from ({problems[0]}"
                             f"{f'; {len(problems) - 1} more' if len(problems) > 1 else ''}): report this with "
                             "the recipe", ExitStatus.CONVERSION_FAILED)
    by_count = len(paired) - len(exact)
    return (f"checked on {main.name}: {len(paired)} layers, zeros kept" + (f", ≤K values in {len(clustered)}"
            if clustered else "") + (f" ({by_count} compared by counts)" if by_count else ""))
