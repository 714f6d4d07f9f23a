"""A recipe's weight steps (prune, cluster) on the float ONNX weights.

The float model after the weight steps is the format-independent product: every converter (ONNX,
OpenVINO, TFLite, TensorRT) starts from it and applies its own native precision step
(edgebench.artifacts caches it once per source and steps, for all formats).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.compress.cluster import cluster_weights
from edgebench.compress.graph import Graph, LayerSelection
from edgebench.compress.prune import prune_global, prune_per_layer
from edgebench.compress.prune_filters import prune_filters
from edgebench.compress.recipe import Recipe


def slug(recipe: Recipe) -> str:
    """A file-name-safe spelling of a recipe: ``prune:0.8+int8`` → ``prune-0.8_int8``."""
    return recipe.canonical.replace("kmeans++", "kmeanspp").replace(":", "-").replace("+", "_")


def apply_weight_steps(source: Path, recipe: Recipe, out: Path, selection: LayerSelection = LayerSelection(),
                       seed: int = 0) -> tuple[dict[str, Any], dict[str, int]]:
    """Prune and cluster ``source`` into ``out``; returns (per-step report, clustered layer → K)."""
    graph = Graph.load(source)
    report: dict[str, Any] = {}
    clustered: dict[str, int] = {}
    for step in recipe.weight_steps:
        if step.kind == "prune-filters":
            report[step.canonical()] = {k: {"filters": v[0], "kept": v[1]}
                                        for k, v in prune_filters(graph, float(step.value), selection).items()}
        elif step.kind == "prune":
            report[step.canonical()] = {"layer_sparsity": prune_global(graph, float(step.value), selection)}
        elif step.kind == "prune-layer":
            report[step.canonical()] = {"layer_sparsity": prune_per_layer(graph, float(step.value), selection)}
        elif step.kind == "cluster":
            unique = cluster_weights(graph, int(step.value), step.option or "density", selection, seed)
            report[step.canonical()] = {"unique_values": unique}
            clustered = {name: int(step.value) for name in unique}
    graph.save(out)
    return report, clustered
