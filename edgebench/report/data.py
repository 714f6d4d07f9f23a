"""What every report shows, computed once from Result records: cells per device, the best cell and its
caveats, the Pareto fronts, the device × variant matrix with each cell's change against fp32, latency
distributions from raw samples, artifact sizes, flags and environment.

The HTML, Markdown and CSV views only lay this out, so the three never disagree on a number.
Distributions are recomputed from ``samples_ns`` (never from stored aggregates).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from edgebench.result import CellKey, Result, utc_now
from edgebench.pipeline.noise import NoiseFloor, floor_of
from edgebench.pipeline.stats import nearest_rank
from edgebench.store.base import RunInfo

QUANTILES = tuple(range(2, 100, 2))  # the dots of a distribution strip


@dataclass(frozen=True)
class Distribution:
    """Milliseconds: box q1–q3 with the median, whiskers p1–p99, the extremes, and quantile dots."""

    min: float
    p1: float
    q1: float
    median: float
    q3: float
    p99: float
    max: float
    dots: tuple[float, ...]

    @classmethod
    def from_samples(cls, samples_ns: Sequence[int]) -> "Distribution | None":
        if not samples_ns:
            return None
        ms = sorted(s / 1e6 for s in samples_ns)
        q = lambda p: nearest_rank(ms, p)  # noqa: E731
        return cls(min=ms[0], p1=q(1), q1=q(25), median=q(50), q3=q(75), p99=q(99), max=ms[-1],
                   dots=tuple(q(p) for p in QUANTILES))


@dataclass
class Cell:
    result: Result
    options: str  # the options that differ between the report's cells
    with_model: bool = True  # False when the report holds one model: labels then skip its name
    accuracy: float | None = None
    best: bool = False
    on_front: bool = False
    distribution: Distribution | None = None
    slower_than_fp32: float | None = None  # an int8 cell's p50 over its fp32 cell's, when int8 is the slower
    vs_fp32: float | None = None  # p50 / p50 of the fp32 cell of the same model, format and options, minus 1
    accuracy_vs_fp32: float | None = None  # accuracy minus that fp32 cell's (a fraction: -0.004 = -0.4 points)
    caveats: list["Caveat"] = field(default_factory=list)  # a best cell's: what to know before trusting the pick

    @property
    def precision(self) -> str:
        return str(self.result.model.precision)

    @property
    def model(self) -> str:
        return str(self.result.model.name)

    @property
    def recipe(self) -> str:
        return str(self.result.model.recipe)

    @property
    def format(self) -> str:
        return str(self.result.model.format)

    @property
    def label(self) -> str:
        return " · ".join(x for x in (self.model if self.with_model else "", self.recipe, self.format,
                                      self.options) if x)

    @property
    def p50(self) -> float | None:
        return self.result.p50

    @property
    def error(self) -> str:
        err = self.result.error
        kind, message = (err.kind, err.message) if err is not None else ("error", "")
        return f"{kind}: {message}".strip(": ")

    @property
    def problems(self) -> list[str]:
        """Why the measurement cannot be trusted (``validity_problems``); empty for a valid one."""
        return validity_problems(self.result)

    @property
    def notes(self) -> list[str]:
        """What a user picking this cell should know that is not a validity problem."""
        if self.slower_than_fp32 is None:
            return []
        return [f"{self.precision} {self.slower_than_fp32:.2f}× slower than fp32"]


@dataclass(frozen=True)
class Caveat:
    """One thing to know about a best pick; ``warn``: it weakens the pick (a flag failed, the margin is noise)."""

    text: str
    warn: bool


@dataclass
class DeviceView:
    name: str
    cells: list[Cell]
    metric: str | None  # "top1" or "agreement_top1": the accuracy plotted and used to pick the best
    environment: dict[str, Any]
    runtimes: list[str]
    noise_floor: NoiseFloor | None = None  # between the store's runs (pipeline/noise.py); None: not from a store


@dataclass
class Artifact:
    model: str
    recipe: str
    format: str
    precision: str
    size_bytes: int | None
    gzip_bytes: int | None


@dataclass
class MatrixRow:
    """One variant (model, recipe, format, options) across the devices: its cell on each, where measured."""

    model: str
    recipe: str
    format: str
    options: str
    cells: dict[str, Cell]  # by device name

    def name(self, with_model: bool) -> str:
        """``recipe · format · options``, the model first when the report holds several."""
        return " · ".join(x for x in (self.model if with_model else "", self.recipe, self.format, self.options) if x)


@dataclass
class ReportData:
    title: str
    run: RunInfo | None
    devices: list[DeviceView]
    artifacts: list[Artifact]
    common_options: str
    max_accuracy_drop: float
    generated_utc: str = field(default_factory=utc_now)

    @property
    def drop_text(self) -> str:
        points = self.max_accuracy_drop * 100
        return f"{points:.3g} point{'' if points == 1 else 's'}"

    @property
    def cells(self) -> list[Cell]:
        return [c for d in self.devices for c in d.cells]

    @property
    def errors(self) -> list[Cell]:
        return [c for c in self.cells if not c.result.ok]

    @property
    def matrix(self) -> list[MatrixRow]:
        """Device × variant, the variants by model, format, then recipe (fp32 first) and options."""
        rows: dict[tuple[str, str, str, str], MatrixRow] = {}
        for view in self.devices:
            for c in view.cells:
                key = (c.model, c.format, c.recipe, c.options)
                rows.setdefault(key, MatrixRow(c.model, c.recipe, c.format, c.options, {})).cells[view.name] = c
        return [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1], k[2] != "fp32", k[2], k[3]))]


def validity_problems(result: Result) -> list[str]:
    """Each failed validity flag in words, with the figure and the limit from the result itself (its
    ``timing`` holds the rules it ran under): ``noisy (rCV 14.2% > 10%)``, ``too few iterations (37 < 100)``,
    ``too short (0.41 s < 1 s)``, then ``hit max duration (10 s)`` when that is why a minimum was missed,
    and ``throttled``. Empty for a valid measurement (or one recorded without flags)."""
    flags, rules = result.validity, result.timing

    def limit(key: str, text: str) -> str:
        return f" ({text.format(rules[key])})" if rules.get(key) is not None else ""

    found = []
    if flags.cv_ok is False:
        rcv = result.latency_ms.robust_cv if result.latency_ms else None
        found.append("noisy" + (f" (rCV {rcv:.1%} > {rules['cv_threshold'] * 100:g}%)"
                                if rcv is not None and rules.get("cv_threshold") is not None else ""))
    if flags.min_iterations_met is False:
        found.append("too few iterations" + limit("min_iterations", f"{result.iterations} < {{}}"))
    if flags.min_duration_met is False:
        found.append("too short" + limit("min_duration_s", f"{result.duration_s:.3g} s < {{:g}} s"))
    if flags.stopped_by_max_duration and (flags.min_iterations_met is False or flags.min_duration_met is False):
        found.append("hit max duration" + limit("max_duration_s", "{:g} s"))
    if flags.throttled:
        found.append("throttled")
    return found


def _format_options(options: dict[str, Any], keys: Sequence[str]) -> str:
    """``threads=1 batch=4``; shapes only when the batch does not already explain them."""
    parts = []
    for key in keys:
        value = options.get(key)
        if value is None or (key == "shapes" and "batch" in keys):
            continue
        if isinstance(value, dict):  # shapes (name=1x28x28) or backend options (execution_providers=A+B)
            join = "x" if key == "shapes" else "+"
            value = ",".join(f"{k}={join.join(map(str, v)) if isinstance(v, list) else v}" for k, v in value.items())
        parts.append(f"{key}={value}")
    return " ".join(parts)


def pareto_front(points: Sequence[tuple[float, float]]) -> set[int]:
    """Indexes of the points no other point beats on both lower latency (x) and higher accuracy (y)."""
    front, best_y = set(), float("-inf")
    for i in sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1])):
        if points[i][1] > best_y:
            front.add(i)
            best_y = points[i][1]
    return front


def int8_slowdowns(results: Sequence[Result]) -> list[float | None]:
    """Per result, its p50 over the p50 of the fp32 cell of the same model, format, device and options when it
    is an int8 cell and the slower of the two, else None. People pick int8 for speed; on a CPU without VNNI
    or a runtime without int8 kernels it can be the slower variant, and a report must say so."""
    def key(r: Result) -> CellKey:  # the cell's key, its recipe aside: the fp32 cell an int8 cell is set against
        return dataclasses.replace(r.cell_key, recipe="")

    def p50(r: Result) -> float | None:
        return r.p50 if r.ok else None

    fp32 = {key(r): p for r in results if r.model.recipe == "fp32" and (p := p50(r)) is not None}
    out: list[float | None] = []
    for r in results:
        mine, ref = p50(r), fp32.get(key(r))
        slower = (str(r.model.precision).startswith("int8") and mine is not None and ref is not None
                  and mine > ref)
        out.append(mine / ref if slower and mine is not None and ref else None)
    return out


def _known(value: float | None) -> float:
    """A figure the caller has filtered for (the p50 of a measured cell, the accuracy of a scored one)."""
    assert value is not None
    return value


def _fp32_references(cells: Sequence[Cell]) -> None:
    """Set each measured cell's change against the fp32 cell of its model, format, device and options."""
    def key(c: Cell) -> CellKey:
        return dataclasses.replace(c.result.cell_key, recipe="")

    fp32 = {key(c): c for c in cells if c.recipe == "fp32"}
    for c, ratio in zip(cells, int8_slowdowns([c.result for c in cells])):
        c.slower_than_fp32 = ratio
        ref = fp32.get(key(c))
        if ref is None or ref.p50 is None or c.p50 is None:
            continue
        c.vs_fp32 = c.p50 / ref.p50 - 1
        if c.accuracy is not None and ref.accuracy is not None:
            c.accuracy_vs_fp32 = c.accuracy - ref.accuracy


def best_caveats(best: Cell, runner_up: Cell | None, metric: str | None, floor: NoiseFloor | None) -> list[Caveat]:
    """What a user should know before trusting a best pick: its validity flags, whether its lead over the
    next candidate is larger than the device's noise between runs, and what it was picked on."""
    problems = best.problems
    out = [Caveat("not a valid measurement: " + ", ".join(problems), True) if problems else
           Caveat("valid measurement", False)]
    if runner_up is None:
        out.append(Caveat("the only candidate: nothing to beat", False))
    else:
        lead = _known(runner_up.p50) / _known(best.p50) - 1
        ahead = f"{lead:.1%} ahead of {runner_up.label}"
        if floor is None or floor.floor is None:
            why = floor.describe() if floor is not None else "no stored runs to tell noise from"
            out.append(Caveat(f"{ahead}; {why}: the margin cannot be told from noise between runs (run again "
                              "or measure both with `edgebench ab`)", True))
        elif lead <= floor.floor:
            out.append(Caveat(f"{ahead}, within the noise floor {floor.floor:.1%}: a tie — `edgebench ab` "
                              "decides it", True))
        else:
            out.append(Caveat(f"{ahead}, beyond the noise floor {floor.floor:.1%}", False))
    if metric is None:
        out.append(Caveat("no accuracy measured: picked on speed alone", True))
    return out + [Caveat(n, True) for n in best.notes]


def _device_view(name: str, cells: list[Cell], max_drop: float, floor: NoiseFloor | None) -> DeviceView:
    ok = [c for c in cells if c.result.ok and c.p50 is not None]
    metric = next((m for m in ("top1", "agreement_top1") if any(c.result.accuracy.metric(m) is not None for c in ok)),
                  None)
    for c in ok:
        c.accuracy = c.result.accuracy.metric(metric) if metric else None
        c.distribution = Distribution.from_samples(c.result.samples_ns)
    _fp32_references(ok)
    scored = [c for c in ok if c.accuracy is not None]
    for i in pareto_front([(_known(c.p50), _known(c.accuracy)) for c in scored]):
        scored[i].on_front = True
    for model in {c.model for c in ok}:
        mine = [c for c in (scored or ok) if c.model == model]
        if mine and metric:
            ceiling = max(_known(c.accuracy) for c in mine)
            mine = [c for c in mine if _known(c.accuracy) >= ceiling - max_drop]
        if mine:
            first, *rest = sorted(mine, key=lambda c: _known(c.p50))
            first.best = True
            first.caveats = best_caveats(first, rest[0] if rest else None, metric, floor)
    env = next((c.result.environment for c in ok), cells[0].result.environment)
    runtimes = sorted({f"{c.result.runtime.get('name')} {c.result.runtime.get('version')}"
                       for c in cells if c.result.runtime})
    order = sorted(ok, key=lambda c: _known(c.p50)) + [c for c in cells if c not in ok]
    return DeviceView(name=name, cells=order, metric=metric, environment=env, runtimes=runtimes, noise_floor=floor)


def build_report(results: Sequence[Result], run: RunInfo | None = None, max_accuracy_drop: float = 0.01,
                 title: str | None = None, floors: Mapping[str, NoiseFloor] | None = None) -> ReportData:
    """Group by device; the best cell per (device, model) is the fastest p50 whose accuracy is within
    ``max_accuracy_drop`` of that model's most accurate cell on the device. ``floors``: the store's noise floors
    per device (a device without A/A history shows that)."""
    keys = sorted({k for r in results for k in r.options})
    varying = [k for k in keys if len({json.dumps(r.options.get(k), sort_keys=True) for r in results}) > 1]
    common = [k for k in keys if k not in varying and k != "shapes"]
    several_models = len({r.model.name for r in results}) > 1
    by_device: dict[str, list[Cell]] = {}
    for r in results:
        cell = Cell(r, _format_options(r.options, varying), with_model=several_models)
        by_device.setdefault(str(r.device.profile), []).append(cell)
    devices = [_device_view(name, cells, max_accuracy_drop, floor_of(floors, name) if floors is not None else None)
               for name, cells in by_device.items()]
    artifacts: dict[tuple[str, ...], Artifact] = {}
    for r in results:
        m = r.model
        key = (str(m.name), str(m.recipe), str(m.format), str(m.precision))
        if m.size_bytes and (r.ok or key not in artifacts):
            artifacts[key] = Artifact(*key, size_bytes=m.size_bytes, gzip_bytes=m.gzip_bytes)
    return ReportData(
        title=title or (f"edgebench run {run.id}: {run.name}" if run else "edgebench results"), run=run,
        devices=devices, artifacts=list(artifacts.values()),
        common_options=_format_options(results[0].options, common) if results else "",
        max_accuracy_drop=max_accuracy_drop)
