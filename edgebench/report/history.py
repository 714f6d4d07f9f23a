"""The history of a results store: each cell's p50, with the median's 95 % interval, and its accuracy across
the newest runs, oldest first, every point judged by the gate against the cell's previous measurement.

A history should flag exactly what ``edgebench gate`` would have failed between those two runs, or a red dot
means something different here than in CI: each point is handed to the gate's own :func:`compare`, with the
device's noise floor between the store's runs (as ``gate`` by run id uses it), against the newest earlier run
in the window where the same cell measured without error. The band is the order-statistic interval that
``results export --bencher`` publishes (:func:`median_interval_ns`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from edgebench.config import GATE_METRICS, GateSpec
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.gate import Check, cell_label, compare
from edgebench.pipeline.noise import NoiseFloor, floor_of, noise_floors
from edgebench.result import CellKey, Result, utc_now
from edgebench.store.bencher import median_interval_ns
from edgebench.store.base import RunInfo
from edgebench.store.locate import StoreLocation, open_store, shown

DEFAULT_RUNS = 30
ACCURACY_METRICS = ("top1", "agreement_top1")
ACCURACY_CHECKS = ("accuracy_top1", "agreement_top1")  # the gate's metrics for them


@dataclass
class Point:
    """One cell in one run: its result (None: the run did not hold the cell) and the gate's checks of it
    against ``baseline``, the cell's previous good measurement (no checks: nothing earlier to judge it by)."""

    run: RunInfo
    result: Result | None
    baseline: RunInfo | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def measured(self) -> bool:
        return self.result is not None and self.result.ok and self.result.p50 is not None

    @property
    def p50(self) -> float | None:
        return self.result.p50 if self.result is not None and self.result.ok else None

    @property
    def band(self) -> tuple[float, float] | None:
        """The median's 95 % interval in ms, from the raw samples (None without them)."""
        if not self.measured or self.result is None or not self.result.samples_ns:
            return None
        lower, _, upper = median_interval_ns(self.result.samples_ns)
        return lower / 1e6, upper / 1e6

    def accuracy(self, metric: str | None) -> float | None:
        if metric is None or self.result is None or not self.result.ok:
            return None
        value = self.result.accuracy.metric(metric)
        return None if value is None else float(value)

    @property
    def failed(self) -> list[Check]:
        """The checks the gate fails: what marks this point red."""
        return [c for c in self.checks if c.failed]

    @property
    def failed_accuracy(self) -> bool:
        """Whether an accuracy check fails (its mark is red), as against latency, memory, size or an error."""
        return any(c.metric in ACCURACY_CHECKS for c in self.failed)

    @property
    def failed_other(self) -> bool:
        return any(c.metric not in ACCURACY_CHECKS for c in self.failed)


@dataclass
class CellHistory:
    key: CellKey
    label: str
    metric: str | None  # the accuracy shown: top1 where any run has it, else agreement_top1, else none
    points: list[Point]  # one per run of the history, in its order


@dataclass(frozen=True)
class Flagged:
    """One check the gate fails, at one point of one cell."""

    cell: CellHistory
    point: Point
    check: Check

    @property
    def change(self) -> str:
        """The change the check judged: points for accuracy, a relative change otherwise."""
        c = self.check
        if c.delta_points is not None:
            return f"{c.delta_points:+.2f} pt"
        return "—" if c.ratio is None else f"{c.ratio - 1:+.1%}"


@dataclass
class History:
    store: str
    runs: list[RunInfo]  # oldest first
    cells: list[CellHistory]
    filters: str  # "--model M --device D" as given, "" without
    generated_utc: str = field(default_factory=utc_now)

    @property
    def flagged(self) -> list[Flagged]:
        """Every failed check, in run order then cell order."""
        found = [(i, Flagged(cell, p, c)) for cell in self.cells for i, p in enumerate(cell.points)
                 for c in p.failed]
        return [f for _, f in sorted(found, key=lambda pair: pair[0])]


def commit_tag(run: RunInfo) -> str:
    """The run's short commit (``+``: the tree had uncommitted changes), "" when it recorded none."""
    commit = run.commit
    return f"{commit['sha'][:7]}{'+' if commit['dirty'] else ''}" if commit else ""


def run_tick(run: RunInfo) -> str:
    """A run as an axis label and in tables: its id and short commit."""
    return f"{run.id} {commit_tag(run)}".strip()


def _matches(key: CellKey, model: str | None, device: str | None) -> bool:
    return (model is None or key.model == model) and (device is None or key.device == device)


def _no_match(store: StoreLocation, seen: set[CellKey], model: str | None, device: str | None) -> EdgebenchError:
    def listing(values: set[str]) -> str:
        return ", ".join(repr(v) for v in sorted(values)[:20]) + (" …" if len(values) > 20 else "")

    given = " ".join(f"--{axis} {value!r}" for axis, value in (("model", model), ("device", device)) if value)
    return EdgebenchError(f"no cell in {shown(store)} matches {given}: pass a model from "
                          f"{listing({k.model for k in seen})} and a device from {listing({k.device for k in seen})}",
                          ExitStatus.NOT_FOUND)


def _judge(points: Sequence[Point], spec: GateSpec, device: str, floor: NoiseFloor) -> None:
    """Each point against the cell's previous good one, by the gate's rules (an error after a good run fails
    as the gate fails it; a first measurement has nothing to be judged by). Metrics whose rule only warns are
    skipped: they never fail a point, and their bootstraps (p90, p99) would triple the cost of a long history."""
    warn_only = tuple(m for m in GATE_METRICS if spec.rule(m, device).severity == "warn")
    previous: Point | None = None
    for point in points:
        if point.result is None:
            continue
        if previous is not None and previous.result is not None:
            point.baseline = previous.run
            point.checks = compare(previous.result, point.result, spec, skip=warn_only, floor=floor)
        if point.result.ok:
            previous = point


def load_history(store_path: StoreLocation, runs: int = DEFAULT_RUNS, model: str | None = None,
                 device: str | None = None, spec: GateSpec | None = None) -> History:
    """The newest ``runs`` runs holding a cell that passes the filters, and those cells across them; the store
    is opened read-only. No runs, or no cell through the filters, is one line (NOT_FOUND)."""
    spec = spec or GateSpec().for_ci(False)
    with open_store(store_path, read_only=True) as db:
        every = db.runs()  # newest first
        if not every:
            raise EdgebenchError(f"{shown(store_path)} holds no runs yet: run 'edgebench sweep SPEC' or "
                                 "'edgebench bench --store' first", ExitStatus.NOT_FOUND)
        chosen: list[RunInfo] = []
        seen: set[CellKey] = set()
        for run in every:
            keys = db.finished_cells(run.id)
            seen |= keys
            if any(_matches(k, model, device) for k in keys):
                chosen.append(run)
                if len(chosen) == runs:
                    break
        if not chosen:
            raise _no_match(store_path, seen, model, device)
        chosen.reverse()
        by_run = {run.id: {r.cell_key: r for r in db.results(run.id) if _matches(r.cell_key, model, device)}
                  for run in chosen}
        floors = noise_floors(db.latency_history())
    cell_keys = {k for run in chosen for k in by_run[run.id]}
    cells = []
    for key in sorted(cell_keys, key=CellKey.astuple):
        points = [Point(run, by_run[run.id].get(key)) for run in chosen]
        results = [p.result for p in points if p.result is not None and p.result.ok]
        metric = next((m for m in ACCURACY_METRICS if any(r.accuracy.metric(m) is not None for r in results)), None)
        newest = next(p.result for p in reversed(points) if p.result is not None)
        _judge(points, spec, key.device, floor_of(floors, key.device))
        cells.append(CellHistory(key, cell_label(newest), metric, points))
    filters = " ".join(f"--{axis} {value}" for axis, value in (("model", model), ("device", device)) if value)
    return History(store=shown(store_path), runs=chosen, cells=cells, filters=filters)
