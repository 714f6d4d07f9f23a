"""The runs of the results store as the commands read them: one picked by id, name or as the newest, and
its results exported as a flat CSV (one row per cell)."""

from __future__ import annotations

import csv
from pathlib import Path

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.report.data import CSV_COLUMNS, flat_row
from edgebench.result import Result
from edgebench.store.db import RunInfo, Store


def load_run(store_path: Path, ref: str | None) -> tuple[RunInfo, list[Result]]:
    """The run named by id or name (None: the newest) and its results; errors name the fix."""
    with Store(store_path, create=False) as store:
        if ref is None:
            run = store.last_run()
            if run is None:
                raise EdgebenchError(f"{store_path} holds no runs yet: run 'edgebench sweep SPEC' first",
                                     ExitStatus.NOT_FOUND)
        else:
            run = store.run(ref)
        return run, store.results(run.id)


def write_csv(results: list[Result], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(flat_row(r) for r in results)
