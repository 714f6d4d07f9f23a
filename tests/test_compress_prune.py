"""Magnitude pruning (global and per layer) on real ONNX weights, and its layer selection."""

from __future__ import annotations

import numpy as np
import pytest

from edgebench.compress.graph import Graph, LayerSelection
from edgebench.compress.prune import prune_global, prune_per_layer
from edgebench.errors import EdgebenchError, ExitStatus
from tests.compress_models import MODEL, tiny_layer_model, top1

MIDDLE = ("conv2.weight", "conv3.weight", "fc1.weight")


def test_global_prune_hits_the_asked_sparsity_over_the_selected_layers():
    graph = Graph.load(MODEL)
    original = dict(graph.arrays)
    per_layer = prune_global(graph, 0.5)
    assert set(per_layer) == {"/conv2/Conv", "/conv3/Conv", "/fc1/Gemm"}  # first and last left alone
    pruned = np.concatenate([graph.arrays[n].ravel() for n in MIDDLE])
    assert np.mean(pruned == 0) == pytest.approx(0.5, abs=1e-4)
    # one threshold: every surviving weight is at least as large as every pruned one
    before = np.concatenate([np.abs(original[n]).ravel() for n in MIDDLE])
    assert before[pruned != 0].min() >= before[pruned == 0].max()
    for name in ("conv1.weight", "fc2.weight", "conv2.bias", "fc1.bias"):
        np.testing.assert_array_equal(graph.arrays[name], original[name])
    assert len(set(round(s, 3) for s in per_layer.values())) > 1  # global: layers lose different fractions


def test_per_layer_prune_takes_the_same_fraction_from_each_layer():
    graph = Graph.load(MODEL)
    per_layer = prune_per_layer(graph, 0.5)
    for name in MIDDLE:
        assert np.mean(graph.arrays[name] == 0) == pytest.approx(0.5, abs=1e-3)
    assert all(s == pytest.approx(0.5, abs=1e-3) for s in per_layer.values())


def test_include_exclude_and_all_layers(tmp_path):
    graph = Graph.load(MODEL)
    assert set(prune_per_layer(graph, 0.5, LayerSelection(exclude=("fc1*",)))) == {"/conv2/Conv", "/conv3/Conv"}
    graph = Graph.load(MODEL)
    assert set(prune_per_layer(graph, 0.5, LayerSelection(include=("/conv*",)))) == \
        {"/conv1/Conv", "/conv2/Conv", "/conv3/Conv"}  # naming the first layer includes it
    graph = Graph.load(MODEL)
    assert len(prune_per_layer(graph, 0.5, LayerSelection(first_last=True))) == 5
    with pytest.raises(EdgebenchError, match=r"--include 'nothing\*' leaves none of the model's 5"):
        prune_global(Graph.load(MODEL), 0.5, LayerSelection(include=("nothing*",)))


def test_pruned_model_still_classifies(tmp_path):
    graph = Graph.load(MODEL)
    prune_global(graph, 0.5)
    assert top1(graph.save(tmp_path / "p.onnx")) >= 0.97


def test_a_recipe_that_empties_a_layer_is_refused(tmp_path):
    graph = Graph.load(tiny_layer_model(tmp_path / "tiny.onnx"))
    with pytest.raises(EdgebenchError) as err:
        prune_global(graph, 0.5)
    assert "every weight of layer mm1" in str(err.value) and "prune-layer" in str(err.value)
    assert err.value.status == ExitStatus.CONVERSION_FAILED
    graph = Graph.load(tmp_path / "tiny.onnx")
    prune_per_layer(graph, 0.5)  # per layer the small one keeps half
    assert np.mean(graph.arrays["w1"] == 0) == pytest.approx(0.5)
