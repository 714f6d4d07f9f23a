"""Deep Compression's storage measure: a hand-computed example, the ordering dense > pruned > pruned and
clustered, the digits model through the artifact cache (dc_ratio beside gzip_ratio), and a property: never
more than the dense tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebench.artifacts import cache as artifacts
from edgebench.artifacts.meta import ArtifactMeta
from edgebench.compress.storage import deep_compression_bytes, huffman_lengths, layer_storage
from tests.compress_models import CALIB, MODEL


def test_huffman_lengths_by_hand() -> None:
    # 1,1 → 2; 2,2 → 4; 4,5 → 9: counts 5 → 1 bit, 2 → 2 bits, the two 1s → 3 bits; a zero count gets none
    assert huffman_lengths(np.array([5, 0, 2, 1, 1])).tolist() == [1, 0, 2, 3, 3]
    assert huffman_lengths(np.array([0, 7])).tolist() == [0, 1]  # a lone symbol still takes a bit


def test_hand_computed_layer() -> None:
    w = np.array([0] * 10 + [0.5, 0, 0, 0.5, 0.5, -1.0], np.float32).reshape(2, 8)  # fc: 16 weights, 4 non-zero
    layer = layer_storage("w", w)
    # zeros skipped before each non-zero: 10, 2, 0, 0. With b_idx = 4 (no filler) the index symbols
    # {0: 2, 2: 1, 10: 1} get Huffman lengths 1, 2, 2 → 6 bits; table: 3 used symbols × (4 + 2) = 18 → 24.
    # Values {-1.0: 1, 0.5: 3}: 1 bit each → 4, table min(2 × 1, 2 × 2) = 2 → 6; codebook 2 × 32 = 64.
    assert (layer.b_idx, layer.fillers, layer.values, layer.distinct) == (4, 0, "codebook", 2)
    assert (layer.index_bits, layer.value_bits, layer.codebook_bits, layer.bits) == (24, 6, 64, 94)
    # the paper's 5 bits for fc: the index table costs 3 × (5 + 2) = 21 → 27 + 70 = 97; dense fp32: 512
    assert (layer.paper_b_idx, layer.paper_bits, layer.dense_bits) == (5, 97, 512)
    # b_idx = 1 would need 5 + 1 fillers (runs of 10 and 2 zeros with at most 1 skipped per entry): dearer
    report = deep_compression_bytes({"w": w}, 32, other_bytes=10)
    assert (report.weight_bytes, report.total_bytes, report.paper_bytes) == (12, 22, 23)


def test_dense_then_sparse_then_clustered() -> None:
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(100, 300)).astype(np.float32)
    sparse = np.where(np.abs(dense) > np.quantile(np.abs(dense), 0.9), dense, 0).astype(np.float32)
    centroids = np.linspace(-3, 3, 15).astype(np.float32)
    nearest = centroids[np.abs(sparse[..., None] - centroids).argmin(-1)]
    clustered = np.where(sparse != 0, nearest, 0).astype(np.float32)  # 15 centroids + zero: 16 values
    sizes = [deep_compression_bytes({"w": w}) for w in (dense, sparse, clustered)]
    assert sizes[0].weight_bytes == dense.size * 4  # dense fp32: nothing to gain, stored as it is
    assert sizes[0].weight_bytes > sizes[1].weight_bytes > sizes[2].weight_bytes
    assert sizes[1].layers[0].b_idx > 0 and sizes[2].layers[0].values == "codebook"
    assert sizes[2].layers[0].distinct <= 16
    assert dense.size * 4 / sizes[2].weight_bytes > 20  # 10 % of the weights, ~4-5 bits each with their index


def test_digits_dc_ratio_beats_gzip(tmp_path: Path) -> None:
    meta = artifacts.ensure(MODEL, "onnx", recipe="prune:0.9+cluster:16", calibration=CALIB,
                            root=tmp_path / "cache").meta
    fp32 = artifacts.ensure(MODEL, "onnx", recipe="fp32", root=tmp_path / "cache").meta
    assert fp32.dc_bytes is not None and meta.dc_bytes is not None and meta.dc_ratio is not None
    assert fp32.dc_bytes <= fp32.size_bytes  # dense fp32 is stored as it is
    assert meta.gzip_ratio is not None and meta.dc_ratio > meta.gzip_ratio > 1
    assert meta.cost_metrics()["dc_ratio"] == meta.dc_ratio
    old = {k: v for k, v in meta.to_dict().items() if k not in ("dc_bytes", "dc_ratio")}
    assert ArtifactMeta.from_dict(old).dc_bytes is None  # a meta.json written before still loads


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.floats(0.0, 1.0), st.integers(0, 40), st.sampled_from([8, 16, 32]),
       st.integers(0, 2**32 - 1))
def test_never_more_than_dense(size: int, sparsity: float, levels: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=size).astype(np.float32)
    if levels:
        w = (np.round(w * levels) / levels).astype(np.float32)
    w[rng.random(size) < sparsity] = 0
    layer = layer_storage("w", w.reshape(1, 1, -1) if seed % 2 else w, width)
    assert layer.bits <= layer.dense_bits == size * width
    assert layer.bits <= layer.paper_bits and 0 <= layer.b_idx <= 16
    assert layer.nonzero == np.count_nonzero(w) and layer.distinct <= size + 1
