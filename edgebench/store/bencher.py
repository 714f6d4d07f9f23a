"""A run in Bencher Metric Format (BMF, https://bencher.dev/docs/reference/bencher-metric-format): for teams that
track benchmarks in Bencher (``bencher run --adapter json --file OUT``).

One benchmark per measured cell, named by its cell key (``model/recipe/format/device`` and the options when
set); its measures, in Bencher's units:

- ``latency`` (ns, Bencher's built-in measure): the median of the raw samples, with the distribution-free 95 %
  confidence interval of the median as ``lower_value``/``upper_value`` (order statistics of the samples;
  the sample extremes when there are too few samples for one);
- ``throughput`` (inferences/s, the built-in measure) when measured, and ``throughput-mode`` (inferences/s under
  ``--mode throughput``) when that ran;
- ``file-size`` (bytes of the artifact), ``top1`` (fraction, against the labels) and ``energy`` (mJ per
  inference) where the result has them.

Failed cells have no figures and are left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from edgebench.files import atomic_write_text
from edgebench.result import Result

CONFIDENCE = 0.95


def median_interval_ns(samples: list[int]) -> tuple[float, float, float]:
    """(lower, median, upper) of the samples: the median's distribution-free confidence interval at CONFIDENCE
    from the binomial order statistics — ranks ``k`` and ``n − k + 1`` (1-based), ``k`` the smallest with
    P(Bin(n, ½) ≤ k) ≥ (1 − CONFIDENCE)/2, so that P(Bin(n, ½) < k) < (1 − CONFIDENCE)/2 on each side."""
    ordered = np.sort(np.asarray(samples, dtype=float))
    n = len(ordered)
    median = float(np.median(ordered))
    k = int(stats.binom.ppf((1 - CONFIDENCE) / 2, n, 0.5))
    if k < 1:  # too few samples for an interval at this confidence: the extremes
        return float(ordered[0]), median, float(ordered[-1])
    return float(ordered[k - 1]), median, float(ordered[n - k])


def benchmark_name(result: Result) -> str:
    key = result.cell_key
    name = "/".join((key.model, key.recipe, key.format, key.device))
    return name + (f"/{key.options}" if key.options not in ("{}", "") else "")


def to_bmf(results: list[Result]) -> dict[str, dict[str, dict[str, float]]]:
    """The BMF object of ``results`` (their measured cells)."""
    bmf: dict[str, dict[str, dict[str, float]]] = {}
    for result in results:
        if result.status != "ok" or not result.samples_ns:
            continue
        lower, median, upper = median_interval_ns(result.samples_ns)
        measures: dict[str, dict[str, float]] = {
            "latency": {"value": median, "lower_value": lower, "upper_value": upper}}
        figures: dict[str, Any] = {
            "throughput": result.throughput_per_s,
            "throughput-mode": result.throughput.inferences_per_s if result.throughput else None,
            "file-size": result.model.size_bytes,
            "top1": result.accuracy.top1,
            "energy": result.energy.energy_mj_per_inference if result.energy else None}
        measures.update({slug: {"value": float(v)} for slug, v in figures.items() if v is not None})
        bmf[benchmark_name(result)] = measures
    return bmf


def write_bmf(results: list[Result], path: Path) -> int:
    """Write ``results`` as BMF JSON (atomically); returns the number of benchmarks written."""
    bmf = to_bmf(results)
    atomic_write_text(path, json.dumps(bmf, indent=2, sort_keys=True))
    return len(bmf)
