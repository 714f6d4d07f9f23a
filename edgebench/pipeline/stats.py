"""Latency statistics from raw per-iteration samples: nearest-rank percentiles, spread, throughput.

Percentiles use the nearest-rank rule of MLPerf LoadGen (``sorted[ceil(p·n) − 1]``): every reported
value is a latency that was actually measured, never an interpolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np

from edgebench.result import Latency

PERCENTILES = (50, 90, 95, 99)


def nearest_rank(sorted_values: Sequence[float] | np.ndarray, p: float) -> float:
    """The p-th percentile (0 < p ≤ 100) of already sorted values, by nearest rank."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("no samples")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is outside (0, 100]")
    rank = math.ceil(Fraction(str(p)) * n / 100)  # exact: 0.9 * 10 must be 9, not 9.000000000000002
    return sorted_values[max(rank, 1) - 1]


def summarize_ns(samples_ns: Sequence[int]) -> Latency:
    ms = sorted(s / 1e6 for s in samples_ns)
    n = len(ms)
    if n == 0:
        raise ValueError("no samples")
    mean = math.fsum(ms) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in ms) / (n - 1)) if n > 1 else 0.0
    pct = {f"p{p}": nearest_rank(ms, p) for p in PERCENTILES}
    median = pct["p50"]
    mad = nearest_rank(sorted(abs(x - median) for x in ms), 50)
    return Latency(**pct, mean=mean, std=std, min=ms[0], max=ms[-1], cv=std / mean if mean > 0 else 0.0,
                   robust_cv=1.4826 * mad / median if median > 0 else 0.0)


def throughput_per_s(samples_ns: Sequence[int], batch: int) -> float:
    """Samples per second of a synchronous single-stream run: batch · n / total measured time."""
    total = math.fsum(samples_ns)
    return batch * len(samples_ns) * 1e9 / total if total > 0 else 0.0


# --- Comparing two sets of samples (the gate) -------------------------------------------------------


@dataclass(frozen=True)
class MannWhitney:
    """Mann–Whitney U of candidate against baseline. ``p_greater``: evidence the candidate's values are
    larger (slower); ``p_less``: smaller (faster); ``p_two_sided``: either."""

    u: float
    p_greater: float
    p_less: float
    p_two_sided: float


def mann_whitney(baseline: Sequence[float], candidate: Sequence[float]) -> MannWhitney:
    """Rank test on raw samples: no normality assumed, robust to the long right tail of latencies.

    scipy picks the exact distribution for small samples without ties and the normal approximation
    (tie-corrected) otherwise. Imported lazily: the CLI's other commands should not pay for scipy.
    """
    from scipy.stats import mannwhitneyu

    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("no samples")
    greater = mannwhitneyu(b, a, alternative="greater")
    less = mannwhitneyu(b, a, alternative="less")
    two = mannwhitneyu(b, a, alternative="two-sided")
    return MannWhitney(u=float(greater.statistic), p_greater=float(greater.pvalue),
                       p_less=float(less.pvalue), p_two_sided=float(two.pvalue))


def subsample(values: np.ndarray, cap: int) -> np.ndarray:
    """At most ``cap`` values, evenly spaced in time order: deterministic, and it keeps the drift and
    autocorrelation that the block bootstrap resamples (a random subsample would erase both)."""
    if len(values) <= cap:
        return values
    return values[np.linspace(0, len(values) - 1, cap).round().astype(np.int64)]


def _bootstrap_percentile(values: np.ndarray, p: float, resamples: int, block: int,
                          rng: np.random.Generator) -> np.ndarray:
    """The nearest-rank p-th percentile of ``resamples`` circular moving-block resamples.

    Consecutive iterations are not independent (caches, frequency steps, a neighbour's burst), so whole
    blocks of consecutive samples are drawn; block = 1 is the ordinary iid bootstrap."""
    n = len(values)
    n_blocks = -(-n // block)
    starts = rng.integers(0, n, size=(resamples, n_blocks))
    idx = ((starts[:, :, None] + np.arange(block)) % n).reshape(resamples, -1)[:, :n]
    k = max(math.ceil(Fraction(str(p)) * n / 100), 1) - 1
    return np.partition(values[idx], k, axis=1)[:, k]


def _bootstrap_rounds(values: np.ndarray, sizes: Sequence[int], p: float, resamples: int, cap: int,
                      rng: np.random.Generator) -> np.ndarray:
    """The p-th percentile of resamples drawn a whole round at a time (a cluster bootstrap): separate
    runs differ by more than their samples vary within a run, and only resampling rounds shows that."""
    rounds = np.split(values, np.cumsum(sizes)[:-1])
    m = max(1, min(min(len(r) for r in rounds), cap // len(rounds)))
    stacked = np.stack([subsample(r, m) for r in rounds])
    picks = rng.integers(0, len(rounds), size=(resamples, len(rounds)))
    flat = stacked[picks].reshape(resamples, -1)
    k = max(math.ceil(Fraction(str(p)) * flat.shape[1] / 100), 1) - 1
    return np.partition(flat, k, axis=1)[:, k]


# Fewer runs than this are too few clusters for a percentile bootstrap: one busy run out of three spans
# the whole CI (3-run pools lost 4 of 15 detections of a real 10% slowdown against the block bootstrap).
MIN_ROUNDS = 5


def _bootstrap_side(values: np.ndarray, sizes: Sequence[int] | None, p: float, resamples: int, cap: int,
                    block: int | None, rng: np.random.Generator) -> np.ndarray:
    if len(values) == 0:
        raise ValueError("no samples")
    if sizes is not None and len(sizes) >= MIN_ROUNDS and sum(sizes) == len(values) and min(sizes) > 0:
        return _bootstrap_rounds(values, sizes, p, resamples, cap, rng)
    thin = subsample(values, cap)
    return _bootstrap_percentile(thin, p, resamples, block or max(1, len(thin) // 20), rng)


def bootstrap_ratio_ci(baseline: Sequence[float], candidate: Sequence[float], p: float = 50,
                       confidence: float = 0.95, resamples: int = 1000, seed: int = 0,
                       max_samples: int = 4000, block: int | None = None,
                       rounds: tuple[Sequence[int] | None, Sequence[int] | None] = (None, None),
                       ) -> tuple[float, float]:
    """Percentile-bootstrap CI of percentile_p(candidate) / percentile_p(baseline).

    Seeded, so a gate gives the same verdict on the same files. Each side is first thinned to
    ``max_samples`` (evenly, in time order) so a 90 000-sample result costs what a 4 000-sample one does.
    ``block`` defaults to a twentieth of the (thinned) run: on a shared runner the slow stretches last
    milliseconds to tens of milliseconds (a neighbour's burst), far longer than the textbook n^(1/3) block,
    and blocks that short gave narrower CIs and more A/A false alarms (benchmarks/gate_validation.py).
    ``rounds``: for a side pooled from several runs (``edgebench ab``), the sample count of each run in
    order; with MIN_ROUNDS or more, that side is resampled run by run instead."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} is outside (0, 1)")
    rng = np.random.default_rng(seed)
    qa, qb = [_bootstrap_side(np.asarray(values, dtype=float), sizes, p, resamples, max_samples, block, rng)
              for values, sizes in zip((baseline, candidate), rounds)]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = qb / qa
    tail = (1 - confidence) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail])
    return float(low), float(high)


def half_drift(samples: Sequence[float], p: float = 50) -> float:
    """percentile_p(second half) / percentile_p(first half) of a run, in time order: how far the run
    moved against itself. A run that disagrees with itself by more than a threshold cannot show that
    another run differs by that much."""
    values = np.asarray(samples, dtype=float)
    if len(values) < 2:
        raise ValueError("need at least 2 samples")
    mid = len(values) // 2
    return nearest_rank(np.sort(values[mid:]), p) / nearest_rank(np.sort(values[:mid]), p)
