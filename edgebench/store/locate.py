"""Which store a ``--store`` value names, and opening it: an SQLite file (the default,
``.edgebench/results.db``) or a PostgreSQL database (``postgresql://USER@HOST:PORT/DB``, the team store).
``$EDGEBENCH_STORE`` sets the default for every command, so a CI job names the team store once."""

from __future__ import annotations

import os
from pathlib import Path

from edgebench.postgres import is_url, redact
from edgebench.store.base import BaseStore
from edgebench.store.db import DEFAULT_PATH, SqliteStore

ENV = "EDGEBENCH_STORE"
StoreLocation = Path | str


def default_location() -> str:
    """``$EDGEBENCH_STORE``, else the SQLite file in this folder."""
    return os.environ.get(ENV, "").strip() or str(DEFAULT_PATH)


def shown(location: StoreLocation) -> str:
    """The location as messages show it (a URL without its password)."""
    return redact(location) if isinstance(location, str) and is_url(location) else str(location)


def open_store(location: StoreLocation, create: bool = True, read_only: bool = False) -> BaseStore:
    """The store at ``location``: PostgreSQL for a URL, else SQLite (``~`` expanded). ``create`` makes an
    empty one where there is none; ``read_only`` opens it for reading only."""
    if isinstance(location, str) and is_url(location):
        from edgebench.store.postgres import PostgresStore  # psycopg loads only for a URL

        return PostgresStore(location, create=create, read_only=read_only)
    return SqliteStore(Path(location).expanduser(), create=create, read_only=read_only)


def store_exists(location: StoreLocation) -> bool:
    """Whether a reading command may try ``location`` as a store (a URL always: opening says the rest)."""
    return is_url(location) or Path(location).expanduser().is_file()


def reports_folder(location: StoreLocation) -> Path:
    """Where a report goes when the command is not told: ``reports/`` beside an SQLite store, or in the current
    folder for a PostgreSQL one."""
    return Path("reports") if is_url(location) else Path(location).expanduser().parent / "reports"


def resolve(location: StoreLocation) -> StoreLocation:
    """A URL as given, a file path with ``~`` expanded."""
    return location.strip() if isinstance(location, str) and is_url(location) else Path(location).expanduser()
