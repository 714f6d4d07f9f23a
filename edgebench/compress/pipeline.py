"""Apply a recipe to an ONNX model: weight steps (prune, cluster) on float weights, then ONNX quantization.

The float model after the weight steps is written as its own file because it is the format-independent
product: every converter (OpenVINO, TFLite, TensorRT) starts from it and applies its own native
quantization. Every file is written to a temp name and renamed, and a failure removes what this call
already wrote, so an error never leaves a partial or half-compressed artifact for a cache to pick up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.compress import metrics
from edgebench.compress.cluster import cluster_weights
from edgebench.compress.graph import Graph, LayerSelection
from edgebench.compress.prune import prune_global, prune_per_layer
from edgebench.compress.prune_filters import prune_filters
from edgebench.compress.quantize_onnx import (calibration_batches, convert_fp16, quantize_dynamic_int8,
                                              quantize_int8, require_calibration)
from edgebench.compress.recipe import Recipe, parse_recipe
from edgebench.source import load_onnx_info


@dataclass
class Compressed:
    recipe: Recipe
    source: Path
    float_path: Path  # the model after pruning/clustering (the source itself when the recipe has none)
    path: Path  # the final ONNX artifact
    metrics: dict[str, Any]  # of ``path``, with ratios against the source
    reference: dict[str, Any]  # of the source (fp32)
    steps: dict[str, Any] = field(default_factory=dict)  # what each weight step did, per layer
    clustered: dict[str, int] = field(default_factory=dict)  # layer → K, checked on the artifact


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


def _quantize(float_path: Path, recipe: Recipe, out: Path, calibration: Path | None, clustered: bool) -> Path:
    step = recipe.find(recipe.precision)
    if recipe.precision == "int8":
        return quantize_int8(float_path, out, calibration, step.option if step else "minmax",
                             per_channel=not clustered)
    if recipe.precision == "int8-dynamic":
        return quantize_dynamic_int8(float_path, out)
    return convert_fp16(float_path, out)


def _layer_pairs(before: Path, after: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each weight layer of the float model paired with the same layer of the artifact: by position when
    both have the same layers (quantizers rename nodes), else by node name; transposed 2-D weights
    (dynamic quantization stores Gemm weights transposed) are turned back."""
    _, old = metrics.onnx_weights(before)
    _, new = metrics.onnx_weights(after)
    if len(old) != len(new):
        return old, new
    paired = {}
    for (name, w), v in zip(old.items(), new.values()):
        paired[name] = v.T if v.ndim == 2 and v.shape != w.shape and v.T.shape == w.shape else v
    return old, paired


def compress_onnx(source: str | Path, recipe: str | list[Any] | Recipe, out_dir: str | Path,
                  calibration: str | Path | None = None, selection: LayerSelection = LayerSelection(),
                  seed: int = 0) -> Compressed:
    """Run ``recipe`` on an ONNX model into ``out_dir`` and measure the result against the source."""
    recipe = parse_recipe(recipe)
    info = load_onnx_info(source)
    source, out_dir = info.path, Path(out_dir)
    if recipe.precision == "int8":
        next(calibration_batches(source, require_calibration(calibration)))  # refuse a misfit set early
    written: list[Path] = []
    try:
        float_path, report, clustered = source, {}, {}
        if recipe.weight_steps:
            weights_only = Recipe(recipe.weight_steps)
            float_path = out_dir / f"{source.stem}.{slug(weights_only)}.onnx"
            written.append(float_path)
            report, clustered = apply_weight_steps(source, recipe, float_path, selection, seed)
        path = float_path
        if recipe.precision != "fp32":
            path = out_dir / f"{source.stem}.{slug(recipe)}.onnx"
            written.append(path)
            _quantize(float_path, recipe, path, Path(calibration) if calibration else None, bool(clustered))
            if recipe.weight_steps:
                before, after = _layer_pairs(float_path, path)
                metrics.require_preserved(metrics.check_preserved(before, after, clustered), path)
        reference = metrics.onnx_metrics(source)
        return Compressed(recipe, source, float_path, path, metrics.onnx_metrics(path, reference), reference,
                          report, clustered)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
