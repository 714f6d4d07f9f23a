"""The gate's statistics on inputs whose answers are known: hand-computed Mann–Whitney U cases and a
bootstrap CI that must cover a ratio we planted in synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from edgebench.pipeline.stats import bootstrap_ratio_ci, half_drift, mann_whitney, subsample


def test_mann_whitney_fully_separated_samples():
    # U of [4,5,6] over [1,2,3] is 9 (every pair); exact P(U ≥ 9) = 1 / C(6,3) = 1/20.
    mw = mann_whitney([1, 2, 3], [4, 5, 6])
    assert mw.u == 9
    assert mw.p_greater == pytest.approx(1 / 20)
    assert mw.p_less == pytest.approx(1.0)
    assert mw.p_two_sided == pytest.approx(2 / 20)


def test_mann_whitney_interleaved_samples():
    # [2,4,6] over [1,3,5]: 1 + 2 + 3 = 6 winning pairs. The null distribution of U for m = n = 3 has
    # counts 1,1,2,3,3,3,3,2,1,1 for U = 0…9, so P(U ≥ 6) = (3+2+1+1)/20.
    mw = mann_whitney([1, 3, 5], [2, 4, 6])
    assert mw.u == 6
    assert mw.p_greater == pytest.approx(7 / 20)
    assert mw.p_less == pytest.approx(16 / 20)  # P(U ≤ 6)


def test_mann_whitney_refuses_empty_samples():
    with pytest.raises(ValueError):
        mann_whitney([], [1.0])


def _lognormal(seed: int, median: float, n: int = 2000) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(median), 0.3, n)


def test_bootstrap_ci_covers_the_true_ratio_of_medians():
    covered = 0
    for seed in range(40):
        low, high = bootstrap_ratio_ci(_lognormal(seed, 20.0), _lognormal(1000 + seed, 22.0), resamples=400,
                                       seed=seed)
        assert low < high
        covered += low <= 1.1 <= high
    assert covered >= 34  # nominal 95%: 38 of 40 expected; 34 leaves room for chance, not for a broken CI


def test_bootstrap_ci_of_a_tail_percentile_excludes_no_change_when_the_tail_moved():
    base, cand = _lognormal(1, 20.0), _lognormal(2, 20.0) * 1.3
    low, high = bootstrap_ratio_ci(base, cand, p=90)
    assert 1.0 < low < 1.3 < high


def test_bootstrap_is_deterministic_for_a_seed():
    base, cand = _lognormal(3, 10.0), _lognormal(4, 11.0)
    assert bootstrap_ratio_ci(base, cand, seed=7) == bootstrap_ratio_ci(base, cand, seed=7)
    assert bootstrap_ratio_ci(base, cand, seed=7) != bootstrap_ratio_ci(base, cand, seed=8)


def test_huge_sample_lists_are_thinned_evenly_in_time_order():
    values = np.arange(90_000, dtype=float)
    thin = subsample(values, 4000)
    assert len(thin) == 4000 and thin[0] == 0 and thin[-1] == 89_999 and np.all(np.diff(thin) > 0)
    assert np.array_equal(subsample(values[:10], 4000), values[:10])
    low, high = bootstrap_ratio_ci(_lognormal(5, 10.0, 90_000), _lognormal(6, 12.0, 90_000))
    assert low < 1.2 < high and high - low < 0.1


def test_bootstrap_refuses_bad_confidence():
    with pytest.raises(ValueError):
        bootstrap_ratio_ci([1.0, 2.0], [1.0, 2.0], confidence=1.5)


def test_half_drift_compares_the_two_halves_of_a_run_in_time_order():
    assert half_drift([1, 1, 1, 1, 2, 2, 2, 2]) == 2.0
    assert half_drift([2, 2, 2, 2, 1, 1, 1, 1]) == 0.5
    assert half_drift([3, 1, 2, 2, 1, 3]) == 1.0


def test_round_bootstrap_sees_a_run_that_was_slow_throughout():
    # five runs per side; two candidate runs 30% slower from start to end (a busy neighbour), the others
    # equal to the baseline. Resampling whole runs must admit both "no change" and "+30%".
    rng = np.random.default_rng(0)
    base = rng.lognormal(np.log(20), 0.03, 5000)
    cand = np.concatenate([rng.lognormal(np.log(m), 0.03, 1000) for m in (20, 26, 20, 26, 20)])
    _, block_high = bootstrap_ratio_ci(base, cand)
    low, high = bootstrap_ratio_ci(base, cand, rounds=([1000] * 5, [1000] * 5))
    assert low < 1.01 and high > 1.29 > block_high
