"""The runs of the results store as the commands read them: one picked by id, name or as the newest, and
its results exported as a flat CSV (one row per cell)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import atomic_write
from edgebench.result import Result
from edgebench.store.base import RunInfo
from edgebench.store.locate import StoreLocation, open_store


def load_run(store_path: StoreLocation, ref: str | None, partial: bool = False) -> tuple[RunInfo, list[Result]]:
    """The run named by id or name (None: the newest) and its results; errors name the fix. A shared run some of
    whose shards are not in yet is refused (``check_complete``) unless ``partial`` (to show it as it stands)."""
    with open_store(store_path, read_only=True) as store:
        if ref is None:
            run = store.last_run()
            if run is None:
                raise EdgebenchError(f"{store.location} holds no runs yet: run 'edgebench sweep SPEC' first",
                                     ExitStatus.NOT_FOUND)
        else:
            run = store.run(ref)
        if not partial:
            check_complete(run)
        return run, store.results(run.id)


def check_complete(run: RunInfo) -> None:
    """A run that sweep shards fill (``sweep --shard I/N --run NAME``) is read whole or not at all: until every
    shard has finished, a report, a gate or an export would judge a part of the matrix as if it were all of it."""
    shards = run.shards
    if shards is None or shards.complete:
        return
    running = [i for i in shards.missing if i in shards.running]
    absent = [i for i in shards.missing if i not in shards.running]
    waiting = [f"{_shards(running)} {'is' if len(running) == 1 else 'are'} still running"] if running else []
    waiting += [f"{_shards(absent)} {'is' if len(absent) == 1 else 'are'} missing (not started, interrupted or "
                "failed: run that job again)"] if absent else []
    raise EdgebenchError(f"run {run.name} (id {run.id}) has {shards_in(run)}; {' and '.join(waiting)}: wait for "
                         f"{'it' if len(shards.missing) == 1 else 'them'} to finish, then run this command again",
                         ExitStatus.USAGE)


def shards_in(run: RunInfo) -> str:
    """Which shards of a shared run are in: 'shards 1, 3 of 4 in' ('' for a run that is not sharded)."""
    if run.shards is None:
        return ""
    if not run.shards.finished:
        return f"no shard of {run.shards.total} in"
    return f"{_shards(run.shards.finished)} of {run.shards.total} in"


def _shards(numbers: tuple[int, ...] | list[int]) -> str:
    return f"shard{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"


def record_run(store_path: StoreLocation, name: str, results: list[Result], spec: dict[str, Any] | None = None) -> RunInfo:
    """File ``results`` (one bench, say) as one finished run named ``name`` in the store (created if need be);
    the run as the store now holds it."""
    with open_store(store_path) as store:
        run_id = store.create_run(name, {"name": name, **(spec or {})})
        for result in results:
            store.add_result(run_id, result)
        store.finish_run(run_id)
        return store.run(run_id)


def record_bench(store_path: StoreLocation, result: Result, model: Path | str) -> RunInfo:
    """File one bench ``result`` (of the model file ``model``) as a finished run of one cell named
    ``bench-MODEL``, so single benches and sweeps share one history (``results list``, ``gate`` by run)."""
    return record_run(store_path, f"bench-{result.model.name}", [result], {"command": "bench", "model": str(model)})


def write_csv(results: list[Result], path: Path) -> None:
    """One flat row per cell, written atomically (no half file on a full disk)."""
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(flat_row(r) for r in results)

    atomic_write(path, write)


CSV_COLUMNS = ("model", "recipe", "format", "precision", "device", "options", "status", "error", "p50_ms", "p90_ms",
               "p99_ms", "mean_ms", "cv", "iterations", "load_ms", "first_inference_ms", "throughput_per_s",
               "peak_mb", "size_bytes", "gzip_bytes", "top1", "agreement_top1", "min_iterations_met",
               "min_duration_met", "cv_ok", "throttled", "runtime", "runtime_version", "created_utc")


def flat_row(r: Result) -> dict[str, Any]:
    """One cell as one flat row (CSV and spreadsheets); nested fields stay in the JSON export."""
    lat, m = r.latency_ms, r.model
    return {
        "model": m.name, "recipe": m.recipe, "format": m.format,
        "precision": m.precision, "device": r.device.profile,
        "options": json.dumps(r.options, sort_keys=True), "status": r.status,
        "error": r.error.message if r.error else None, "p50_ms": lat.p50 if lat else None,
        "p90_ms": lat.p90 if lat else None, "p99_ms": lat.p99 if lat else None,
        "mean_ms": lat.mean if lat else None, "cv": lat.cv if lat else None, "iterations": r.iterations,
        "load_ms": r.load_ms, "first_inference_ms": r.first_inference_ms, "throughput_per_s": r.throughput_per_s,
        "peak_mb": r.memory_mb.peak, "size_bytes": m.size_bytes, "gzip_bytes": m.gzip_bytes,
        "top1": r.accuracy.top1, "agreement_top1": r.accuracy.agreement_top1,
        **{k: r.validity.flag(k) for k in ("min_iterations_met", "min_duration_met", "cv_ok", "throttled")},
        "runtime": r.runtime.get("name"), "runtime_version": r.runtime.get("version"), "created_utc": r.created_utc,
    }
