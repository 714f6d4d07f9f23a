"""Accuracy judged on the host, by one code path for every runtime.

Two questions: how well does the model do its task (top-1 against labels, where the output is class
scores), and how far does an artifact drift from the fp32 reference — per output, whatever the output
is: cosine (whole tensor, and per sample: mean and min), signal-to-noise ratio in dB
(10·log10(‖ref‖² / ‖out − ref‖²)), relative L2 error, max / mean absolute and max relative error. Top-1
(and top-5) agreement only where the output is a score vector over classes: an arg-max over an
embedding, a hidden state or a dense map says nothing (an int8 transformer whose embeddings had
cosine 0.45 to fp32 once read "top-1 agreement 1.0").
"""

from __future__ import annotations

from typing import Any

import numpy as np

TASKS = ("auto", "classify", "values")
CLASSES, VALUES = "classes", "values"
# SNR of identical tensors is infinite; JSON has no infinity, so SNR is clipped to ±SNR_CAP_DB (a float32
# tensor resolves ~144 dB at best, so a real figure never reaches the cap).
SNR_CAP_DB = 200.0
MASK_THRESHOLD = 0.5
TOP_K = 5
_PROB_ATOL = 1e-3


def _f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _squeezed(a: np.ndarray) -> np.ndarray:
    """Drop singleton axes after the sample axis ([N, 1, 1, C] → [N, C]; [N, 1, H, W] → [N, H, W])."""
    if a.ndim <= 1:
        return a.reshape(len(a), 1) if a.ndim == 1 else a.reshape(1, 1)
    keep = [a.shape[0], *(d for d in a.shape[1:] if d != 1)]
    return a.reshape(keep if len(keep) > 1 else [a.shape[0], 1])


def snr_db(out: np.ndarray, ref: np.ndarray) -> float:
    """10·log10(‖ref‖² / ‖out − ref‖²), clipped to ±SNR_CAP_DB (identical tensors read +SNR_CAP_DB)."""
    o, r = _f64(out), _f64(ref)
    signal, noise = float(np.sum(r * r)), float(np.sum((o - r) ** 2))
    if not np.isfinite(noise):
        return -SNR_CAP_DB
    if noise == 0.0:
        return SNR_CAP_DB
    if signal == 0.0:
        return -SNR_CAP_DB
    return float(np.clip(10.0 * np.log10(signal / noise), -SNR_CAP_DB, SNR_CAP_DB))


def rel_l2(out: np.ndarray, ref: np.ndarray) -> float:
    """‖out − ref‖ / ‖ref‖ (the reference's norm floored at float32's smallest normal)."""
    o, r = _f64(out), _f64(ref)
    return float(np.linalg.norm(o - r) / max(float(np.linalg.norm(r)), float(np.finfo(np.float32).tiny)))


def cosine(out: np.ndarray, ref: np.ndarray) -> float:
    """Cosine of the two tensors as flat vectors; two zero tensors agree (1.0), one zero tensor does not (0.0)."""
    o, r = _f64(out).ravel(), _f64(ref).ravel()
    denom = float(np.linalg.norm(o) * np.linalg.norm(r))
    return float(np.dot(o, r) / denom) if denom > 0 else float(np.array_equal(o, r))


def sample_cosines(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Cosine per sample (axis 0), each sample flattened."""
    o, r = _f64(out), _f64(ref)
    return np.array([cosine(a, b) for a, b in zip(o.reshape(len(o), -1), r.reshape(len(r), -1))])


def _labels_fit(ref: np.ndarray, labels: np.ndarray | None) -> bool:
    if labels is None:
        return False
    lab = np.asarray(labels)
    return (ref.ndim == 2 and np.issubdtype(lab.dtype, np.integer) and lab.shape == (len(ref),)
            and bool(np.all((lab >= 0) & (lab < ref.shape[1]))))


def output_kind(reference: np.ndarray, labels: np.ndarray | None = None, task: str = "auto") -> str:
    """CLASSES when the output is a score vector over classes (its last axis, once per sample or once
    per position), else VALUES (embeddings, hidden states, maps, regressions, states).

    ``task`` "classify" / "values" decides; "auto" reads the reference: rows on the last axis that are
    probability distributions are class scores (a softmax, per sample or per position as in CTC); rows of
    unit L2 norm are embeddings; otherwise one score row per sample ([N, C], C ≥ 2) is class scores when
    the labels fit it (integers in [0, C), one per sample)."""
    ref = _squeezed(_f64(reference))
    if ref.size == 0 or ref.shape[-1] < 2 or task == "values":
        return VALUES
    if task == "classify":
        return CLASSES
    rows = ref.reshape(-1, ref.shape[-1])
    if np.all(rows >= -_PROB_ATOL) and np.allclose(rows.sum(axis=1), 1.0, atol=_PROB_ATOL):
        return CLASSES
    if np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=_PROB_ATOL):
        return VALUES
    return CLASSES if _labels_fit(ref, labels) else VALUES


def _is_probability_map(ref: np.ndarray) -> bool:
    return ref.ndim >= 3 and ref.size > 0 and float(ref.min()) >= 0.0 and float(ref.max()) <= 1.0


def mask_iou(out: np.ndarray, ref: np.ndarray, threshold: float = MASK_THRESHOLD) -> float:
    """IoU of the masks ``out > threshold`` and ``ref > threshold``; two empty masks agree (1.0)."""
    a, b = _f64(out) > threshold, _f64(ref) > threshold
    union = int(np.count_nonzero(a | b))
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def top1(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose arg-max class (over the last axis) equals the label."""
    scores = _squeezed(_f64(outputs))
    labels = np.asarray(labels).reshape(-1)
    if scores.ndim != 2:
        raise ValueError(f"top-1 against labels needs one score row per sample, not shape {list(scores.shape)}")
    if scores.shape[0] != labels.shape[0]:
        raise ValueError(f"{scores.shape[0]} outputs but {labels.shape[0]} labels")
    return float(np.mean(scores.argmax(axis=1) == labels))


def class_agreement(outputs: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Top-1 agreement (same arg-max as the reference) per score row — per sample, or per position for
    sequence scores — and, with more than TOP_K classes, top-5 agreement (the reference's arg-max among
    the output's five highest scores)."""
    out, ref = _squeezed(_f64(outputs)), _squeezed(_f64(reference))
    rows_out, rows_ref = out.reshape(-1, out.shape[-1]), ref.reshape(-1, ref.shape[-1])
    best = rows_ref.argmax(axis=1)
    found = {"agreement_top1": float(np.mean(rows_out.argmax(axis=1) == best))}
    if rows_out.shape[1] > TOP_K:
        top = np.argpartition(-rows_out, TOP_K - 1, axis=1)[:, :TOP_K]
        found[f"agreement_top{TOP_K}"] = float(np.mean(np.any(top == best[:, None], axis=1)))
    return found


def agreement(outputs: np.ndarray, reference: np.ndarray, kind: str | None = None,
              labels: np.ndarray | None = None) -> dict[str, Any]:
    """How closely one output follows the same output of the reference (the fp32 model on the same
    inputs). ``kind`` (CLASSES / VALUES) defaults to ``output_kind(reference, labels)``."""
    out, ref = _f64(outputs), _f64(reference)
    if out.shape != ref.shape:
        raise ValueError(f"output shape {list(out.shape)} differs from the reference's {list(ref.shape)}")
    kind = kind or output_kind(ref, labels)
    diff = np.abs(out - ref)
    rel = diff / np.maximum(np.abs(ref), np.finfo(np.float32).tiny)
    per_sample = sample_cosines(out, ref) if out.ndim >= 1 and len(out) else np.ones(1)
    result: dict[str, Any] = {
        "kind": kind,
        "shape": list(out.shape),
        "cosine": cosine(out, ref),
        "cosine_mean": float(per_sample.mean()),
        "cosine_min": float(per_sample.min()),
        "snr_db": snr_db(out, ref),
        "rel_l2": rel_l2(out, ref),
        "max_abs_err": float(diff.max(initial=0.0)),
        "mean_abs_err": float(diff.mean()) if diff.size else 0.0,
        "max_rel_err": float(rel.max(initial=0.0)),
        "nonfinite": int(out.size - np.count_nonzero(np.isfinite(out))),
    }
    if kind == CLASSES:
        result.update(class_agreement(out, ref))
    elif _is_probability_map(_squeezed(ref)):
        result["mask_iou"] = mask_iou(out, ref)
    return result


def _check_labels(name: str, out: np.ndarray, labels: np.ndarray) -> None:
    """Labels naming a class past the output's score row would read as a top-1 of 0 (or hide that the
    output is class scores): a ValueError, for a model whose class count only its outputs show."""
    scores = _squeezed(np.asarray(out))
    if scores.ndim == 2 and scores.shape[1] >= 2 and len(labels) and int(np.max(labels)) >= scores.shape[1]:
        raise ValueError(f"label {int(np.max(labels))} is past the {scores.shape[1]} class scores of output {name!r} "
                         f"(classes 0 to {scores.shape[1] - 1}): fix the labels, or score the output that holds the "
                         "class scores (--output)")


def score_outputs(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None, scored: str,
                  labels: np.ndarray | None = None, task: str = "auto") -> dict[str, dict[str, Any]]:
    """Every output's metrics, in the model's order. Labels and ``task`` belong to the ``scored`` output
    (one label per sample names one output's class); the others are judged on their own shape and values.
    Without a reference, only top-1 against labels (where the scored output is class scores)."""
    found: dict[str, dict[str, Any]] = {}
    for name, out in outputs.items():
        mine = labels if name == scored else None
        if mine is not None:
            _check_labels(name, out, mine)
        ref = None if reference is None else reference.get(name)
        kind = output_kind(ref if ref is not None else out, mine, task if name == scored else "auto")
        metrics: dict[str, Any] = agreement(out, ref, kind) if ref is not None else {"kind": kind}
        if mine is not None and kind == CLASSES and _squeezed(_f64(out)).ndim == 2:
            metrics["top1"] = top1(out, mine)
        found[name] = metrics
    return found
