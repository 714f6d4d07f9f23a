"""Compression a model arrives with, made in its own framework (tfmot's ``strip_pruning`` and clustering,
``torch.nn.utils.prune``): found in the source's weights, so that the artifact cache keeps it (one scale per
tensor for clustered layers, as after edgebench's own clustering) and checks it on every produced file as
it checks its own prune and cluster steps.

Only the weights tell: a stripped tfmot or torch model is a plain float model. A trained float layer has
next to no exact zeros and as many distinct values as weights, so a layer with at least ``PRUNED_SHARE``
zeros was pruned and a float layer with at most ``CLUSTER_MAX`` distinct values, and no more than a quarter
of its size, was clustered. Integer weights behind a DequantizeLinear hold ≤ 256 values by construction and
are not taken for clustered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgebench.compress.graph import Graph

PRUNED_SHARE = 0.2
CLUSTER_MAX = 256
MIN_SIZE = 64  # a smaller layer's distinct values say nothing
SLICE = 4096


@dataclass(frozen=True)
class Prior:
    """What the source's weight layers hold: the pruned layers' zero shares, the clustered ones' values."""

    pruned: dict[str, float] = field(default_factory=dict)  # layer → share of zeros
    clustered: dict[str, int] = field(default_factory=dict)  # layer → distinct values

    def __bool__(self) -> bool:
        return bool(self.pruned or self.clustered)

    def describe(self) -> str:
        parts = []
        if self.pruned:
            shares = sorted(self.pruned.values())
            parts.append(f"{len(self.pruned)} layers pruned ({shares[0]:.0%}–{shares[-1]:.0%} zeros)")
        if self.clustered:
            parts.append(f"{len(self.clustered)} layers clustered (≤{max(self.clustered.values())} values)")
        return ", ".join(parts) or "none"


def prior_compression(path: str | Path) -> Prior:
    """The pruning and clustering the ONNX model at ``path`` holds in its weight layers."""
    graph = Graph.load(path)
    pruned, clustered = {}, {}
    for layer in graph.weight_layers():
        w = graph.float_weight(layer)
        if w.size < MIN_SIZE:
            continue
        zeros = 1 - np.count_nonzero(w) / w.size
        if zeros >= PRUNED_SHARE:
            pruned[layer.node] = round(float(zeros), 4)
        # a first look at a slice spares sorting a large float layer
        if graph.arrays[layer.weight].dtype.kind == "f" and np.unique(w.ravel()[:SLICE]).size <= CLUSTER_MAX:
            distinct = int(np.unique(w).size)
            if distinct <= min(CLUSTER_MAX, w.size // 4):
                clustered[layer.node] = distinct
    return Prior(pruned, clustered)
