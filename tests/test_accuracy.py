import numpy as np
import pytest

from edgebench.data.accuracy import CLASSES, agreement, top1


def test_top1_against_labels():
    out = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert top1(out, np.array([1, 0, 0])) == pytest.approx(2 / 3)


def test_top1_refuses_count_mismatch():
    with pytest.raises(ValueError):
        top1(np.zeros((3, 2)), np.array([0, 1]))


def test_agreement_with_reference():
    ref = np.array([[1.0, 2.0], [3.0, 1.0]])
    out = np.array([[1.0, 2.5], [2.0, 3.0]])  # second row flips its arg-max
    a = agreement(out, ref, CLASSES)
    assert a["agreement_top1"] == 0.5
    assert a["max_abs_err"] == 2.0
    assert a["mean_abs_err"] == pytest.approx((0 + 0.5 + 1 + 2) / 4)
    assert a["max_rel_err"] == pytest.approx(2.0)
    # by hand: out·ref = 1 + 5 + 6 + 3 = 15, |out| = √20.25 = 4.5, |ref| = √15 → cosine = √15 / 4.5
    assert a["cosine"] == pytest.approx(15 ** 0.5 / 4.5, rel=1e-12)


def test_cosine_of_known_angles():
    ref = np.array([[3.0, 4.0], [1.0, -2.0]])
    assert agreement(2.5 * ref, ref)["cosine"] == pytest.approx(1.0, rel=1e-12)  # scaled: same direction
    assert agreement(-ref, ref)["cosine"] == pytest.approx(-1.0, rel=1e-12)  # opposite
    # (4, −3, 2, 1)·(3, 4, 1, −2) = 12 − 12 + 2 − 2 = 0: orthogonal
    assert agreement(np.array([[4.0, -3.0], [2.0, 1.0]]), ref)["cosine"] == pytest.approx(0.0, abs=1e-15)


def test_identical_outputs_agree_fully():
    ref = np.random.default_rng(0).normal(size=(5, 3))
    a = agreement(ref.copy(), ref, CLASSES)
    assert a["max_abs_err"] == 0 and a["agreement_top1"] == 1.0 and a["cosine"] == pytest.approx(1.0)
    assert a["snr_db"] == 200.0 and a["rel_l2"] == 0.0  # identical: the SNR cap, never infinity


def test_agreement_refuses_shape_mismatch():
    with pytest.raises(ValueError):
        agreement(np.zeros((2, 3)), np.zeros((3, 2)))
