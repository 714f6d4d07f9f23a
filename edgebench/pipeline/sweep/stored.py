"""A sweep filed in the results store: its plan, where a resumed run stopped, and the run of the cells still
to do, each result stored as soon as it is measured, under its planned cell key."""

from __future__ import annotations

from pathlib import Path

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.result import CellKey, Result
from edgebench.store.db import Store
from edgebench.pipeline.sweep.plan import Cell, Plan, load_spec
from edgebench.pipeline.sweep.cells import bench_cell, build_plan, convert_cell
from edgebench.pipeline.sweep.run import Events, Outcome, SweepRunner


def plan_sweep(spec_path: Path) -> Plan:
    """The plan of a sweep spec: every cell, the conversions they share, the cells a device cannot run."""
    spec, base = load_spec(spec_path)
    return build_plan(spec, base, str(spec_path))


def resume_point(store: Store, plan: Plan, resume: str | None) -> tuple[int | None, set[CellKey]]:
    """The run ``resume`` names (None: a new run, not yet created) and its cells already measured without
    error; a run of another sweep is refused."""
    if resume is None:
        return None, set()
    run = store.run(resume)
    if run.spec.get("name") != plan.spec.name:
        raise EdgebenchError(f"run {run.id} was sweep {run.spec.get('name')!r}, not {plan.spec.name!r}: resume it "
                             "with its own spec", ExitStatus.USAGE)
    return run.id, set(store.finished_cells(run.id, include_errors=False))


class _KeyedSink:
    """Files each result under its planned cell key, so --resume finds exactly the cells the plan has."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add_result(self, run_id: int, result: Result, cell: Cell) -> None:
        self.store.add_result(run_id, result, key=cell.key)


def run_plan(plan: Plan, store: Store, run_id: int | None, done: set[CellKey], cache_dir: Path | None,
             events: Events) -> tuple[int, Outcome]:
    """Convert and measure the cells not in ``done`` into run ``run_id`` (None: a new run); the run's id and
    what happened. An interrupted run is marked so and keeps its finished cells for a resume."""
    if run_id is None:
        run_id = store.create_run(plan.spec.name, plan.spec.model_dump(mode="json"))
    runner = SweepRunner(plan, _KeyedSink(store), run_id, convert=lambda p, conv: convert_cell(p, conv, cache_dir),
                         bench=lambda p, cell, target: bench_cell(p, cell, cache_dir, target), events=events, done=done)
    outcome = runner.run()
    store.finish_run(run_id, "interrupted" if outcome.interrupted else "finished")
    return run_id, outcome
