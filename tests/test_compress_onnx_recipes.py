"""Each recipe on the digits model in the ONNX format through the artifact cache, checked on the
produced files and by top-1."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper
import pytest

from edgebench.artifacts import cache as artifacts
from edgebench.compress.graph import Graph
from edgebench.compress.metrics import onnx_weights
from edgebench.errors import EdgebenchError, ExitStatus
from tests.compress_models import CALIB, MODEL, tiny_layer_model, top1

FP32 = MODEL.stat().st_size
WEIGHTS = 89360  # conv 16·1·9 + 32·16·9 + 64·32·9, fc 64·1024 + 10·64: what params counts (not the 186 biases)
# recipe → (lowest top-1 we accept, most bytes as a fraction of fp32, least overall sparsity)
RECIPES = {
    "fp16": (0.95, 0.55, 0.0),
    "int8": (0.95, 0.30, 0.0),
    "int8:percentile": (0.95, 0.30, 0.0),
    "int8:entropy": (0.95, 0.30, 0.0),
    "int8-dynamic": (0.95, 0.50, 0.0),
    "prune:0.5": (0.97, 1.0, 0.45),
    "prune-layer:0.5": (0.95, 1.0, 0.45),
    "prune-filters:0.5": (0.5, 0.50, 0.0),  # no fine-tuning after removing half the filters
    "cluster:16": (0.97, 1.0, 0.0),
    "prune:0.8+cluster:16+int8": (0.80, 0.30, 0.75),
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def results(cache):
    return {r: artifacts.ensure(MODEL, "onnx", recipe=r, calibration=CALIB, root=cache) for r in RECIPES}


def payload_bytes(path) -> int:
    return sum(numpy_helper.to_array(t).nbytes for t in onnx.load(str(path)).graph.initializer)


def test_fp32_payload_is_what_the_layers_hold():
    # by hand: conv 16·1·9 + 32·16·9 + 64·32·9, fc 64·1024 + 10·64, biases 16+32+64+64+10 = 89 546 floats
    assert payload_bytes(MODEL) == 4 * 89546 == 358184


def _entries(root):
    return [p for p in root.rglob("meta.json")] if root.exists() else []


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_recipe_on_onnx(results, recipe):
    floor, max_size, min_sparsity = RECIPES[recipe]
    c = results[recipe]
    path, meta = c.main, c.meta
    onnx.checker.check_model(str(path))
    assert meta.size_bytes == path.stat().st_size <= max_size * FP32
    # the ratio of the two files' bytes as read from disk, not from either meta.json
    assert meta.size_ratio == pytest.approx(len(MODEL.read_bytes()) / len(path.read_bytes()), rel=1e-12)
    # and what the tensors predict: fp32 payload over this file's payload (numpy nbytes of every initializer).
    # The graph is the rest: 1.7 KB in the fp32 file, more where quantization adds nodes (int8's QDQ pairs
    # and their names: ~7 KB, 7.5% of the ratio), so it pulls the ratio under the payload's, hardly above.
    predicted = payload_bytes(MODEL) / payload_bytes(path)
    assert 0.9 * predicted <= meta.size_ratio <= 1.01 * predicted, (meta.size_ratio, predicted)
    assert meta.sparsity >= min_sparsity
    if recipe != "prune-filters:0.5":  # the same weights, however they are stored (biases are not counted)
        assert meta.params == WEIGHTS
    assert top1(path) >= floor


def test_prune_cluster_int8_preserves_zeros_and_shared_values(results, cache):
    c = results["prune:0.8+cluster:16+int8"]
    float_path = next(p.parent / "model.onnx" for p in (cache / "weights").rglob("meta.json")
                      if "cluster:16" in p.read_text() and "prune:0.8" in p.read_text())
    _, float_layers = onnx_weights(float_path)
    _, int8_layers = onnx_weights(c.main)
    for layer in ("/conv2/Conv", "/conv3/Conv", "/fc1/Gemm"):
        assert c.meta.weights.clustered[layer] == 16
        assert np.unique(int8_layers[layer]).size <= 16
        zeros = float_layers[layer] == 0
        assert zeros.mean() > 0.3 and not np.any(int8_layers[layer][zeros])
    assert c.meta.gzip_ratio > 10  # zeros and 16 shared int8 values compress far better than fp32


def test_cluster_step_stores_at_most_k_values(results):
    _, layers = onnx_weights(results["cluster:16"].main)
    assert [np.unique(layers[n]).size for n in ("/conv2/Conv", "/conv3/Conv", "/fc1/Gemm")] == [16, 16, 16]
    assert results["cluster:16"].meta.gzip_ratio > 3


def test_filter_pruning_shrinks_parameters(results):
    c = results["prune-filters:0.5"]
    assert c.meta.params < 0.5 * WEIGHTS
    assert Graph.load(c.main).arrays["fc1.weight"].shape == (64, 512)


def test_errors_leave_no_files(tmp_path):
    root = tmp_path / "cache"
    with pytest.raises(EdgebenchError) as err:
        artifacts.ensure(tiny_layer_model(tmp_path / "tiny.onnx"), "onnx", recipe="prune:0.5+int8-dynamic", root=root)
    assert err.value.status == ExitStatus.CONVERSION_FAILED
    assert _entries(root) == []
    with pytest.raises(EdgebenchError, match="--calibration"):
        artifacts.ensure(MODEL, "onnx", recipe="prune:0.5+int8", root=root)
    assert all("weights" in str(p) for p in _entries(root))  # at most the float model, never an artifact
