"""Accuracy judged on the host, by one code path for every runtime.

Two questions: how well does the model do its task (top-1 against labels), and how far does this
artifact drift from the fp32 reference (top-1 agreement, max / mean absolute error, cosine).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _as_scores(outputs: np.ndarray) -> np.ndarray:
    scores = np.asarray(outputs, dtype=np.float64)
    return scores.reshape(scores.shape[0], -1) if scores.ndim != 2 else scores


def top1(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose arg-max class equals the label."""
    scores = _as_scores(outputs)
    labels = np.asarray(labels).reshape(-1)
    if scores.shape[0] != labels.shape[0]:
        raise ValueError(f"{scores.shape[0]} outputs but {labels.shape[0]} labels")
    return float(np.mean(scores.argmax(axis=1) == labels))


def agreement(outputs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """How closely ``outputs`` follow ``reference`` (the fp32 model on the same inputs)."""
    out = np.asarray(outputs, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from the reference's {ref.shape}")
    diff = np.abs(out - ref)
    denom = np.linalg.norm(out) * np.linalg.norm(ref)
    rel = diff / np.maximum(np.abs(ref), np.finfo(np.float32).tiny)
    result: dict[str, Any] = {
        "max_abs_err": float(diff.max()) if diff.size else 0.0,
        "mean_abs_err": float(diff.mean()) if diff.size else 0.0,
        "max_rel_err": float(rel.max()) if rel.size else 0.0,
        "cosine": float(np.dot(out.ravel(), ref.ravel()) / denom) if denom > 0 else float(np.array_equal(out, ref)),
    }
    if out.ndim >= 2 and out.shape[0] > 0:
        a, b = _as_scores(out), _as_scores(ref)
        result["agreement_top1"] = float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))
    return result
