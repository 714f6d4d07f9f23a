"""Input data for a run: datasets and calibration sets (.npz), or seeded random inputs.

An ``.npz`` holds one array per model input keyed by the input's name (a single-input model may use
``inputs``), samples on axis 0, and optionally ``labels``. Inputs whose axis 0 is the batch are
"batched": the runner stacks ``batch`` samples per feed. Others (a scalar sample rate, a fixed-size
state) are "per-sample": each sample is one whole model input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.source import TensorSpec, require_file

DEFAULT_RANDOM_BATCHES = 8


@dataclass
class InputPlan:
    """How to feed a model: concrete per-input shapes and which inputs carry the batch on axis 0."""

    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    batched: set[str]
    batch: int
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)

    @property
    def per_sample(self) -> list[str]:
        return sorted(set(self.shapes) - self.batched)

    def sample_shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[name][1:] if name in self.batched else self.shapes[name]


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``name:1x3x224x224`` → (name, (1, 3, 224, 224))."""
    name, sep, dims = text.rpartition(":")
    try:
        shape = tuple(int(d) for d in dims.lower().split("x")) if dims else ()
    except ValueError:
        shape = ()
    if not sep or not name or not shape or any(d <= 0 for d in shape):
        raise EdgebenchError(f"bad --shape {text!r}: write NAME:DxDx… (e.g. input:1x3x224x224)", ExitStatus.USAGE)
    return name, shape


def plan_inputs(inputs: Sequence[TensorSpec], batch: int | None = None,
                shapes: dict[str, tuple[int, ...]] | None = None,
                ranges: dict[str, tuple[float, float]] | None = None,
                values: dict[str, float] | None = None) -> InputPlan:
    """Resolve dynamic dimensions: ``shapes`` first, then a dynamic axis 0 from ``batch`` (default 1)."""
    shapes = dict(shapes or {})
    names = {i.name for i in inputs}
    for given in list(shapes) + list(ranges or {}) + list(values or {}):
        if given not in names:
            raise EdgebenchError(f"the model has no input {given!r} (inputs: {', '.join(sorted(names))}): "
                                 "fix the input name", ExitStatus.USAGE)
    resolved: dict[str, tuple[int, ...]] = {}
    batched: set[str] = set()
    for spec in inputs:
        if spec.name in shapes:
            shape = shapes[spec.name]
            fixed_ok = len(shape) == len(spec.shape) and all(
                not isinstance(d, int) or d == s for d, s in zip(spec.shape, shape))
            if not fixed_ok:
                raise EdgebenchError(f"--shape {spec.name}:{'x'.join(map(str, shape))} does not fit the "
                                     f"model's {_fmt(spec.shape)}: keep the fixed dimensions", ExitStatus.USAGE)
        else:
            shape_list = []
            for axis, d in enumerate(spec.shape):
                if isinstance(d, int):
                    shape_list.append(d)
                elif axis == 0:
                    shape_list.append(batch or 1)
                else:
                    raise EdgebenchError(
                        f"input {spec.name!r} has dynamic dimension {d or '?'} at axis {axis} "
                        f"({_fmt(spec.shape)}): pass --shape {spec.name}:"
                        f"{'x'.join(str(x) if isinstance(x, int) else 'N' for x in spec.shape)}", ExitStatus.USAGE)
            shape = tuple(shape_list)
        resolved[spec.name] = shape
        if spec.shape and (not isinstance(spec.shape[0], int) or spec.shape[0] == (batch or 1)):
            batched.add(spec.name)
    batch_sizes = {resolved[n][0] for n in batched}
    if len(batch_sizes) > 1:
        raise EdgebenchError(f"inputs disagree on the batch size ({sorted(batch_sizes)}): give every "
                             "batched input the same first dimension", ExitStatus.USAGE)
    return InputPlan(resolved, {i.name: i.dtype for i in inputs}, batched,
                     batch_sizes.pop() if batch_sizes else 1, dict(ranges or {}), dict(values or {}))


def _fmt(shape: Sequence[object]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def random_inputs(plan: InputPlan, seed: int = 0, batches: int = DEFAULT_RANDOM_BATCHES) -> dict[str, np.ndarray]:
    """Seeded random samples of each input's dtype and shape: ``batches`` distinct feeds' worth."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, dtype in plan.dtypes.items():
        n = plan.batch * batches if name in plan.batched else batches
        shape = (n, *plan.sample_shape(name))
        dt = np.dtype(dtype)
        if name in plan.values:
            arrays[name] = np.full(shape, plan.values[name], dtype=dt)
            continue
        low, high = plan.ranges.get(name, (0, 1) if dt.kind == "f" else (0, 100))
        if dt.kind == "f":
            arrays[name] = rng.uniform(low, high, size=shape).astype(dt)
        elif dt.kind == "b":
            arrays[name] = rng.integers(0, 2, size=shape).astype(dt)
        elif dt.kind in "iu":
            arrays[name] = rng.integers(int(low), int(high), size=shape, endpoint=False).astype(dt)
        else:
            raise EdgebenchError(f"input {name!r} has dtype {dtype}, which random inputs cannot make: "
                                 "pass --dataset", ExitStatus.DATA_MISMATCH)
    return arrays


@dataclass
class Dataset:
    path: Path
    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None

    def __len__(self) -> int:
        return min(len(a) for a in self.arrays.values())


def load_npz(path: str | Path, what: str = "dataset") -> dict[str, np.ndarray]:
    p = require_file(path, what)
    try:
        with np.load(p, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except ValueError as exc:
        raise EdgebenchError(f"{what} {p} holds object arrays ({exc}): save plain numeric arrays",
                             ExitStatus.DATA_MISMATCH) from None
    except (OSError, EOFError) as exc:
        raise EdgebenchError(f"{what} {p} is not a readable .npz ({exc}): save it with numpy.savez",
                             ExitStatus.DATA_MISMATCH) from None


def load_dataset(path: str | Path, plan: InputPlan, what: str = "dataset") -> Dataset:
    """Read an .npz and refuse it, naming the input, unless every array fits the model."""
    raw = load_npz(path, what)
    names = list(plan.shapes)
    if len(names) == 1 and names[0] not in raw and "inputs" in raw:
        raw[names[0]] = raw.pop("inputs")
    arrays = {}
    for name in names:
        if name not in raw:
            have = ", ".join(sorted(k for k in raw if k != "labels")) or "nothing"
            raise EdgebenchError(f"{what} {path} has no array for input {name!r} (it has: {have}): "
                                 "save one array per model input, keyed by the input's name",
                                 ExitStatus.DATA_MISMATCH)
        arr = raw[name]
        if arr.dtype != np.dtype(plan.dtypes[name]):
            raise EdgebenchError(f"{what} array {name!r} is {arr.dtype} but the model's input is "
                                 f"{plan.dtypes[name]}: convert it (array.astype('{plan.dtypes[name]}'))",
                                 ExitStatus.DATA_MISMATCH)
        want = plan.sample_shape(name)
        if arr.ndim == 0 or tuple(arr.shape[1:]) != want:
            raise EdgebenchError(f"{what} array {name!r} has samples of shape {list(arr.shape[1:])} but the "
                                 f"model's input {name!r} takes {list(want)} per sample: reshape the data or "
                                 "pass --shape for dynamic dimensions", ExitStatus.DATA_MISMATCH)
        if len(arr) == 0:
            raise EdgebenchError(f"{what} array {name!r} holds no samples", ExitStatus.DATA_MISMATCH)
        arrays[name] = arr
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise EdgebenchError(f"{what} {path}: arrays hold different sample counts {sorted(lengths)}: "
                             "give every input the same number of samples", ExitStatus.DATA_MISMATCH)
    labels = raw.get("labels")
    if labels is not None and len(labels) != lengths.pop():
        raise EdgebenchError(f"{what} {path}: {len(labels)} labels for {len(next(iter(arrays.values())))} "
                             "samples: give one label per sample", ExitStatus.DATA_MISMATCH)
    return Dataset(Path(path), arrays, labels)
