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

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.data.domains import InputDomain
from edgebench.data.npz import ArrayHeader, load_arrays, read_headers
from edgebench.data.source import Dim, TensorSpec

DEFAULT_RANDOM_BATCHES = 8
T = TypeVar("T")
MAX_DIM = 2**31 - 1  # the largest size a --shape may give (converters and runtimes keep sizes in int32)
MAX_FEED_BYTES = 2 * 1024**3  # one feed (a batch of every input) larger than this is refused up front


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
    if not sep or not name or not shape or any(not 0 < d <= MAX_DIM for d in shape):
        raise EdgebenchError(f"bad --shape {text!r}: write NAME:DxDx… with sizes above 0 and below 2^31 (e.g. "
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
    _check_feed_size(inputs, resolved)
    origins = {**{n: "--input-range" for n in ranges or {}}, **{n: "--input-value" for n in values or {}}}
    return InputPlan({i.name: resolved[i.name] for i in inputs}, {i.name: i.dtype for i in inputs}, batched,
                     batch_sizes.pop() if batch_sizes else 1, dict(ranges or {}), dict(values or {}), origins)


def _check_feed_size(inputs: Sequence[TensorSpec], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse sizes whose one feed could not be held in memory (a typo'd --shape or --batch) before numpy
    tries to allocate it."""
    sizes = {i.name: math.prod(shapes[i.name]) * _itemsize(i.dtype) for i in inputs}
    if sum(sizes.values()) > MAX_FEED_BYTES:
        name = max(sizes, key=lambda n: sizes[n])
        raise EdgebenchError(f"one feed at these sizes holds {sum(sizes.values()) / 1024**3:,.1f} GiB (input {name!r} "
                             f"is {list(shapes[name])}), more than edgebench's limit of {MAX_FEED_BYTES // 1024**3} "
                             "GiB: lower --shape or --batch", ExitStatus.DATA_MISMATCH)


def _itemsize(dtype: str) -> int:
    try:
        return np.dtype(dtype).itemsize or 1
    except TypeError:  # a dtype numpy does not know (a string tensor): count a pointer
        return 8


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
        _check_fits(plan, name, dt)
        if name in plan.values:
            arrays[name] = np.full(shape, plan.values[name], dtype=dt)
            continue
        low, high = plan.value_range(name)
        try:
            if dt.kind == "f":
                arrays[name] = rng.uniform(low, high, size=shape).astype(dt)
            else:
                arrays[name] = rng.integers(int(low), int(high), size=shape, endpoint=False).astype(dt)
        except MemoryError:
            raise EdgebenchError(f"random inputs of shape {list(shape)} for {name!r} do not fit in this machine's "
                                 "memory: lower --shape or --batch, or pass --dataset", ExitStatus.DATA_MISMATCH) from None
    return arrays


def _check_fits(plan: InputPlan, name: str, dt: np.dtype[Any]) -> None:
    """A fixed value or random range the input's dtype cannot hold (int8 with 0:1000, a range holding no
    integer) is refused, naming the input, rather than wrapped around or left to a numpy traceback."""
    if dt.kind == "f":
        top = float(np.finfo(dt).max)
        low, high = (plan.values[name],) * 2 if name in plan.values else plan.value_range(name)
        if not -top <= low <= high <= top or not math.isfinite(high - low):
            raise EdgebenchError(f"the values [{low:g}, {high:g}] given for input {name!r} do not fit its {dt} "
                                 f"(±{top:g}): fix --input-range or --input-value", ExitStatus.DATA_MISMATCH)
        return
    lo, hi = (0, 1) if dt.kind == "b" else (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
    if name in plan.values:
        value = plan.values[name]
        if not lo <= value <= hi:
            raise EdgebenchError(f"--input-value {name}={value:g} does not fit the input's {dt} (values {lo} to {hi}):"
                                 " pick a value in that range", ExitStatus.DATA_MISMATCH)
        return
    low, high = plan.value_range(name)
    if int(low) >= int(high) or int(low) < lo or int(high) - 1 > hi:
        raise EdgebenchError(f"the range [{low:g}, {high:g}) of input {name!r} does not fit its {dt} (values {lo} to "
                             f"{hi}, and the range must hold an integer): fix --input-range {name}:LOW:HIGH",
                             ExitStatus.DATA_MISMATCH)


@dataclass
class Dataset:
    path: Path
    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None

    def __len__(self) -> int:
        return min(len(a) for a in self.arrays.values())


Classes = tuple[str, int]  # the scored output's name and its number of class scores


def scored_classes(outputs: Sequence[TensorSpec], output: str | None = None) -> Classes | None:
    """How many classes the labels of a dataset may name: the fixed size of the scored output (``output``,
    default the first) when it is one score row per sample ([N, C] or [N, 1, 1, C], C ≥ 2); None when the
    model does not say (a dynamic size, or no such output)."""
    spec = next((o for o in outputs if o.name == output), None) if output else next(iter(outputs), None)
    if spec is None:
        return None
    rest = [d for d in spec.shape[1:] if d != 1]
    return (spec.name, rest[0]) if len(rest) == 1 and isinstance(rest[0], int) and rest[0] >= 2 else None


def check_output(outputs: Sequence[TensorSpec], output: str | None) -> None:
    """Refuse, before anything runs, an ``output`` to score (--output) that is none of the model's ``outputs``."""
    if output is not None and output not in {o.name for o in outputs}:
        raise EdgebenchError(f"the model has no output {output!r} (its outputs: {', '.join(o.name for o in outputs)}"
                             "): pass one of them to --output (or the spec's output)", ExitStatus.DATA_MISMATCH)


def _keyed(raw: dict[str, T], names: list[str]) -> dict[str, T]:
    """A single-input model's data may be saved under ``inputs``."""
    if len(names) == 1 and names[0] not in raw and "inputs" in raw:
        raw[names[0]] = raw.pop("inputs")
    return raw


def plan_dataset(path: str | Path, inputs: Sequence[TensorSpec], batch: int | None = None,
                 shapes: Mapping[str, tuple[int, ...]] | None = None,
                 ranges: Mapping[str, tuple[float, float]] | None = None,
                 values: Mapping[str, float] | None = None, what: str = "dataset",
                 outputs: Sequence[TensorSpec] = (), output: str | None = None,
                 labels: bool = True) -> tuple[InputPlan, Dataset]:
    """Plan the inputs from a dataset (dynamic dimensions that ``shapes`` leaves open come from its
    arrays) and load it, refused unless it fits; the planning reads only the arrays' headers. ``outputs``
    and ``output``: the model's outputs and the scored one, whose class count bounds the labels;
    ``labels`` False: the labels are not read (a calibration set's)."""
    names = [i.name for i in inputs]
    headers = _keyed(read_headers(path, what), names)
    plan = plan_inputs(inputs, batch, shapes, ranges, values,
                       data={k: v.shape for k, v in headers.items() if k in names}, what=what)
    return plan, load_dataset(path, plan, what, headers, scored_classes(outputs, output), labels)


def load_dataset(path: str | Path, plan: InputPlan, what: str = "dataset",
                 headers: dict[str, ArrayHeader] | None = None, classes: Classes | None = None,
                 labels: bool = True) -> Dataset:
    """Read an .npz and refuse it, naming the array, unless every array fits the plan (checked on the
    headers, before any data is read), every float holds finite values, and the labels (``labels``) are
    one integer class index per sample, in [0, C) where ``classes`` gives C."""
    names = list(plan.shapes)
    headers = _keyed(read_headers(path, what) if headers is None else headers, names)
    for name in names:
        _check_array(path, name, headers, plan, what)
    lengths = {len(headers[n]) for n in names}
    if len(lengths) > 1:
        raise EdgebenchError(f"{what} {path}: arrays hold different sample counts {sorted(lengths)}: "
                             "give every input the same number of samples", ExitStatus.DATA_MISMATCH)
    wanted = {n: headers[n] for n in names}
    if labels and "labels" in headers and "labels" not in names:  # a model input named labels is an input
        _check_labels_header(path, headers["labels"], lengths.pop(), what)
        wanted["labels"] = headers["labels"]
    arrays = load_arrays(path, wanted, what)
    for name in names:
        check_finite(path, name, arrays[name], what)
    found = arrays.pop("labels") if "labels" in wanted and "labels" not in names else None
    if found is not None:
        _check_label_values(path, found, classes, what)
    return Dataset(Path(path), arrays, found)


def _check_array(path: str | Path, name: str, headers: Mapping[str, ArrayHeader], plan: InputPlan, what: str) -> None:
    if name not in headers:
        have = ", ".join(sorted(k for k in headers if k != "labels")) or "nothing"
        raise EdgebenchError(f"{what} {path} has no array for input {name!r} (it has: {have}): "
                             "save one array per model input, keyed by the input's name", ExitStatus.DATA_MISMATCH)
    header = headers[name]
    if header.dtype != np.dtype(plan.dtypes[name]):
        raise EdgebenchError(f"{what} array {name!r} is {header.dtype} but the model's input is "
                             f"{plan.dtypes[name]}: convert it (array.astype('{plan.dtypes[name]}'))",
                             ExitStatus.DATA_MISMATCH)
    want = plan.sample_shape(name)
    if not header.shape or header.shape[1:] != want:
        raise EdgebenchError(f"{what} array {name!r} has samples of shape {list(header.shape[1:])} but the "
                             f"model's input {name!r} takes {list(want)} per sample: reshape the data or "
                             "pass --shape for dynamic dimensions", ExitStatus.DATA_MISMATCH)
    if len(header) == 0:
        raise EdgebenchError(f"{what} array {name!r} holds no samples: save at least one",
                             ExitStatus.DATA_MISMATCH)


def _check_labels_header(path: str | Path, header: ArrayHeader, samples: int, what: str) -> None:
    if len(header.shape) != 1:
        raise EdgebenchError(f"{what} {path}: labels have the shape {list(header.shape)}: save one integer class "
                             f"index per sample, shape [{samples}] (one-hot or score rows: labels.argmax(axis=1))",
                             ExitStatus.DATA_MISMATCH)
    if header.dtype.kind not in "iu":
        raise EdgebenchError(f"{what} {path}: labels are {header.dtype}, not integer class indices: save them as "
                             "integers (labels.astype('int64'), after checking they are whole numbers)",
                             ExitStatus.DATA_MISMATCH)
    if len(header) != samples:
        raise EdgebenchError(f"{what} {path}: {len(header)} labels for {samples} samples: give one label per "
                             "sample", ExitStatus.DATA_MISMATCH)


def _check_label_values(path: str | Path, labels: np.ndarray, classes: Classes | None, what: str) -> None:
    negative = np.flatnonzero(labels < 0)
    if len(negative):
        i = int(negative[0])
        raise EdgebenchError(f"{what} {path}: label {int(labels[i])} of sample {i} is negative ({len(negative)} "
                             "labels are): class indices count from 0 — fix the labels", ExitStatus.DATA_MISMATCH)
    if classes is None:
        return
    output, count = classes
    above = np.flatnonzero(labels >= count)
    if len(above):
        i = int(above[0])
        raise EdgebenchError(f"{what} {path}: label {int(labels[i])} of sample {i} is outside the {count} classes "
                             f"of output {output!r} (0 to {count - 1}; {len(above)} labels are outside): fix the "
                             "labels, or score the output that holds the class scores (--output)",
                             ExitStatus.DATA_MISMATCH)


def check_finite(path: str | Path, name: str, array: np.ndarray, what: str) -> None:
    """NaN or Inf inputs make accuracy meaningless and break calibration (a NaN range): refuse them."""
    if array.dtype.kind not in "fc" or bool(np.isfinite(array).all()):
        return
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    samples = np.flatnonzero(bad)
    every = " (every sample)" if len(samples) == len(array) else ""
    raise EdgebenchError(f"{what} {path}: array {name!r} holds NaN or Inf values in {len(samples)} of "
                         f"{len(array)} samples{every}, first sample {int(samples[0])}: replace or drop those "
                         "samples (numpy.isfinite(array).all() must hold)", ExitStatus.DATA_MISMATCH)
