"""Deep Compression's storage measure (Han, Mao and Dally, ICLR 2016, sections 2-4): the bytes a model's
weights really need once pruning and clustering are stored, not just zeroed or shared in a dense file.

Per weight tensor, the cheapest of these layouts, every stream Huffman-coded:

- **sparse** (the paper's, section 2): one entry per non-zero weight holding the count of zeros skipped
  since the previous entry (its *relative index*) in ``b_idx`` bits; a run longer than ``2^b_idx - 1``
  zeros gets a *filler* entry (index ``2^b_idx - 1``, value zero). ``b_idx`` is chosen per layer (1 … 16)
  as the width giving the smallest total; the paper's fixed rule (8 bits for conv, 5 for fc) is computed
  beside it (``StorageReport.paper_bytes``);
- **dense** (``b_idx`` 0): no index stream, every value stored (what an unpruned layer needs).

The values are either codebook indices (the paper's section 3: a per-layer codebook of the K distinct values
at 32 bits each, then ``ceil(log2 K)``-bit indices) or, when that is dearer, the raw values at their stored
width (32 float, 16 fp16, 8 int8) without Huffman. Huffman coding (section 4) replaces each fixed-width
symbol by its optimal code length; unlike the paper, the code table is counted too (one code length per
symbol of the alphabet, or per used symbol with the symbol itself when that is smaller), which is what stops
``b_idx`` growing without bound. Everything else in the files (biases, scales, the graph) counts at its
stored size (``other_bytes``).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

MAX_INDEX_BITS = 16
CODEBOOK_BITS = 32  # one codebook entry (a float32 centroid), as in the paper
PAPER_INDEX_BITS = {"conv": 8, "fc": 5}  # section 2: relative indices in 8 bits for conv, 5 for fc layers


@dataclass(frozen=True)
class LayerStorage:
    """One weight tensor's storage: the layout chosen, its bits by stream, and the paper's fixed rule."""

    name: str
    params: int
    nonzero: int
    kind: str  # "conv" (≥ 3 dimensions) or "fc"
    b_idx: int  # relative-index width chosen; 0 = dense (no index stream)
    fillers: int  # filler zeros the chosen width needs
    values: str  # "codebook" or "raw"
    distinct: int  # K: distinct values in the stored value stream
    index_bits: int  # Huffman-coded index stream plus its code table
    value_bits: int  # Huffman-coded codebook indices plus table, or raw values
    codebook_bits: int  # K × 32 when values are codebook indices
    dense_bits: int  # the tensor stored dense at its width: what a plain file spends
    paper_b_idx: int  # the paper's fixed width for this kind of layer
    paper_bits: int  # total with the paper's fixed width (sparse, same value coding)

    @property
    def bits(self) -> int:
        return self.index_bits + self.value_bits + self.codebook_bits


@dataclass(frozen=True)
class StorageReport:
    """Deep Compression bytes of a set of weight tensors plus everything else at its stored size."""

    layers: tuple[LayerStorage, ...]
    other_bytes: int = 0  # biases, scales, graph: counted as stored

    @property
    def weight_bytes(self) -> int:
        return math.ceil(sum(layer.bits for layer in self.layers) / 8)

    @property
    def dense_weight_bytes(self) -> int:
        return math.ceil(sum(layer.dense_bits for layer in self.layers) / 8)

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.other_bytes

    @property
    def paper_bytes(self) -> int:
        """Total with the paper's fixed index widths (8 conv / 5 fc) instead of the per-layer best."""
        return math.ceil(sum(layer.paper_bits for layer in self.layers) / 8) + self.other_bytes


def huffman_lengths(counts: np.ndarray) -> np.ndarray:
    """Optimal (Huffman) code length of each symbol (0 where its count is 0); a lone symbol gets 1 bit."""
    counts = np.asarray(counts, np.int64)
    used = np.flatnonzero(counts)
    lengths = np.zeros(counts.size, np.int64)
    if used.size == 1:
        lengths[used] = 1
    heap = [(int(counts[s]), node) for node, s in enumerate(used)]
    heapq.heapify(heap)
    parent: list[int] = [-1] * used.size
    while len(heap) > 1:  # merge the two rarest; internal nodes are numbered after the leaves
        (c1, n1), (c2, n2) = heapq.heappop(heap), heapq.heappop(heap)
        parent[n1] = parent[n2] = len(parent)
        parent.append(-1)
        heapq.heappush(heap, (c1 + c2, len(parent) - 1))
    depth = [0] * len(parent)
    for node in range(len(parent) - 2, -1, -1):  # a parent is numbered after its children
        depth[node] = depth[parent[node]] + 1
    if used.size > 1:
        lengths[used] = depth[:used.size]
    return lengths


def huffman_bits(counts: np.ndarray) -> int:
    """Bits of a stream with these symbol counts (index = symbol), Huffman-coded, plus its canonical code
    table: one code length per symbol of the alphabet, or (symbol, length) per used symbol when smaller."""
    counts = np.asarray(counts, np.int64)
    lengths = huffman_lengths(counts)
    used = int(np.count_nonzero(counts))
    if not used:
        return 0
    length_bits = max(1, math.ceil(math.log2(int(lengths.max()) + 1)))
    symbol_bits = max(1, math.ceil(math.log2(counts.size)))
    table = min(counts.size * length_bits, used * (symbol_bits + length_bits))
    return int(counts @ lengths) + table


@dataclass(frozen=True)
class _Coded:
    """One layout's bits: index stream, value stream, codebook; with the fillers, coding and K it took."""

    index: int
    value: int
    codebook: int
    fillers: int
    coding: str
    distinct: int

    @property
    def total(self) -> int:
        return self.index + self.value + self.codebook


def _values(counts: np.ndarray, width: int, index: int = 0, fillers: int = 0) -> _Coded:
    """The value stream with these per-value counts: codebook indices Huffman-coded plus a K × 32-bit
    codebook, or raw values at ``width`` bits when that is cheaper."""
    k = int(np.count_nonzero(counts))
    n, raw = int(counts.sum()), int(counts.sum()) * width
    p = counts[counts > 0] / max(n, 1)
    entropy = float(-(p * np.log2(p)).sum())  # no code beats it: skip the Huffman tree when even it loses
    if k * CODEBOOK_BITS + n * entropy < raw and (coded := huffman_bits(counts[counts > 0])) + k * CODEBOOK_BITS < raw:
        return _Coded(index, coded, k * CODEBOOK_BITS, fillers, "codebook", k)
    return _Coded(index, raw, 0, fillers, "raw", k)


def _sparse(runs: np.ndarray, value_counts: np.ndarray, zero_id: int, b: int, width: int) -> _Coded:
    """Relative indices of ``b`` bits (``runs``: zeros skipped before each non-zero), fillers included."""
    top = (1 << b) - 1
    fillers = int((runs // (top + 1)).sum())
    index_counts = np.bincount(runs % (top + 1), minlength=top + 1)
    index_counts[top] += fillers
    values = value_counts.copy()
    values[zero_id] += fillers
    return _values(values, width, huffman_bits(index_counts), fillers)


def layer_storage(name: str, weight: np.ndarray, width: int = 32) -> LayerStorage:
    """The cheapest Deep Compression storage of one weight tensor whose values are stored ``width`` bits wide."""
    flat = np.asarray(weight, np.float32).ravel()
    kind = "conv" if np.ndim(weight) >= 3 else "fc"
    distinct, ids = np.unique(np.concatenate([flat, np.zeros(1, np.float32)]), return_inverse=True)
    ids = ids.ravel()[:-1]
    zero_id = int(np.searchsorted(distinct, 0.0))
    best, b_idx = _values(np.bincount(ids, minlength=distinct.size), width), 0  # dense: no index stream
    positions = np.flatnonzero(flat)
    runs = np.diff(positions, prepend=-1) - 1  # trailing zeros need no entry: the shape gives the length
    nonzero_counts = np.bincount(ids[positions], minlength=distinct.size)
    paper_b = PAPER_INDEX_BITS[kind]
    paper = best
    for b in range(1, MAX_INDEX_BITS + 1):
        coded = _sparse(runs, nonzero_counts, zero_id, b, width)
        if b == paper_b:
            paper = coded
        if coded.total < best.total:
            best, b_idx = coded, b
    return LayerStorage(name, int(flat.size), int(positions.size), kind, b_idx, best.fillers, best.coding,
                        best.distinct, best.index, best.value, best.codebook, int(flat.size) * width, paper_b,
                        paper.total)


def deep_compression_bytes(layers: Mapping[str, np.ndarray], widths: Mapping[str, int] | int = 32,
                           other_bytes: int = 0) -> StorageReport:
    """Deep Compression storage of these weight tensors (name → weight as the runtime computes with it,
    e.g. ``formats.readback.read_weights``' counted tensors), each stored ``widths`` bits wide (one width
    for all, or per name), plus ``other_bytes`` for everything else the files hold."""
    return StorageReport(tuple(layer_storage(name, w, widths if isinstance(widths, int) else widths.get(name, 32))
                               for name, w in layers.items()), other_bytes)


def precision_bits(precision: str | None) -> int:
    """The storage width of a precision's weights: 8 for int8 (static or dynamic), 16 for fp16, else 32."""
    return {"int8": 8, "int8-dynamic": 8, "fp16": 16}.get(precision or "", 32)
