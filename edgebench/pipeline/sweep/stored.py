"""A sweep filed in the results store: its plan, where a resumed run stopped, and the run of the cells still
to do, each result stored as soon as it is measured, under its planned cell key."""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path
from typing import Any

from edgebench.config import SweepSpec
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.result import CellKey, Result
from edgebench.store.base import BaseStore
from edgebench.pipeline.sweep.plan import Cell, Plan, load_spec
from edgebench.pipeline.sweep.cells import bench_cell, build_plan, convert_cell
from edgebench.pipeline.sweep.run import Events, Outcome, SweepRunner
from edgebench.pipeline.sweep.shard import Shard


def plan_sweep(spec_path: Path, cache_dir: Path | None = None) -> Plan:
    """The plan of a sweep spec: every cell, the conversions they share, the cells a device cannot run (its source
    models exported to ONNX in the artifact cache ``cache_dir``)."""
    spec, base = load_spec(spec_path)
    return build_plan(spec, base, str(spec_path), cache_dir)


def resume_point(store: BaseStore, plan: Plan, resume: str | None) -> tuple[int | None, set[CellKey]]:
    """The run ``resume`` names (None: a new run, not yet created) and its cells already measured without
    error; a run of another sweep is refused, and so is one made from another version of this spec (resuming
    would mix two specs' cells, timing rules or data in one run)."""
    if resume is None:
        return None, set()
    run = store.run(resume)
    if run.spec.get("name") != plan.spec.name:
        raise EdgebenchError(f"run {run.id} was sweep {run.spec.get('name')!r}, not {plan.spec.name!r}: resume it "
                             "with its own spec", ExitStatus.USAGE)
    changed = spec_changes(run.spec, plan.spec)
    if changed:
        shown = "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise EdgebenchError(f"run {run.id} was made from another version of sweep {plan.spec.name!r} (changed: "
                             f"{shown}): resume it with the spec it was made from, or run this spec as a new run "
                             "(without --resume)", ExitStatus.CONFIG)
    return run.id, set(store.finished_cells(run.id, include_errors=False))


def shard_point(store: BaseStore, plan: Plan, name: str, shard: Shard, join: bool) -> tuple[int | None, set[CellKey]]:
    """The shared run ``name`` that ``shard`` fills and this shard's cells it already holds without error (what
    running the shard again — a CI retry, a resume — skips; ``plan`` is the shard's plan). ``join``: join the
    run as this shard (``BaseStore.join_run``: created by the first shard; a run of that name made from another
    spec or shard count is refused); else (a dry run) only look, writing nothing: (None, cells) as the run
    stands, or (None, nothing) when there is no shared run of that name with this shard count yet."""
    mine = {cell.key for cell in plan.cells}
    if join:
        run_id = store.join_run(name, plan.spec.model_dump(mode="json"), shard.index, shard.total)
        return run_id, store.finished_cells(run_id, include_errors=False) & mine
    try:
        run = store.run(name)
    except EdgebenchError as exc:
        if exc.status != ExitStatus.NOT_FOUND:
            raise
        return None, set()
    if run.shards is None or run.shards.total != shard.total:
        return None, set()
    return None, store.finished_cells(run.id, include_errors=False) & mine


def spec_changes(stored: dict[str, Any], spec: SweepSpec) -> list[str]:
    """What differs between the spec a run was made from (as stored, with the defaults of fields it predates
    filled in) and ``spec``: ``field: old → new``, one per changed field."""
    try:
        old: Any = SweepSpec.model_validate(stored).model_dump(mode="json")
    except ValueError:  # a spec from another edgebench version that no longer parses: compared as stored
        old = stored
    new = json.loads(json.dumps(spec.model_dump(mode="json"), sort_keys=True, default=str))
    return _diff(json.loads(json.dumps(old, sort_keys=True, default=str)), new, "")


def _diff(old: Any, new: Any, where: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [c for k in sorted({*old, *new}, key=str)
                for c in _diff(old.get(k, "(unset)"), new.get(k, "(unset)"), f"{where}.{k}" if where else str(k))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and old != new \
            and all(isinstance(v, dict) for v in old + new):
        return [c for i, (a, b) in enumerate(zip(old, new)) for c in _diff(a, b, f"{where}[{i}]")]
    if old == new:
        return []
    return [f"{where}: {_short(old)} → {_short(new)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


class _KeyedSink:
    """Files each result under its planned cell key, so --resume finds exactly the cells the plan has."""

    def __init__(self, store: BaseStore) -> None:
        self.store = store

    def add_result(self, run_id: int, result: Result, cell: Cell) -> None:
        self.store.add_result(run_id, result, key=cell.key)


def run_plan(plan: Plan, store: BaseStore, run_id: int | None, done: set[CellKey], cache_dir: Path | None,
             events: Events, spec_path: Path | None = None, device_wait_s: float | None = None,
             name: str | None = None, shard: Shard | None = None) -> tuple[int, Outcome]:
    """Convert and measure the cells not in ``done`` into run ``run_id`` (None: a new run, named ``name``, else
    after the spec); the run's id and what happened. An interrupted run is marked so and keeps its finished
    cells for a resume. A cell the store could not take (a full or read-only disk) stops the sweep and raises,
    the run marked failed if the store still takes that, never finished; the message says how to resume
    (``spec_path`` in the command). ``device_wait_s``: how long a device another process measures on is waited
    for (None: no limit). ``shard``: ``plan`` is that shard of the shared run ``run_id`` named ``name`` (joined
    by ``shard_point``); the shard, not the run, is marked, and the run is finished when its last shard is."""
    if shard is not None and (run_id is None or name is None):
        raise ValueError("a shard runs into the shared run it joined (shard_point)")
    if run_id is None:
        run_id = store.create_run(name or plan.spec.name, plan.spec.model_dump(mode="json"))
    joined = run_id

    def finish(status: str) -> None:
        if shard is None:
            store.finish_run(joined, status)
        else:
            store.finish_shard(joined, shard.index, status)

    runner = SweepRunner(plan, _KeyedSink(store), run_id, convert=lambda p, conv: convert_cell(p, conv, cache_dir),
                         bench=lambda p, cell, target: bench_cell(p, cell, cache_dir, target), events=events, done=done,
                         device_wait_s=device_wait_s)
    try:
        outcome = runner.run()
    except BaseException as exc:  # a bug re-raised once the workers ended, or a signal past the sweep's handling
        with contextlib.suppress(EdgebenchError):
            finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    if outcome.store_error is not None:
        with contextlib.suppress(EdgebenchError):
            finish("failed")
        lost = ", ".join(c.label() for c in outcome.unstored)
        again = shard.args(name) if shard is not None and name is not None else ["--resume", str(run_id)]
        resume = ["edgebench", "sweep", str(spec_path or "SPEC"), *again, "--store", store.location]
        resume += ["--cache-dir", str(cache_dir)] if cache_dir is not None else []
        raise EdgebenchError(f"{outcome.store_error}; not stored: {lost}; run {run_id} is not finished: continue it "
                             f"with '{shlex.join(resume)}'", ExitStatus.OUTPUT)
    finish("interrupted" if outcome.interrupted else "finished")
    return run_id, outcome
