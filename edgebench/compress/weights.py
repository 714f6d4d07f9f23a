"""A recipe's weight steps (prune, cluster) on the float ONNX weights, and what they achieved.

The float model after the weight steps is the format-independent product: every converter (ONNX,
OpenVINO, TFLite, TensorRT) starts from it and applies its own native precision step
(edgebench.artifacts.cache caches it once per source and steps, for all formats).

Each step's report (meta.json ``weights.steps``) says what was asked and what the whole model got:
``sparsity_requested`` vs ``sparsity`` (zeros over every weight layer's weights, the ones left alone
included), ``clusters_requested`` vs ``max_unique_values``, the share of weights the step touched, and a
``warning`` when the model got materially less than the recipe asked (layers left alone holding many
weights). Commands print those warnings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgebench.compress.cluster import cluster_weights
from edgebench.compress.graph import Graph, LayerSelection, WeightLayer
from edgebench.compress.prune import prune_global, prune_per_layer
from edgebench.compress.prune_filters import prune_filters
from edgebench.compress.recipe import Recipe, Step

TOLERANCE = 0.02  # achieved vs asked, in share of all weights, before a step's report carries a warning


def slug(recipe: Recipe) -> str:
    """A file-name-safe spelling of a recipe: ``prune:0.8+int8`` → ``prune-0.8_int8``."""
    return recipe.canonical.replace("kmeans++", "kmeanspp").replace(":", "-").replace("+", "_")


def _float_layers(graph: Graph, convs: bool = False) -> list[WeightLayer]:
    return [layer for layer in graph.weight_layers() if graph.arrays[layer.weight].dtype.kind == "f"
            and (not convs or (layer.op == "Conv" and layer.main))]


def _left_alone(layers: list[WeightLayer], touched: Mapping[str, Any], sizes: Mapping[str, int]) -> dict[str, Any]:
    """Which layers the step did not touch and the share of the weights they hold."""
    total = sum(sizes.values()) or 1
    alone = [layer.node for layer in layers if layer.node not in touched]
    return {"layers_touched": len(layers) - len(alone), "layers": len(layers), "left_alone": alone,
            "weights_touched": round(1 - sum(sizes[n] for n in alone) / total, 6)}


def _why(alone: dict[str, Any], selection: LayerSelection) -> str:
    names = ", ".join(alone["left_alone"][:3]) + (", …" if len(alone["left_alone"]) > 3 else "")
    fix = ("pass --all-layers to include the first and last layers" if selection == LayerSelection()
           else f"widen or drop {selection.describe()}")
    return (f"the layers left alone ({names}: {len(alone['left_alone'])} of {alone['layers']}) hold "
            f"{1 - alone['weights_touched']:.0%} of the weights: {fix} (or a per-model `layers:` in a sweep spec)")


def _sizes(graph: Graph, layers: list[WeightLayer]) -> dict[str, int]:
    return {layer.node: int(graph.arrays[layer.weight].size) for layer in layers}


def prune_report(graph: Graph, step: Step, touched: dict[str, float], selection: LayerSelection) -> dict[str, Any]:
    layers = _float_layers(graph)
    sizes = _sizes(graph, layers)
    zeros = sum(int(np.count_nonzero(graph.arrays[layer.weight] == 0)) for layer in layers)
    achieved = zeros / (sum(sizes.values()) or 1)
    alone = _left_alone(layers, touched, sizes)
    report: dict[str, Any] = {"sparsity_requested": step.sparsity, "sparsity": round(achieved, 6), **alone,
                              "layer_sparsity": touched}
    if abs(achieved - step.sparsity) > TOLERANCE:
        report["warning"] = (f"{step.canonical()} left {achieved:.1%} of all weights at zero, not "
                             f"{step.sparsity * 100:g}%" + (f": {_why(alone, selection)}" if alone["left_alone"]
                                                           else ""))
    return report


def cluster_report(graph: Graph, step: Step, touched: dict[str, int], selection: LayerSelection) -> dict[str, Any]:
    layers = _float_layers(graph)
    sizes = _sizes(graph, layers)
    unique = max((int(np.unique(graph.arrays[layer.weight]).size) for layer in layers), default=0)
    alone = _left_alone(layers, touched, sizes)
    report: dict[str, Any] = {"clusters_requested": step.clusters, "max_unique_values": unique, **alone,
                              "unique_values": touched}
    if 1 - alone["weights_touched"] > TOLERANCE:
        report["warning"] = (f"{step.canonical()} shared {alone['weights_touched']:.0%} of the weights among ≤ "
                             f"{step.value} values; layers keep up to {unique} distinct values: "
                             f"{_why(alone, selection)}")
    return report


def filters_report(convs: list[WeightLayer], sizes: dict[str, int], step: Step, touched: dict[str, tuple[int, int]],
                    selection: LayerSelection) -> dict[str, Any]:
    """Filters removed over every Conv; the warning when the Convs left alone held much of their weights
    (before the step: removing filters also shrinks the next layer)."""
    alone = _left_alone(convs, touched, sizes)
    report: dict[str, Any] = {"filters_requested": step.sparsity, **alone,
                              "filters": {k: {"filters": v[0], "kept": v[1]} for k, v in touched.items()}}
    if 1 - alone["weights_touched"] > TOLERANCE:
        report["warning"] = (f"{step.canonical()} removed filters from Convs holding {alone['weights_touched']:.0%} "
                             f"of the Conv weights: {_why(alone, selection)}")
    return report


def apply_weight_steps(source: Path, recipe: Recipe, out: Path, selection: LayerSelection = LayerSelection(),
                       seed: int = 0) -> tuple[dict[str, Any], dict[str, int]]:
    """Prune and cluster ``source`` into ``out``; returns (per-step report, clustered layer → K). Weights
    held in Constant nodes are lifted into initializers on the way (``Graph.load``)."""
    graph = Graph.load(source)
    report: dict[str, Any] = {}
    clustered: dict[str, int] = {}
    for step in recipe.weight_steps:
        if step.kind == "prune-filters":
            convs = _float_layers(graph, convs=True)
            sizes = _sizes(graph, convs)
            report[step.canonical()] = filters_report(convs, sizes, step,
                                                       prune_filters(graph, step.sparsity, selection), selection)
        elif step.kind in ("prune", "prune-layer"):
            prune = prune_global if step.kind == "prune" else prune_per_layer
            report[step.canonical()] = prune_report(graph, step, prune(graph, step.sparsity, selection),
                                                     selection)
        elif step.kind == "cluster":
            unique = cluster_weights(graph, step.clusters, step.option or "density", selection, seed)
            report[step.canonical()] = cluster_report(graph, step, unique, selection)
            clustered = {name: step.clusters for name in unique}
    graph.save(out)
    return report, clustered


def weight_warnings(steps: Mapping[str, Any]) -> list[str]:
    """The warnings of an artifact's weight steps (their reports, meta.json's ``weights.steps``), one line each."""
    return [entry["warning"] for entry in steps.values() if isinstance(entry, dict) and entry.get("warning")]


def requested(steps: Mapping[str, Any]) -> dict[str, Any]:
    """What an artifact's weight steps (their reports) asked for (``sparsity_requested``, ``clusters_requested``)
    and their ``warnings``, for results to show beside the achieved ``sparsity`` and ``max_unique_values``."""
    found: dict[str, Any] = {}
    for entry in steps.values():
        for key in ("sparsity_requested", "clusters_requested"):
            if isinstance(entry, dict) and key in entry:
                found[key] = entry[key]
    warnings = weight_warnings(steps)
    return {**found, **({"warnings": warnings} if warnings else {})}
