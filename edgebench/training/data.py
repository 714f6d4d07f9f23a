"""The labelled training set of ``--finetune TRAIN.npz``: checked against the model, split into train and held-out.

The .npz holds one array per model input (keyed by the input's name; ``inputs`` for a single-input model) and
``labels``: one integer class index per sample, scored against the model's first output (or ``--output``) with
cross-entropy. It is refused before any training, in one line naming the array, when it does not fit the
model's inputs, holds NaN or Inf, has no labels or labels outside the output's classes, or is too small to hold
out a validation split of at least MIN_HELD_OUT samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebench.data.inputs import plan_dataset
from edgebench.data.source import load_onnx_info
from edgebench.errors import EdgebenchError, ExitStatus

MIN_HELD_OUT = 10  # held-out samples: fewer cannot tell a good fine-tune from a bad one
MIN_TRAIN = 10


@dataclass(frozen=True)
class TrainData:
    """Inputs by model input name (sample axis first) and one integer label per sample."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "TrainData":
        return TrainData({k: v[index] for k, v in self.inputs.items()}, self.labels[index])

    def split(self, val_fraction: float, seed: int = 0) -> tuple["TrainData", "TrainData"]:
        """(train, held-out): a seeded shuffle, the held-out share stratified by label so every class is seen."""
        rng = np.random.default_rng(seed)
        held: list[np.ndarray] = []
        for label in np.unique(self.labels):
            members = rng.permutation(np.flatnonzero(self.labels == label))
            held.append(members[:int(round(len(members) * val_fraction))])
        val = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
        if len(val) < MIN_HELD_OUT:  # small classes rounded to nothing: take the share across the set
            val = np.sort(rng.permutation(len(self))[:max(MIN_HELD_OUT, int(round(len(self) * val_fraction)))])
        train = np.setdiff1d(np.arange(len(self)), val)
        return self.take(rng.permutation(train)), self.take(val)


def load_train_data(path: Path, model: Path, val_fraction: float, output: str | None = None) -> TrainData:
    """The training set of ``model`` (ONNX), refused unless it fits and can hold out ``val_fraction``."""
    info = load_onnx_info(model)
    _, data = plan_dataset(path, info.inputs, what="training set", outputs=info.outputs, output=output)
    if data.labels is None:
        raise EdgebenchError(f"training set {path} has no 'labels' array: fine-tuning needs one integer class index "
                             "per sample, saved as labels (np.savez(path, <input>=x, labels=y))",
                             ExitStatus.DATA_MISMATCH)
    count = len(data.labels)
    held_out = int(round(count * val_fraction))
    if held_out < MIN_HELD_OUT or count - held_out < MIN_TRAIN:
        need = max(int(np.ceil(MIN_HELD_OUT / val_fraction)), MIN_HELD_OUT + MIN_TRAIN)
        raise EdgebenchError(f"training set {path} holds {count} samples: too few to hold out {val_fraction:g} of "
                             f"them (at least {MIN_HELD_OUT}) and train on the rest; give at least {need} samples "
                             "(or raise val_fraction)", ExitStatus.DATA_MISMATCH)
    inputs = {name: arr[:count] for name, arr in data.arrays.items()}
    return TrainData(inputs, np.asarray(data.labels, dtype=np.int64))
