"""Cost metrics of a compressed model, and checks that quantization preserved pruning and clustering.

The weight metrics work on a plain ``{name: ndarray}`` so every format can reuse them once its weights are
read; ``onnx_metrics`` reads an ONNX file, dequantizing QDQ weights so an int8 model is judged by the values
it computes with. ``params`` is one count in every format: the elements of the weight tensors (see
``onnx_weights``), float or quantized, not biases, scales or zero points. Sizes are the file's raw bytes
and its gzip bytes: a pruned or clustered model keeps its dense shape, and only a compressor (or a sparse
format) turns zeros and shared values into saved bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgebench.compress.graph import Graph
from edgebench.files import gzip_bytes, raw_bytes


@dataclass
class WeightStats:
    params: int
    nonzero_params: int
    sparsity: float
    max_unique_values: int  # the largest count of distinct values in any one tensor
    unique_values: dict[str, int] = field(default_factory=dict)
    layer_sparsity: dict[str, float] = field(default_factory=dict)


def weight_stats(weights: Mapping[str, np.ndarray]) -> WeightStats:
    """Parameter counts, sparsity and distinct values per tensor, over any format's weights."""
    params = sum(int(np.size(w)) for w in weights.values())
    nonzero = sum(int(np.count_nonzero(w)) for w in weights.values())
    unique = {name: int(np.unique(np.asarray(w)).size) for name, w in weights.items()}
    layer_sparsity = {name: float(1 - np.count_nonzero(w) / w.size) if np.size(w) else 0.0
                      for name, w in weights.items()}
    return WeightStats(params, nonzero, float(1 - nonzero / params) if params else 0.0,
                       max(unique.values(), default=0), unique, layer_sparsity)


def onnx_weights(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(the counted weight tensors by name, the weight of each weight layer by layer), both dequantized.

    Counted are the weights of Conv/Gemm/MatMul layers, embedding tables and recurrent matrices
    (``graph.COUNTED_INPUTS``), wherever they are stored: initializers, ``Constant`` nodes (lifted on
    load) and subgraphs. Biases, normalization parameters, quantization scales and zero points and shape
    constants are not: converters fold them differently (a BatchNormalization becomes a conv bias), and
    the count must be the same for one model in every format."""
    graph = Graph.load(path)
    params = {name: graph.float_tensor(name) for name in graph.counted_weights()}
    layers = {layer.node: graph.float_weight(layer) for layer in graph.weight_layers()}
    return params, layers


def onnx_metrics(path: str | Path, reference: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """size_bytes, gzip_bytes and weight stats of an ONNX file (with its external data, if any), plus
    compression ratios against ``reference`` (the fp32 model's metrics) when given."""
    path = Path(path)
    files = [path, *_external_files(path)]
    params, _ = onnx_weights(path)
    stats = weight_stats(params)
    metrics: dict[str, Any] = {"size_bytes": raw_bytes(files), "gzip_bytes": gzip_bytes(files),
                               **{k: v for k, v in asdict(stats).items() if k not in ("unique_values",
                                                                                      "layer_sparsity")}}
    if reference is not None:
        metrics.update(ratios(metrics, reference))
    return metrics


def ratios(metrics: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, float]:
    """How many times smaller than the reference: raw and gzip, and by Deep Compression's storage measure
    (``dc_ratio``, ``compress.storage``) when both sides have it."""
    out = {"size_ratio": reference["size_bytes"] / metrics["size_bytes"],
           "gzip_ratio": reference["gzip_bytes"] / metrics["gzip_bytes"]}
    if metrics.get("dc_bytes") and reference.get("dc_bytes"):
        out["dc_ratio"] = reference["dc_bytes"] / metrics["dc_bytes"]
    return out


def _external_files(path: Path) -> list[Path]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    names = {e.value for i in model.graph.initializer for e in i.external_data if e.key == "location"}
    return [path.parent / n for n in sorted(names)]


def check_preserved(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
                    clustered: Mapping[str, int] | None = None) -> list[str]:
    """What a later step undid: weights zero ``before`` but not ``after``, clustered layers with more than K
    distinct values. Both map layer → weight; returns one line per problem (empty: preserved)."""
    problems = []
    for name, w in before.items():
        if name not in after:
            continue
        revived = int(np.count_nonzero(np.asarray(after[name])[np.asarray(w) == 0]))
        if revived:
            problems.append(f"{name}: {revived} pruned weights are no longer zero")
    for name, k in (clustered or {}).items():
        if name in after and (n := np.unique(np.asarray(after[name])).size) > k:
            problems.append(f"{name}: {n} distinct values, clustered to {k}")
    return problems
