"""Input data for a run: datasets and calibration sets (.npz), or seeded random inputs.

An ``.npz`` holds one array per model input keyed by the input's name (a single-input model may use
``inputs``), samples on axis 0, and optionally ``labels``. Inputs whose axis 0 is the batch are
"batched": the runner stacks ``batch`` samples per feed. Others (a scalar sample rate, a state with
its batch on another axis) are "per-sample": each sample is one whole model input. A dataset settles
dynamic dimensions (-1, symbolic or unknown) from its arrays; without one they need ``--shape``.
Random inputs say where their values came from: an option, what the graph shows (input_domains), or
a default; an integer input with none of these is refused rather than fed values it may not take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.data.domains import InputDomain
from edgebench.data.source import Dim, TensorSpec, require_file

DEFAULT_RANDOM_BATCHES = 8


@dataclass
class InputPlan:
    """How to feed a model: concrete per-input shapes, which inputs carry the batch on axis 0, and the
    values random inputs take (``origins`` says why: an option, what the graph shows, or a default)."""

    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    batched: set[str]
    batch: int
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    @property
    def per_sample(self) -> list[str]:
        return sorted(set(self.shapes) - self.batched)

    def sample_shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[name][1:] if name in self.batched else self.shapes[name]

    def adopt(self, domains: Mapping[str, InputDomain]) -> None:
        """Take the graph's valid values for the integer inputs the user left open."""
        for name, domain in domains.items():
            if name not in self.dtypes or name in self.ranges or name in self.values:
                continue
            self.origins[name] = f"graph: {domain.reason}"
            if domain.value is not None:
                self.values[name] = domain.value
            elif domain.low is not None and domain.high is not None:
                self.ranges[name] = (domain.low, domain.high)

    def value_range(self, name: str) -> tuple[float, float]:
        """[low, high) of the random values of ``name``; an integer input needs one set or inferred."""
        if name in self.ranges:
            return self.ranges[name]
        kind = np.dtype(self.dtypes[name]).kind
        if kind in "fb":
            return (0, 1) if kind == "f" else (0, 2)
        why = self.origins.get(name, "").removeprefix("graph: ")
        why = f" (it {why})" if why else ""
        raise EdgebenchError(f"input {name!r} is {self.dtypes[name]} and edgebench cannot tell its valid values"
                             f"{why}: pass --input-range {name}:LOW:HIGH (e.g. {name}:0:10), --input-value "
                             f"{name}=VALUE, or --dataset", ExitStatus.DATA_MISMATCH)

    def describe(self, from_dataset: bool) -> dict[str, dict[str, Any]]:
        """Where each input's data came from, for the result: the dataset, fixed values or random ranges."""
        if from_dataset:
            return {name: {"source": "dataset"} for name in self.shapes}
        described: dict[str, dict[str, Any]] = {}
        for name, dtype in self.dtypes.items():
            integer = np.dtype(dtype).kind in "iub"
            if name in self.values:
                value = self.values[name]
                described[name] = {"source": "fixed", "value": int(value) if integer else value}
            else:
                low, high = self.value_range(name)
                described[name] = {"source": "random",
                                   "range": [int(low), int(high)] if integer else [float(low), float(high)]}
            described[name]["why"] = self.origins.get(name, "default")
        return described


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``name:1x3x224x224`` → (name, (1, 3, 224, 224))."""
    name, sep, dims = text.rpartition(":")
    try:
        shape = tuple(int(d) for d in dims.lower().split("x")) if dims else ()
    except ValueError:
        shape = ()
    if not sep or not name or not shape or any(d <= 0 for d in shape):
        raise EdgebenchError(f"bad --shape {text!r}: write NAME:DxDx… with sizes above 0 (e.g. "
                             "input:1x3x224x224)", ExitStatus.DATA_MISMATCH)
    return name, shape


def plan_inputs(inputs: Sequence[TensorSpec], batch: int | None = None,
                shapes: Mapping[str, tuple[int, ...]] | None = None,
                ranges: Mapping[str, tuple[float, float]] | None = None,
                values: Mapping[str, float] | None = None,
                data: Mapping[str, tuple[int, ...]] | None = None, what: str = "dataset") -> InputPlan:
    """Resolve dynamic dimensions: ``shapes`` (--shape) first, then the per-sample shapes of a dataset's
    arrays (``data``: input → array shape, samples on axis 0); a named dimension sized there has that size
    in every input that names it (token ids and their mask share ``sequence``); a dynamic axis 0 left
    over takes ``batch`` (default 1)."""
    shapes, data = dict(shapes or {}), dict(data or {})
    names = {i.name for i in inputs}
    for given in list(shapes) + list(ranges or {}) + list(values or {}):
        if given not in names:
            raise EdgebenchError(f"the model has no input {given!r} (inputs: {', '.join(sorted(names))}): "
                                 "fix the input name", ExitStatus.DATA_MISMATCH)
    batched = {spec.name for spec in inputs if _batched(spec, batch, data.get(spec.name), what)}
    resolved: dict[str, tuple[int, ...]] = {}
    bound: dict[str, int] = {}
    unsized: list[TensorSpec] = []
    for spec in sorted(inputs, key=lambda s: s.name not in shapes and s.name not in data):
        if spec.name in shapes:
            shape = _checked(spec, shapes[spec.name], batch)
        elif spec.name in data:
            sample = tuple(data[spec.name][1:])
            known = ((batch or 1,) + sample) if spec.name in batched else sample
            shape = tuple(d if isinstance(d, int) else s for d, s in zip(spec.shape, known))
        else:
            sizes = [d if isinstance(d, int) else bound.get(d) if d in bound else (batch or 1) if axis == 0
                     else None for axis, d in enumerate(spec.shape)]
            if None in sizes:
                unsized.append(spec)
            shape = tuple(d or 0 for d in sizes)
        resolved[spec.name] = shape
        bound.update({d: n for d, n in zip(spec.shape, shape) if isinstance(d, str) and n and d not in bound})
    if unsized:
        raise unsized_error(unsized, batch)
    batch_sizes = {resolved[n][0] for n in batched}
    if len(batch_sizes) > 1:
        raise EdgebenchError(f"inputs disagree on the batch size ({sorted(batch_sizes)}): give every "
                             "batched input the same first dimension", ExitStatus.DATA_MISMATCH)
    origins = {**{n: "--input-range" for n in ranges or {}}, **{n: "--input-value" for n in values or {}}}
    return InputPlan({i.name: resolved[i.name] for i in inputs}, {i.name: i.dtype for i in inputs}, batched,
                     batch_sizes.pop() if batch_sizes else 1, dict(ranges or {}), dict(values or {}), origins)


def check_shapes(inputs: Sequence[TensorSpec], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a --shape naming no input, or one that changes the input's rank or fixed sizes, before any
    conversion takes it."""
    by_name = {i.name: i for i in inputs}
    for name, shape in shapes.items():
        if name not in by_name:
            raise EdgebenchError(f"the model has no input {name!r} (inputs: {', '.join(sorted(by_name))}): "
                                 "fix the input name in --shape", ExitStatus.DATA_MISMATCH)
        _checked(by_name[name], shape, None)


def _batched(spec: TensorSpec, batch: int | None, have: tuple[int, ...] | None, what: str) -> bool:
    """Whether the runner stacks samples along the input's axis 0. A dataset says it by rank: an array of
    the input's rank holds samples along axis 0; one more axis holds whole inputs (a recurrent state
    with its batch elsewhere, a scalar rate). Without one, a dynamic axis 0 or one equal to the batch."""
    rank = len(spec.shape)
    if have is None:
        return rank > 0 and (not isinstance(spec.shape[0], int) or spec.shape[0] == (batch or 1))
    if len(have) not in (rank, rank + 1):
        raise EdgebenchError(f"{what} array {spec.name!r} has samples of shape {list(have[1:])} but the model's "
                             f"input {spec.name!r} is {_fmt(spec.shape)}: save the samples on axis 0, each of the "
                             "input's shape without its batch axis (or each a whole input)", ExitStatus.DATA_MISMATCH)
    in_batch = len(have) == rank and rank > 0
    if in_batch and batch is not None and isinstance(spec.shape[0], int) and spec.shape[0] != batch:
        raise EdgebenchError(f"input {spec.name!r} has a fixed batch of {spec.shape[0]} ({_fmt(spec.shape)}): "
                             "drop --batch or pass a model with a dynamic batch", ExitStatus.DATA_MISMATCH)
    return in_batch


def _checked(spec: TensorSpec, shape: tuple[int, ...], batch: int | None) -> tuple[int, ...]:
    """A --shape, refused unless it has the input's rank and keeps its fixed sizes."""
    if len(shape) != len(spec.shape) or any(isinstance(d, int) and d != s for d, s in zip(spec.shape, shape)):
        raise EdgebenchError(f"--shape {spec.name}:{'x'.join(map(str, shape))} does not fit the model's "
                             f"{_fmt(spec.shape)}: give {len(spec.shape)} sizes and keep the fixed dimensions (e.g. "
                             f"--shape {_shape_hint(spec, batch)})", ExitStatus.DATA_MISMATCH)
    return tuple(shape)


def unsized_error(specs: Sequence[TensorSpec], batch: int | None) -> EdgebenchError:
    """Inputs with dynamic dimensions past the batch and nothing to size them: name the --shape to write."""
    which = ", ".join(f"{s.name!r} {_fmt(s.shape)}" for s in specs)
    covered: set[object] = set()
    needed = []  # one --shape sizes a named dimension in every input: skip inputs whose names are covered
    for s in specs:
        dynamic = [d for d in s.shape[1:] if not isinstance(d, int)]
        if not all(isinstance(d, str) and d in covered for d in dynamic):
            needed.append(s)
            covered.update(dynamic)
    hints = " ".join(f"--shape {_shape_hint(s, batch)}" for s in needed)
    holders = sorted({_placeholder(d, axis) for s in needed for axis, d in enumerate(s.shape)
                      if axis and not isinstance(d, int)})
    return EdgebenchError(f"dynamic dimensions need sizes: input{'s' * (len(specs) > 1)} {which}: pass {hints} "
                          f"with a size to run in place of each placeholder ({', '.join(holders)}), or --dataset to "
                          "take them from the data", ExitStatus.DATA_MISMATCH)


def _placeholder(dim: Dim, axis: int) -> str:
    """A name to write in place of a dynamic size: the model's own when it reads as one, else D<axis>.
    Never one with an x in it, which --shape would read as a separator."""
    name = str(dim or "")
    return name.upper() if name.isidentifier() and "x" not in name.lower() and len(name) <= 16 else f"D{axis}"


def _shape_hint(spec: TensorSpec, batch: int | None) -> str:
    dims = [str(d) if isinstance(d, int) else str(batch or 1) if axis == 0 else _placeholder(d, axis)
            for axis, d in enumerate(spec.shape)]
    return f"{spec.name}:{'x'.join(dims)}"


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
        if dt.kind not in "fiub":
            raise EdgebenchError(f"input {name!r} has dtype {dtype}, which random inputs cannot make: "
                                 "pass --dataset", ExitStatus.DATA_MISMATCH)
        if name in plan.values:
            arrays[name] = np.full(shape, plan.values[name], dtype=dt)
            continue
        low, high = plan.value_range(name)
        if dt.kind == "f":
            arrays[name] = rng.uniform(low, high, size=shape).astype(dt)
        else:
            arrays[name] = rng.integers(int(low), int(high), size=shape, endpoint=False).astype(dt)
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


def _keyed(raw: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """A single-input model's data may be saved under ``inputs``."""
    if len(names) == 1 and names[0] not in raw and "inputs" in raw:
        raw[names[0]] = raw.pop("inputs")
    return raw


def plan_dataset(path: str | Path, inputs: Sequence[TensorSpec], batch: int | None = None,
                 shapes: Mapping[str, tuple[int, ...]] | None = None,
                 ranges: Mapping[str, tuple[float, float]] | None = None,
                 values: Mapping[str, float] | None = None, what: str = "dataset") -> tuple[InputPlan, Dataset]:
    """Plan the inputs from a dataset (dynamic dimensions that ``shapes`` leaves open come from its
    arrays) and load it, refused unless it fits."""
    names = [i.name for i in inputs]
    raw = _keyed(load_npz(path, what), names)
    plan = plan_inputs(inputs, batch, shapes, ranges, values,
                       data={k: v.shape for k, v in raw.items() if k in names}, what=what)
    return plan, load_dataset(path, plan, what, raw)


def load_dataset(path: str | Path, plan: InputPlan, what: str = "dataset",
                 raw: dict[str, np.ndarray] | None = None) -> Dataset:
    """Read an .npz (unless ``raw`` holds it already) and refuse it, naming the input, unless every array
    fits the plan."""
    names = list(plan.shapes)
    raw = _keyed(load_npz(path, what) if raw is None else raw, names)
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
