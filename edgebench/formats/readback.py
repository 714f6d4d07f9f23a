"""Weights read back from a produced artifact, in any format, for cost metrics and preservation checks.

The metrics must describe the file a device loads, not the ONNX it came from: a converter may fold,
transpose or requantize weights, and a quantizer may undo pruning (a non-zero zero point) or un-share
clustered values (per-channel scales). Each reader returns the counted weights (the same set in every
format: weight layers' weights, embedding tables, recurrent matrices; not biases, which converters fold
differently) and the weight of every weight layer (Conv, MatMul/FullyConnected …), dequantized to float32
as the runtime computes with them:

Each format reads its own files (``Format.read_weights``):

- ONNX (and the QDQ ONNX a TensorRT engine is built from): initializers, DequantizeLinear applied;
- OpenVINO IR: the constant sub-graph feeding each layer's weight (int8 → Convert → Multiply …)
  evaluated by the OpenVINO CPU plugin itself, so every decompression pattern is covered;
- TFLite: constant tensors via the LiteRT interpreter, dequantized with their (per-axis) scales and
  zero points, seeing through DEQUANTIZE ops (fp16 weights).
"""

from __future__ import annotations

import itertools
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgebench.compress.metrics import check_preserved, weight_stats
from edgebench.compress.storage import StorageReport, deep_compression_bytes, precision_bits
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import raw_bytes
from edgebench.formats.base import Weights
from edgebench.formats.registry import get


def read_weights(fmt: str, main: Path) -> tuple[Weights, Weights]:
    """(every counted weight tensor, each weight layer's weight keyed by layer), dequantized float32. The
    counted tensors are the same in every format (see ``metrics.onnx_weights``): weight layers' weights,
    embedding tables and recurrent matrices, each once; not biases, normalization parameters or scales."""
    return get(fmt).read_weights(main)


def costs(fmt: str, main: Path) -> dict[str, Any]:
    """params, nonzero_params, sparsity and max_unique_values of the artifact's own weights, and ``dc_bytes``:
    Deep Compression's storage of them (``compress.storage``, values at the width the file's precision stores)
    plus the rest of the files (biases, scales, graph) at their size."""
    params, _ = read_weights(fmt, main)
    stats = weight_stats(params)
    return {"params": stats.params, "nonzero_params": stats.nonzero_params, "sparsity": round(stats.sparsity, 6),
            "max_unique_values": stats.max_unique_values, "weights_from": f"{main.name} (dequantized)",
            "dc_bytes": dc_storage(fmt, main, params).total_bytes}


def dc_storage(fmt: str, main: Path, params: Weights) -> StorageReport:
    """Deep Compression's storage of an artifact: its counted weights at the width its precision stores
    them, everything else in its files at its size (the file bytes the dense weights do not take)."""
    precision = get(fmt).read_precision(main)
    if precision is None and main.suffix.lower() == ".onnx":  # the ONNX a TensorRT engine is built from
        precision = get("onnx").read_precision(main)
    width = precision_bits(precision)
    stored = sum(int(np.size(w)) for w in params.values()) * width // 8
    return deep_compression_bytes(params, width, max(0, raw_bytes(get(fmt).artifact_files(main)) - stored))


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


class Preservation(str, Enum):
    """What the preservation check found (meta.json's ``preservation``; its ``preservation_note`` says more)."""

    NOTHING = "nothing_to_preserve"  # no prune/cluster step, or no weight is zero or clustered
    CHECKED = "checked"  # zeros kept and clustered layers hold ≤ K values, on the produced file
    NOT_CHECKED = "not_checked"  # layers without a counterpart in the produced file


def verify(fmt: str, main: Path, before: Mapping[str, np.ndarray],
           clustered: Mapping[str, int]) -> tuple[Preservation, str]:
    """Check on the artifact that pruned weights are still zero and clustered layers hold ≤ K values;
    raise when not, else return the outcome and what was checked (for meta.json)."""
    if not clustered and all(np.all(np.asarray(w) != 0) for w in before.values()):
        return Preservation.NOTHING, "nothing to preserve: no weight is zero or clustered"
    _, after = read_weights(fmt, main)
    paired = align(before, after)
    if len(paired) < len(before):
        missing = [n for n in before if n not in paired]
        return Preservation.NOT_CHECKED, f"not checked: layers {', '.join(missing[:3])} have no counterpart in {main.name}"
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
    return Preservation.CHECKED, (f"checked on {main.name}: {len(paired)} layers, zeros kept" + (f", ≤K values in {len(clustered)}"
            if clustered else "") + (f" ({by_count} compared by counts)" if by_count else ""))
