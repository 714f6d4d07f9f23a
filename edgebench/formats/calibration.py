"""The calibration set of a static int8 conversion, whatever the format: required, checked against the
source model's inputs (naming a misfit input), refused if it holds NaN or Inf (a calibrator would take a
NaN range, or fail inside the quantizer) and cut into feeds."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from edgebench.data.inputs import check_finite, plan_dataset
from edgebench.data.npz import load_npz
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.data.source import TensorSpec, load_onnx_info

CALIBRATION_BATCH = 32
Shapes = dict[str, tuple[int, ...]]


def calibration_batches(model: Path, calibration: Path, shapes: Shapes | None = None) -> Iterator[dict[str, np.ndarray]]:
    """The calibration set of the ONNX ``model`` in feeds (``calibration_feeds``)."""
    return calibration_feeds(load_onnx_info(model).inputs, calibration, shapes)


def calibration_feeds(inputs: Sequence[TensorSpec], calibration: Path, shapes: Shapes | None = None,
                      pooled: bool = True) -> Iterator[dict[str, np.ndarray]]:
    """The calibration set, checked against the model's ``inputs`` (naming a misfit input), in feeds. Dynamic
    dimensions take ``shapes`` (--shape), else the sizes of the set's own arrays. ``pooled``: a free dynamic
    batch is filled with up to CALIBRATION_BATCH samples a feed (onnxruntime's calibrators); otherwise each
    feed is one batch of the plan (NNCF counts its ``subset_size`` in feeds)."""
    plan, data = plan_dataset(calibration, inputs, shapes=shapes, what="calibration set", labels=False)
    if not plan.batched:  # every input is one whole sample: feed them one by one
        for i in range(len(data)):
            yield {name: np.asarray(arr[i]) for name, arr in data.arrays.items()}
        return
    # a per-sample input (a recurrent state holding its batch on another axis) is sized for the plan's batch
    free = pooled and not plan.per_sample and all(not isinstance(s.shape[0], int) for s in inputs
                                                  if s.name in plan.batched)
    # equal feeds (the histogram calibrators stack them): the largest divisor of the sample count up to
    # CALIBRATION_BATCH for a free dynamic batch, else exactly the plan's batch
    step = max(d for d in range(1, min(CALIBRATION_BATCH, len(data)) + 1) if len(data) % d == 0) \
        if free else plan.batch
    stop = len(data) - len(data) % step
    for start in range(0, stop, step):
        yield {name: (arr[start:start + step] if name in plan.batched else np.asarray(arr[(start // step) % len(arr)]))
               for name, arr in data.arrays.items()}


def check_calibration(model: Path, calibration: Path, int8: bool, shapes: Shapes | None = None) -> None:
    """Refuse a calibration set before any work: for ``int8``, unless it fits the model and holds no NaN or Inf
    (its first feed made); for another precision (a TFLite conversion takes the shapes it fixes, and its
    sample, from the set) when the arrays of the model's inputs hold NaN or Inf."""
    if int8:
        next(calibration_batches(model, calibration, shapes))
        return
    names = [s.name for s in load_onnx_info(model).inputs]
    for name, arr in load_npz(calibration, "calibration set").items():
        if name in names or (name == "inputs" and len(names) == 1):  # one input's data may be saved as inputs
            check_finite(calibration, name, arr, "calibration set")


def require_calibration(calibration: Path | None) -> Path:
    if calibration is None:
        raise EdgebenchError("int8 needs a calibration set to fix activation ranges: pass --calibration NPZ "
                             "(a few hundred real inputs), or use int8-dynamic", ExitStatus.USAGE)
    return Path(calibration)
