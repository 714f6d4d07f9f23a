"""Weight clustering: 1-D k-means, its inits, sparsity preservation, and the digits model after it."""

from __future__ import annotations

import numpy as np
import pytest

from edgebench.compress.cluster import cluster_weights, kmeans_1d
from edgebench.compress.graph import Graph
from edgebench.compress.prune import prune_global
from edgebench.compress.recipe import CLUSTER_INITS
from tests.compress_models import MODEL, top1


@pytest.mark.parametrize("init", CLUSTER_INITS)
def test_kmeans_finds_separated_groups(init):
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(m, 0.01, 300) for m in (-1.0, 0.5, 2.0)])
    centroids, labels = kmeans_1d(values, 3, init, seed=0)
    np.testing.assert_allclose(centroids, [-1.0, 0.5, 2.0], atol=0.01)
    np.testing.assert_array_equal(np.bincount(labels), [300, 300, 300])


@pytest.mark.parametrize("init", CLUSTER_INITS)
def test_kmeans_is_seeded_and_reduces_error_versus_its_start(init):
    values = np.random.default_rng(2).standard_t(3, 5000)
    a = kmeans_1d(values, 8, init, seed=7)
    b = kmeans_1d(values, 8, init, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    error = np.mean((values - a[0][a[1]]) ** 2)
    linear = np.linspace(values.min(), values.max(), 8)
    start = np.mean((values - linear[np.abs(values[:, None] - linear).argmin(axis=1)]) ** 2)
    assert error <= start + 1e-12


def test_cluster_digits_keeps_accuracy_and_at_most_k_values(tmp_path):
    graph = Graph.load(MODEL)
    original = dict(graph.arrays)
    unique = cluster_weights(graph, 16)
    assert unique == {"/conv2/Conv": 16, "/conv3/Conv": 16, "/fc1/Gemm": 16}
    for name in ("conv2.weight", "conv3.weight", "fc1.weight"):
        assert np.unique(graph.arrays[name]).size <= 16
    np.testing.assert_array_equal(graph.arrays["conv1.weight"], original["conv1.weight"])
    assert top1(graph.save(tmp_path / "c.onnx")) >= 0.97


def test_clustering_preserves_sparsity_and_counts_zero_among_k():
    graph = Graph.load(MODEL)
    prune_global(graph, 0.8)
    zeros = {n: graph.arrays[n] == 0 for n in ("conv2.weight", "conv3.weight", "fc1.weight")}
    cluster_weights(graph, 16, "kmeans++")
    for name, mask in zeros.items():
        w = graph.arrays[name]
        np.testing.assert_array_equal(w == 0, mask)  # zeros stay zero, no non-zero becomes zero
        assert np.unique(w).size <= 16 and 0 in np.unique(w)
