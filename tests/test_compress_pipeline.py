"""Each recipe on the digits model in the ONNX format, checked on the produced files and by top-1."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgebench.compress.graph import Graph
from edgebench.compress.metrics import onnx_weights
from edgebench.compress.pipeline import compress_onnx
from edgebench.errors import EdgebenchError, ExitStatus
from tests.compress_models import CALIB, MODEL, tiny_layer_model, top1

FP32 = MODEL.stat().st_size
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
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("compressed")
    return {r: compress_onnx(MODEL, r, out, CALIB) for r in RECIPES}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_recipe_on_onnx(results, recipe):
    floor, max_size, min_sparsity = RECIPES[recipe]
    c = results[recipe]
    onnx.checker.check_model(str(c.path))
    m = c.metrics
    assert m["size_bytes"] == c.path.stat().st_size <= max_size * FP32
    assert m["size_ratio"] == pytest.approx(FP32 / m["size_bytes"])
    assert m["gzip_ratio"] == pytest.approx(c.reference["gzip_bytes"] / m["gzip_bytes"])
    assert m["sparsity"] >= min_sparsity
    if recipe != "prune-filters:0.5":  # the same parameters, however they are stored
        assert m["params"] == c.reference["params"]
    assert top1(c.path) >= floor


def test_prune_cluster_int8_preserves_zeros_and_shared_values(results):
    c = results["prune:0.8+cluster:16+int8"]
    assert c.float_path != c.path and c.float_path.exists()
    _, float_layers = onnx_weights(c.float_path)
    _, int8_layers = onnx_weights(c.path)
    for layer in ("/conv2/Conv", "/conv3/Conv", "/fc1/Gemm"):
        assert c.clustered[layer] == 16
        assert np.unique(int8_layers[layer]).size <= 16
        zeros = float_layers[layer] == 0
        assert zeros.mean() > 0.3 and not np.any(int8_layers[layer][zeros])
    assert c.metrics["gzip_ratio"] > 10  # zeros and 16 shared int8 values compress far better than fp32


def test_cluster_step_stores_at_most_k_values(results):
    _, layers = onnx_weights(results["cluster:16"].path)
    assert [np.unique(layers[n]).size for n in ("/conv2/Conv", "/conv3/Conv", "/fc1/Gemm")] == [16, 16, 16]
    assert results["cluster:16"].metrics["gzip_ratio"] > 3


def test_filter_pruning_shrinks_parameters(results):
    c = results["prune-filters:0.5"]
    assert c.metrics["params"] < 0.5 * c.reference["params"]
    assert Graph.load(c.path).arrays["fc1.weight"].shape == (64, 512)


def test_fp32_recipe_is_the_source_itself(tmp_path):
    c = compress_onnx(MODEL, "fp32", tmp_path)
    assert c.path == MODEL and c.metrics["size_ratio"] == 1.0 and not list(tmp_path.iterdir())


def test_errors_leave_no_files(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(EdgebenchError) as err:
        compress_onnx(tiny_layer_model(tmp_path / "tiny.onnx"), "prune:0.5+int8-dynamic", out)
    assert err.value.status == ExitStatus.CONVERSION_FAILED
    assert not out.exists() or not list(out.iterdir())
    with pytest.raises(EdgebenchError, match="--calibration"):
        compress_onnx(MODEL, "prune:0.5+int8", out)
    assert not out.exists() or not list(out.iterdir())
