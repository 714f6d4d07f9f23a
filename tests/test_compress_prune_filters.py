"""Structured filter pruning: a valid, smaller model of the same output shape, the right channels removed."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgebench.compress.graph import Graph, LayerSelection
from edgebench.compress.metrics import onnx_weights
from edgebench.compress.prune_filters import prune_filters
from edgebench.errors import EdgebenchError, ExitStatus
from tests.compress_models import MODEL, residual_model, run, top1


def test_filters_removed_model_valid_smaller_same_output(tmp_path):
    graph = Graph.load(MODEL)
    result = prune_filters(graph, 0.5)
    assert result == {"/conv2/Conv": (32, 16), "/conv3/Conv": (64, 32)}
    path = graph.save(tmp_path / "pf.onnx")
    onnx.checker.check_model(str(path), full_check=True)
    arrays = Graph.load(path).arrays
    assert arrays["conv2.weight"].shape == (16, 16, 3, 3) and arrays["conv2.bias"].shape == (16,)
    assert arrays["conv3.weight"].shape == (32, 16, 3, 3) and arrays["fc1.weight"].shape == (64, 512)
    before = sum(w.size for w in onnx_weights(MODEL)[0].values())
    after = sum(w.size for w in onnx_weights(path)[0].values())
    assert after < 0.5 * before
    assert run(path).shape == run(MODEL).shape == (450, 10)
    assert top1(path) > 0.5  # no fine-tuning: well above chance (0.1), measured 0.68 in the benchmark


def test_the_lowest_l1_filters_go_and_consumers_lose_the_matching_inputs(tmp_path):
    """Zero the half of conv2's and conv3's filters with the lowest L1 (and their biases): those channels
    carry nothing, so removing them — with conv3's inputs and fc1's flattened features — must leave the
    model's outputs unchanged. A wrong channel or feature index would change them."""
    graph = Graph.load(MODEL)
    for name, n_drop in (("conv2", 16), ("conv3", 32)):
        w = graph.arrays[f"{name}.weight"].copy()
        b = graph.arrays[f"{name}.bias"].copy()
        drop = np.argsort(np.abs(w).reshape(len(w), -1).sum(axis=1))[:n_drop]
        w[drop] = 0
        b[drop] = -1.0  # after Relu the channel is exactly zero
        graph.set(f"{name}.weight", w)
        graph.set(f"{name}.bias", b)
    zeroed = graph.save(tmp_path / "zeroed.onnx")
    prune_filters(graph, 0.5)
    pruned = graph.save(tmp_path / "pruned.onnx")
    np.testing.assert_allclose(run(pruned), run(zeroed), rtol=1e-5, atol=1e-5)


def test_graph_it_cannot_prune_is_refused_naming_the_node(tmp_path):
    path = residual_model(tmp_path / "res.onnx")
    with pytest.raises(EdgebenchError) as err:
        prune_filters(Graph.load(path), 0.5)
    message = str(err.value)
    assert "conv_b" in message and "Add node 'residual_add'" in message and "--exclude" in message
    assert err.value.status == ExitStatus.CONVERSION_FAILED
    # excluding the blocked Conv leaves one it can prune; a Conv feeding the graph output is refused
    pruned = prune_filters(Graph.load(path), 0.5, LayerSelection(exclude=("conv_b",)))
    assert pruned == {"conv_c": (4, 2)}
    with pytest.raises(EdgebenchError, match="conv_d.*graph output"):
        prune_filters(Graph.load(path), 0.5, LayerSelection(include=("conv_d",)))


def test_every_filter_removed_is_refused():
    with pytest.raises(EdgebenchError, match="every filter of /conv2/Conv"):
        prune_filters(Graph.load(MODEL), 0.99)
