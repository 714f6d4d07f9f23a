import numpy as np
import pytest

from edgebench.accuracy import agreement, top1


def test_top1_against_labels():
    out = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert top1(out, np.array([1, 0, 0])) == pytest.approx(2 / 3)


def test_top1_refuses_count_mismatch():
    with pytest.raises(ValueError):
        top1(np.zeros((3, 2)), np.array([0, 1]))


def test_agreement_with_reference():
    ref = np.array([[1.0, 2.0], [3.0, 1.0]])
    out = np.array([[1.0, 2.5], [2.0, 3.0]])  # second row flips its arg-max
    a = agreement(out, ref)
    assert a["agreement_top1"] == 0.5
    assert a["max_abs_err"] == 2.0
    assert a["mean_abs_err"] == pytest.approx((0 + 0.5 + 1 + 2) / 4)
    assert a["max_rel_err"] == pytest.approx(2.0)
    assert a["cosine"] == pytest.approx(np.dot(out.ravel(), ref.ravel()) / np.linalg.norm(out) / np.linalg.norm(ref))


def test_identical_outputs_agree_fully():
    ref = np.random.default_rng(0).normal(size=(5, 3))
    a = agreement(ref.copy(), ref)
    assert a["max_abs_err"] == 0 and a["agreement_top1"] == 1.0 and a["cosine"] == pytest.approx(1.0)


def test_agreement_refuses_shape_mismatch():
    with pytest.raises(ValueError):
        agreement(np.zeros((2, 3)), np.zeros((3, 2)))
