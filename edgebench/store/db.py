"""The SQLite results store: one row per finished cell, committed the moment the cell finishes.

A sweep can be killed at any point (Ctrl-C, SIGKILL, a power cut) and lose at most the cell in flight:
each result is its own transaction, the journal is WAL with ``synchronous=FULL``, and ``--resume`` asks
:meth:`SqliteStore.finished_cells` what not to run again. The full Result JSON (raw ``samples_ns`` included)
is kept, so reports and gates recompute every figure from samples rather than from stored aggregates.
A "run" is one invocation of a sweep (or of anything else that records results); it needs no SweepSpec.

Reading commands open the store read-only (a CI artifact on a read-only disk lists, reports and gates); a
writing one checks up front that it can write. A full disk, a read-only one or a damaged file is one
:class:`EdgebenchError` naming the file and the fix, never an ``sqlite3`` traceback.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterator

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import check_writable, mount_point
from edgebench.store.base import SCHEMA_VERSION, BaseStore, schema_migrations

DEFAULT_PATH = Path(".edgebench/results.db")
APPLICATION_ID = 0x45424E43  # "EBNC": PRAGMA application_id marks the file as edgebench's
# SQLite's primary result codes (sqlite3.SQLITE_* only from Python 3.11 on)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL = 5, 6, 8, 10, 11, 13
SQLITE_CANTOPEN, SQLITE_NOTADB = 14, 26

MIGRATIONS = schema_migrations("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", "REAL")


class SqliteStore(BaseStore):
    """Thread-safe: worker threads of one sweep share the connection under a lock; other processes
    reach the same file through SQLite's own locking (WAL, busy timeout). ``read_only`` opens an existing
    store for reading only (``create`` is then moot): nothing is written, not even its journal settings, and a
    store of an older schema is read as it is (a writer migrates it)."""

    def __init__(self, path: Path | str = DEFAULT_PATH, create: bool = True, busy_timeout_s: float = 30.0,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.read_only = read_only
        self.schema_version = SCHEMA_VERSION
        create = create and not read_only
        if self.path.is_dir():
            raise EdgebenchError(f"results store {self.path} is a directory: pass a file with --store PATH",
                                 ExitStatus.USAGE)
        if not self.path.exists():
            if not create:
                raise EdgebenchError(f"no results store at {self.path}: run 'edgebench sweep' first or pass "
                                     "--store PATH", ExitStatus.NOT_FOUND)
        if not read_only:
            check_writable(self.path, "the results store")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._busy_timeout_s = busy_timeout_s
        self._conn = self._connect(busy_timeout_s)
        try:
            self._open(create)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self, busy_timeout_s: float) -> sqlite3.Connection:
        if not self.read_only:
            return sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        # mode=ro reads a store that another process may be writing; on a read-only or full disk SQLite cannot
        # make the WAL index a reader needs (no writer has it open: a writer would have made it), and
        # immutable=1 reads the file as it is.
        uri = "file:" + urllib.parse.quote(str(self.path.absolute()))
        for query in ("?mode=ro", "?immutable=1"):
            conn = sqlite3.connect(uri + query, uri=True, timeout=busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.DatabaseError as exc:
                conn.close()
                if _error_code(exc) not in (SQLITE_CANTOPEN, SQLITE_IOERR) or query == "?immutable=1":
                    raise self._fault(exc, "open") from None
            except UnicodeDecodeError:  # SQLite's message quotes the damaged schema's bytes
                conn.close()
                raise self._damaged("its schema is not text") from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _refuse(self, why: str) -> EdgebenchError:
        if "malformed" in why:
            return self._damaged(why)
        return EdgebenchError(f"{self.path} is not an edgebench results store ({why}): pass another file "
                              "with --store PATH, or move this one away", ExitStatus.USAGE)

    def _fault(self, exc: sqlite3.DatabaseError, doing: str) -> EdgebenchError:
        """The one line for an SQLite error met while ``doing`` something with the store."""
        code = _error_code(exc)
        where = f"cannot {doing} the results store {self.path}"
        if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
            return self._refuse(str(exc))
        if code == SQLITE_FULL:
            why = f"the disk mounted at {mount_point(self.path)} is full"
            fix = "free space there"
        elif code == SQLITE_READONLY:
            why, fix = "it is read-only", "make it writable or pass another --store PATH"
        elif code in (SQLITE_BUSY, SQLITE_LOCKED):
            why, fix = "another process holds its lock", "wait for it to finish, or pass another --store PATH"
        elif code in (SQLITE_IOERR, SQLITE_CANTOPEN):
            why = f"{exc} on the disk mounted at {mount_point(self.path)} ({_disk_state(self.path.parent)})"
            fix = "free space there or make it writable, or pass another --store PATH"
        elif str(exc).startswith(("no such table", "no such column")):  # edgebench's SQL fits the schema it made
            return self._damaged(f"its tables are not as edgebench made them: {exc}")
        elif str(exc).startswith("Could not decode to UTF-8"):
            return self._damaged(f"text in it is not UTF-8: {exc}")
        else:
            raise exc  # an edgebench bug (SQL, a constraint): keep its traceback
        return EdgebenchError(f"{where}: {why}: {fix}", ExitStatus.OUTPUT)

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise self._fault(exc, doing) from None
        except UnicodeDecodeError as exc:  # SQLite's message quoting damaged bytes, or a text column's
            raise self._damaged(f"text in it is not UTF-8: {exc.reason}") from None

    def _open(self, create: bool) -> None:
        conn = self._conn
        with self._guard("open"):  # one snapshot: a process creating the store commits all three at once
            conn.execute("BEGIN")
            try:
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            finally:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")  # it only read
        if app_id == 0 and tables == 0 and version == 0:
            if not create:
                raise self._refuse("the database is empty")
            self._initialise()
        elif app_id != APPLICATION_ID:
            raise self._refuse("another application's SQLite database")
        elif version > SCHEMA_VERSION:
            raise self._newer(version)
        if self.read_only:
            self.schema_version = version
            return
        with self._guard("open"):
            self._busy_retry(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        if 0 < version < SCHEMA_VERSION:
            self._migrate()

    def _busy_retry(self, statement: Callable[[], object]) -> None:
        """Run ``statement`` until SQLite lets it: switching the journal to WAL needs the file to itself and
        fails at once, without the busy timeout, while another process (a shard starting beside this one)
        holds it."""
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                statement()
                return
            except sqlite3.OperationalError as exc:
                if _error_code(exc) not in (SQLITE_BUSY, SQLITE_LOCKED) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _initialise(self) -> None:
        with self._transaction() as conn:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                return  # another process created it while we waited for the write lock
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self._apply(conn, 1)
        self._migrate()

    def _migrate(self) -> None:
        """Bring the schema up to :data:`SCHEMA_VERSION`, one version per transaction (with the version it
        reaches), so a process killed midway leaves a store at a version edgebench continues from."""
        while True:
            with self._transaction("update the schema of") as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version >= SCHEMA_VERSION:
                    return  # done, or another process migrated it while we waited for the write lock
                self._apply(conn, version + 1)

    @staticmethod
    def _apply(conn: sqlite3.Connection, version: int) -> None:
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={version}")

    @contextlib.contextmanager
    def _transaction(self, doing: str = "write to") -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock: BEGIN IMMEDIATE takes SQLite's write lock up front (so
        the busy timeout applies), COMMIT on success, ROLLBACK on any exception (SQLite may have rolled
        back already, after a full disk say)."""
        if self.read_only:
            raise EdgebenchError(f"cannot {doing} the results store {self.path}: it was opened read-only",
                                 ExitStatus.OUTPUT)
        with self._lock, self._guard(doing):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """The rows of one query, under the lock; a damaged file is one line."""
        with self._lock, self._guard("read"):
            return self._conn.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "SqliteStore":
        return self

    def _latency_rows(self) -> list[Any]:
        return self._read(
            "SELECT run_id, model, recipe, format, device, options, p50_ms, "
            "json_extract(result, '$.model.source_sha256'), coalesce(json_extract(result, '$.model.precision'), ''), "
            "coalesce(json_extract(result, '$.provenance.converter'), ''), "
            "coalesce(json_extract(result, '$.runtime.name'), ''), "
            "coalesce(json_extract(result, '$.runtime.version'), '') "
            "FROM results WHERE status = 'ok' AND typeof(p50_ms) IN ('real', 'integer') AND p50_ms > 0 "
            "AND json_valid(result) "
            "AND json_extract(result, '$.model.source_sha256') IS NOT NULL ORDER BY run_id, id")


_MESSAGES = {"database or disk is full": SQLITE_FULL, "attempt to write a readonly database": SQLITE_READONLY,
             "database disk image is malformed": SQLITE_CORRUPT, "file is not a database": SQLITE_NOTADB,
             "disk I/O error": SQLITE_IOERR, "unable to open database file": SQLITE_CANTOPEN,
             "database is locked": SQLITE_BUSY, "database table is locked": SQLITE_LOCKED}


def _error_code(exc: sqlite3.Error) -> int:
    """SQLite's primary result code of ``exc`` (Python 3.10 has only the message to go by)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else _MESSAGES.get(str(exc), 0)


def _disk_state(folder: Path) -> str:
    """Whether the disk holding ``folder`` is full or read-only, as far as the OS tells."""
    try:
        if os.statvfs(folder).f_bavail == 0:
            return "it is full"
    except OSError:
        pass
    return "it is read-only" if not os.access(folder, os.W_OK) else "it may be failing"
