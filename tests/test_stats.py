import math

import pytest

from edgebench.pipeline.stats import nearest_rank, summarize_ns, throughput_per_s


def test_nearest_rank_single_sample_is_every_percentile():
    assert nearest_rank([7.0], 50) == 7.0
    assert nearest_rank([7.0], 99.9) == 7.0
    assert nearest_rank([7.0], 100) == 7.0


def test_nearest_rank_definition_on_ten_values():
    values = list(range(1, 11))  # 1..10
    assert nearest_rank(values, 50) == 5  # ceil(0.5*10) = 5 → 5th value
    assert nearest_rank(values, 90) == 9  # exactly 9, not 10 (0.9*10 must not round up)
    assert nearest_rank(values, 91) == 10
    assert nearest_rank(values, 100) == 10
    assert nearest_rank(values, 1) == 1


def test_nearest_rank_exact_for_float_percentiles():
    values = list(range(1, 1001))
    assert nearest_rank(values, 99.9) == 999
    assert nearest_rank(values, 99) == 990


def test_nearest_rank_with_ties_returns_a_measured_value():
    values = [1, 2, 2, 2, 9]
    assert nearest_rank(values, 50) == 2
    assert nearest_rank(values, 80) == 2
    assert nearest_rank(values, 81) == 9


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_nearest_rank_refuses_out_of_range(p):
    with pytest.raises(ValueError):
        nearest_rank([1, 2], p)


def test_summary_of_known_samples():
    s = summarize_ns([1_000_000, 2_000_000, 3_000_000, 4_000_000])  # 1..4 ms
    assert (s.p50, s.p90, s.p99, s.min, s.max) == (2.0, 4.0, 4.0, 1.0, 4.0)
    assert s.mean == pytest.approx(2.5)
    assert s.std == pytest.approx(math.sqrt(5 / 3))  # sample std, ddof=1
    assert s.cv == pytest.approx(math.sqrt(5 / 3) / 2.5)


def test_robust_cv_ignores_one_outlier_that_moves_cv():
    samples = [1_000_000 + (i % 7) * 1000 for i in range(999)] + [50_000_000]
    s = summarize_ns(samples)
    assert s.cv > 0.5
    assert s.robust_cv < 0.01


def test_single_sample_summary_has_zero_spread():
    s = summarize_ns([5_000_000])
    assert s.std == 0 and s.cv == 0 and s.p99 == 5.0


def test_throughput_counts_samples_per_second():
    assert throughput_per_s([10_000_000] * 100, batch=4) == pytest.approx(400.0)  # 4 samples / 10 ms
