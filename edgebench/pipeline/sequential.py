"""A sequential test on paired round ratios: after every A/B round pair, can we decide yet?

Each round pair k measures A and B back to back on one device and gives one paired ratio
``r_k = q(B_k) / q(A_k)`` of the two runs' percentiles (``q`` = p50 for ``latency_p50``). Load that lasts
longer than a round pair slows both sides alike and cancels in ``r_k``; a burst that hits one side makes
one ``r_k`` an outlier, and the test below only counts on which side of a bound each ``r_k`` falls, so one
outlier costs one vote, never the verdict.

**The test.** Let ``m`` be the median of the round ratios' distribution. For a bound ``θ``, the number
``S`` of rounds with ``r_k > θ`` is, when ``m ≤ θ``, dominated by a fair coin's heads. The mixture
likelihood ratio of a fair coin against every coin biased to heads (the bias uniform on [½, 1])

    M(n, S) = ∫_{½}^{1} 2·(2p)^S·(2(1 − p))^(n − S) dp

is then a non-negative supermartingale with ``M(0, 0) = 1``, and by Ville's inequality
``P(M(n, S_n) ≥ 1/α for some n) ≤ α``. So claiming ``m > θ`` when ``M ≥ 1/α`` is wrong with probability at
most α, **however many rounds were looked at and whenever the procedure stopped** — this is what makes
checking after every round pair (and stopping as soon as a verdict is reached) valid, where repeating a
fixed-sample test would not be (Robbins 1970; Howard, Ramdas et al. 2021, "Time-uniform, nonparametric,
nonasymptotic confidence sequences"). Inverting the test over ``θ`` gives a confidence sequence for
``m`` from the order statistics of the ratios: ``[r_(n−S*+1), r_(S*)]`` with ``S*`` the smallest count that
rejects, valid at every ``n`` at once with coverage ≥ 1 − 2α.

**Verdicts**, for the threshold ``t`` of the rule (``hi = 1 + t``):

- ``regression`` when the whole interval lies above ``hi``: P(a change of at most +t is called a
  regression) ≤ α;
- ``improved`` when it lies below ``1/hi``;
- ``equivalent`` when it lies inside ``(1/hi, hi)``: P(a change of more than t either way is called
  equivalent) ≤ α;
- otherwise, at the budget, ``inconclusive`` with the interval measured so far.

Assumptions: the round ratios are independent given the past and continuous (no ties at the bound), which
rounds measured in separate processes alternating A B, B A … approximate; no assumption on their
distribution (heavy tails, bursts and bimodal runs are fine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np


def log_mixture(n: int, heads: int) -> float:
    """log M(n, S): the fair-coin-vs-biased mixture likelihood ratio after ``heads`` of ``n``."""
    from scipy.special import betainc, betaln

    upper = float(betainc(n - heads + 1, heads + 1, 0.5))  # P(Beta(S+1, n−S+1) > ½)
    if upper <= 0.0:
        return -math.inf
    return (n + 1) * math.log(2) + float(betaln(heads + 1, n - heads + 1)) + math.log(upper)


@lru_cache(maxsize=4096)
def rejecting_count(n: int, alpha: float) -> int | None:
    """S*: the smallest number of the ``n`` rounds past a bound that proves the median past it at level
    ``alpha``; None while no count can (too few rounds)."""
    level = math.log(1 / alpha)
    for heads in range(n // 2, n + 1):  # M grows with S, and S ≤ n/2 never rejects
        if log_mixture(n, heads) >= level:
            return heads
    return None


def min_rounds(alpha: float) -> int:
    """The fewest round pairs that can give any verdict at level ``alpha`` (every round agreeing)."""
    n = 1
    while rejecting_count(n, alpha) is None:
        n += 1
    return n


@dataclass(frozen=True)
class Decision:
    """Where the sequential test stands after ``rounds`` round pairs."""

    verdict: str  # regression | improved | equivalent | undecided
    rounds: int
    estimate: float  # median of the round ratios (the paired estimator)
    ci: tuple[float, float]  # the confidence sequence for the median ratio (±inf while too few rounds)


def decide(ratios: Sequence[float], threshold: float, alpha: float) -> Decision:
    """The verdict on the round ratios so far (candidate / baseline per round pair)."""
    r = np.sort(np.asarray(ratios, dtype=float))
    n = len(r)
    if n == 0:
        raise ValueError("no rounds")
    estimate = float(np.median(r))
    s = rejecting_count(n, alpha)
    if s is None:
        return Decision("undecided", n, estimate, (-math.inf, math.inf))
    lo, up = float(r[n - s]), float(r[s - 1])
    hi = 1 + threshold
    verdict = ("regression" if lo > hi else "improved" if up < 1 / hi
               else "equivalent" if 1 / hi < lo and up < hi else "undecided")
    return Decision(verdict, n, estimate, (lo, up))
