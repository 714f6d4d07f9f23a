"""``edgebench results migrate``: copy the runs of one store into another — a laptop's SQLite file into the
team's PostgreSQL store, typically. Each run goes in one transaction (in the destination, a run is there whole
or not at all) with its times, status, commit and every result row as stored; a run copied before is skipped,
so a copy cut short is finished by running it again. A run still running in the source (a sweep in flight) is
left for a later copy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.postgres import is_url
from edgebench.store.locate import StoreLocation, open_store, shown


@dataclass(frozen=True)
class Copied:
    """What happened to one source run: ``new_id`` in the destination, or why it was not copied."""

    source_id: int
    name: str
    cells: int
    new_id: int | None
    skipped: str | None = None


def copy_runs(source: StoreLocation, dest: StoreLocation) -> list[Copied]:
    """Copy every run of ``source`` that ``dest`` lacks, oldest first; what happened to each."""
    if shown(source) == shown(dest):
        raise EdgebenchError(f"results migrate copies a store into another: {shown(source)} is both; pass the "
                             "destination store as the second argument", ExitStatus.USAGE)
    where = shown(source) if isinstance(source, str) and is_url(source) else str(Path(source).expanduser().resolve())
    done: list[Copied] = []
    with open_store(source, read_only=True, create=False) as src, open_store(dest) as dst:
        copied = dst.copied_origins()
        for info in reversed(src.runs()):
            origin = f"{where}#{info.id}@{info.created_utc}"
            if origin in copied:
                done.append(Copied(info.id, info.name, info.cells, None, "copied before"))
            elif info.status == "running":
                done.append(Copied(info.id, info.name, info.cells, None,
                                   "still running: copy it once it ends"))
            else:
                done.append(Copied(info.id, info.name, info.cells, dst.copy_run(src.stored_run(info.id), origin)))
    return done
