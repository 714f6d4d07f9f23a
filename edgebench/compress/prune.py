"""Unstructured magnitude pruning of ONNX weights: zero the smallest weights, globally or per layer.

Global pruning ranks every selected weight against one threshold, so layers with many redundant weights
lose more (the usual choice, Han et al. 2015); per-layer pruning removes the same fraction from each layer,
which is gentler on small layers. Biases are never pruned. The model keeps its shapes: the saving shows in
the zipped size and in formats that store sparse weights, not in dense latency (see prune_filters).
"""

from __future__ import annotations

import numpy as np

from edgebench.compress.graph import Graph, LayerSelection, WeightLayer, select_layers
from edgebench.errors import EdgebenchError, ExitStatus


def _smallest_mask(magnitudes: np.ndarray, count: int) -> np.ndarray:
    """Exactly ``count`` smallest entries (ties broken by position), so the sparsity asked is the one made."""
    mask = np.zeros(magnitudes.size, dtype=bool)
    if count > 0:
        mask[np.argpartition(magnitudes.ravel(), count - 1)[:count]] = True
    return mask.reshape(magnitudes.shape)


def _apply(graph: Graph, layer: WeightLayer, mask: np.ndarray) -> float:
    """Zero the masked weights, refusing to empty a layer; returns the layer's sparsity."""
    w = graph.arrays[layer.weight]
    mask = mask.reshape(w.shape) | (w == 0)
    if mask.all():
        raise EdgebenchError(f"pruning would zero every weight of layer {layer.node} ({layer.weight}): lower the "
                             "sparsity, use prune-layer:S, or --exclude this layer", ExitStatus.CONVERSION_FAILED)
    graph.set(layer.weight, np.where(mask, np.zeros_like(w), w))
    return float(mask.mean())


def prune_global(graph: Graph, sparsity: float, selection: LayerSelection = LayerSelection()) -> dict[str, float]:
    """One magnitude threshold over all selected layers; returns each layer's resulting sparsity."""
    layers = select_layers(graph, selection, f"prune:{sparsity:g}")
    mags = np.concatenate([np.abs(graph.arrays[layer.weight]).ravel() for layer in layers])
    mask = _smallest_mask(mags, int(round(sparsity * mags.size)))
    result, offset = {}, 0
    for layer in layers:
        size = graph.arrays[layer.weight].size
        result[layer.node] = _apply(graph, layer, mask[offset:offset + size])
        offset += size
    return result


def prune_per_layer(graph: Graph, sparsity: float,
                    selection: LayerSelection = LayerSelection()) -> dict[str, float]:
    """The same fraction of each selected layer's smallest weights."""
    result = {}
    for layer in select_layers(graph, selection, f"prune-layer:{sparsity:g}"):
        w = graph.arrays[layer.weight]
        result[layer.node] = _apply(graph, layer, _smallest_mask(np.abs(w), int(round(sparsity * w.size))))
    return result
