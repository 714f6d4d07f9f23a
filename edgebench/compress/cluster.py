"""Weight clustering (weight sharing): each layer's weights replaced by the nearest of K shared values.

Per-layer 1-D k-means (Han et al. 2016; TF Model Optimization's ``cluster_weights``), seeded so a recipe
always produces the same file. Clustering is sparsity-preserving: zero weights stay exactly zero and zero
counts as one of the K values, so the K-1 other centroids are fitted to the non-zero weights only and a
clustered layer holds at most K distinct values, zero included — an index of log2(K) bits per weight.

Inits (as in TFMOT): ``density`` (default) spaces centroids evenly in the weights' CDF, so dense regions get
more of them; ``linear`` spaces them evenly between min and max, keeping large outliers; ``kmeans++``
picks spread-out weights at random; ``random`` draws uniformly between min and max.
"""

from __future__ import annotations

import numpy as np

from edgebench.compress.graph import Graph, LayerSelection, select_layers
from edgebench.errors import EdgebenchError, ExitStatus

MAX_ITERATIONS = 100
SAMPLE_FOR_INIT = 100_000  # kmeans++ on a sample: its cost is K passes over the data


def _init(values: np.ndarray, k: int, method: str, rng: np.random.Generator) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if method == "linear":
        return np.linspace(lo, hi, k)
    if method == "density":
        return np.quantile(values, (np.arange(k) + 0.5) / k)
    if method == "random":
        return rng.uniform(lo, hi, size=k)
    sample = values if values.size <= SAMPLE_FOR_INIT else rng.choice(values, SAMPLE_FOR_INIT, replace=False)
    centroids = [float(rng.choice(sample))]
    for _ in range(1, k):
        d2 = np.min((sample[:, None] - np.asarray(centroids)[None, :]) ** 2, axis=1)
        total = d2.sum()
        centroids.append(float(rng.choice(sample, p=d2 / total)) if total > 0 else float(rng.choice(sample)))
    return np.asarray(centroids)


def _assign(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid in 1-D via the midpoints of sorted centroids: O(n log k), no n×k matrix."""
    return np.searchsorted((centroids[1:] + centroids[:-1]) / 2, values)


def kmeans_1d(values: np.ndarray, k: int, init: str = "density", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars; returns (sorted centroids, label per value). Empty clusters keep their place."""
    values = np.asarray(values, dtype=np.float64).ravel()
    rng = np.random.default_rng(seed)
    centroids = np.sort(_init(values, k, init, rng))
    labels = _assign(values, centroids)
    for _ in range(MAX_ITERATIONS):
        sums = np.bincount(labels, weights=values, minlength=k)
        counts = np.bincount(labels, minlength=k)
        updated = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        updated = np.sort(updated)
        converged = np.allclose(updated, centroids, rtol=0, atol=1e-12)
        centroids, labels = updated, _assign(values, updated)
        if converged:
            break
    return centroids, labels


def cluster_weights(graph: Graph, k: int, init: str = "density", selection: LayerSelection = LayerSelection(),
                    seed: int = 0) -> dict[str, int]:
    """Cluster every selected layer's weights; returns each layer's number of distinct values afterwards."""
    layers = select_layers(graph, selection, f"cluster:{k}")
    # distinct non-zero values of each layer, and how many shared values clustering gives it (zero is one of
    # the K values of a sparse layer)
    distinct = {layer.node: int(np.unique(graph.arrays[layer.weight][graph.arrays[layer.weight] != 0]).size)
                for layer in layers}
    shared = {layer.node: k - 1 if not (graph.arrays[layer.weight] != 0).all() else k for layer in layers}
    if all(distinct[n] <= shared[n] for n in distinct):
        most = max(distinct, key=lambda n: distinct[n])
        raise EdgebenchError(f"cluster:{k} would change nothing: every layer it touches holds at most {k} distinct "
                             f"values already (the most: {distinct[most]} in {most!r}); pick K well below that (e.g. "
                             "cluster:16)", ExitStatus.USAGE)
    result = {}
    for layer in layers:
        w = graph.arrays[layer.weight]
        nonzero = w != 0
        if distinct[layer.node] > shared[layer.node]:
            centroids, labels = kmeans_1d(w[nonzero], shared[layer.node], init, seed)
            clustered = np.zeros_like(w)
            clustered[nonzero] = centroids[labels].astype(w.dtype)
            graph.set(layer.weight, clustered)
        result[layer.node] = int(np.unique(graph.arrays[layer.weight]).size)
    return result
