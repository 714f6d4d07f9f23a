"""The SQLite results store: one row per finished cell, committed the moment the cell finishes.

A sweep can be killed at any point (Ctrl-C, SIGKILL, a power cut) and lose at most the cell in flight:
each result is its own transaction, the journal is WAL with ``synchronous=FULL``, and ``--resume`` asks
:meth:`Store.finished_cells` what not to run again. The full Result JSON (raw ``samples_ns`` included)
is kept, so reports and gates recompute every figure from samples rather than from stored aggregates.
A "run" is one invocation of a sweep (or of anything else that records results); it needs no SweepSpec.

Reading commands open the store read-only (a CI artifact on a read-only disk lists, reports and gates); a
writing one checks up front that it can write. A full disk, a read-only one or a damaged file is one
:class:`EdgebenchError` naming the file and the fix, never an ``sqlite3`` traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from edgebench import __version__
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import check_writable, mount_point
from edgebench.commits import git_commit
from edgebench.result import CellKey, Result, utc_now

DEFAULT_PATH = Path(".edgebench/results.db")
SCHEMA_VERSION = 1  # PRAGMA user_version
APPLICATION_ID = 0x45424E43  # "EBNC": PRAGMA application_id marks the file as edgebench's
RUN_STATUSES = ("running", "finished", "interrupted", "failed")
# SQLite's primary result codes (sqlite3.SQLITE_* only from Python 3.11 on)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL = 5, 6, 8, 10, 11, 13
SQLITE_CANTOPEN, SQLITE_NOTADB = 14, 26

_SCHEMA = """
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  created_utc TEXT NOT NULL,
  finished_utc TEXT,
  status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted', 'failed')),
  spec TEXT NOT NULL,
  edgebench_version TEXT NOT NULL,
  commit_sha TEXT,
  commit_dirty INTEGER
);
CREATE TABLE results (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  model TEXT NOT NULL, recipe TEXT NOT NULL, format TEXT NOT NULL, device TEXT NOT NULL, options TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT,
  p50_ms REAL,
  top1 REAL,
  result TEXT NOT NULL,
  created_utc TEXT NOT NULL,
  UNIQUE (run_id, model, recipe, format, device, options)
);
CREATE INDEX results_run ON results(run_id);
"""


@dataclass(frozen=True)
class RunInfo:
    id: int
    name: str
    created_utc: str
    finished_utc: str | None
    status: str
    spec: dict[str, Any]
    edgebench_version: str
    commit: dict[str, Any] | None
    cells: int
    errors: int

    def describe(self) -> str:
        return f"{self.id} ({self.name}, {self.created_utc}, {self.status})"


@dataclass(frozen=True)
class StoredLatency:
    """One measured cell's median, with what identifies the artifact it measured: the source model's hash,
    the precision, the converter versions that made it and the runtime (name, version) that ran it."""

    run_id: int
    key: CellKey
    p50_ms: float
    artifact: tuple[str, ...]


class Store:
    """Thread-safe: worker threads of one sweep share the connection under a lock; other processes
    reach the same file through SQLite's own locking (WAL, busy timeout). ``read_only`` opens an existing
    store for reading only (``create`` is then moot): nothing is written, not even its journal settings."""

    def __init__(self, path: Path | str = DEFAULT_PATH, create: bool = True, busy_timeout_s: float = 30.0,
                 read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
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
        with self._guard("open"):
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id == 0 and tables == 0 and version == 0:
            if not create:
                raise self._refuse("the database is empty")
            self._initialise()
        elif app_id != APPLICATION_ID:
            raise self._refuse("another application's SQLite database")
        elif version > SCHEMA_VERSION:
            raise EdgebenchError(f"{self.path} was written by a newer edgebench (store schema {version}, this "
                                 f"edgebench {__version__} reads {SCHEMA_VERSION}): upgrade edgebench or pass "
                                 "another --store", ExitStatus.USAGE)
        if self.read_only:
            return
        with self._guard("open"):
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")

    def _initialise(self) -> None:
        with self._transaction() as conn:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                return  # another process created it while we waited for the write lock
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

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

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- runs ---------------------------------------------------------------------------------------
    def create_run(self, name: str, spec: dict[str, Any]) -> int:
        commit = git_commit()
        with self._transaction("add a run to") as conn:
            cur = conn.execute(
                "INSERT INTO runs (name, created_utc, status, spec, edgebench_version, commit_sha, commit_dirty) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (name, utc_now(), json.dumps(spec, sort_keys=True, default=str), __version__,
                 commit["sha"] if commit else None, int(commit["dirty"]) if commit else None))
            assert cur.lastrowid is not None  # an INSERT always sets it
            return cur.lastrowid

    def finish_run(self, run_id: int, status: str = "finished") -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"run status {status!r} is not one of {RUN_STATUSES}")
        self.run(run_id)
        with self._transaction(f"mark run {run_id} {status} in") as conn:
            conn.execute("UPDATE runs SET status = ?, finished_utc = ? WHERE id = ?", (status, utc_now(), run_id))

    _RUN_QUERY = ("SELECT r.id, r.name, r.created_utc, r.finished_utc, r.status, r.spec, r.edgebench_version, "
                  "r.commit_sha, r.commit_dirty, count(c.id), coalesce(sum(c.status != 'ok'), 0) "
                  "FROM runs r LEFT JOIN results c ON c.run_id = r.id ")

    def _run_info(self, row: tuple[Any, ...]) -> RunInfo:
        commit = None if row[7] is None else {"sha": row[7], "dirty": bool(row[8])}
        return RunInfo(id=row[0], name=row[1], created_utc=row[2], finished_utc=row[3], status=row[4],
                       spec=self._json(row[5], f"the spec of run {row[0]}"), edgebench_version=row[6],
                       commit=commit, cells=row[9], errors=row[10])

    def _json(self, text: Any, what: str) -> dict[str, Any]:
        """A JSON object stored in a row; a row that holds something else (cut, overwritten, nested past what
        the parser takes) is a damaged store, one line."""
        try:
            value = json.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
            raise self._damaged(f"{what} is not valid JSON ({why})") from None
        if not isinstance(value, dict):
            raise self._damaged(f"{what} is JSON {type(value).__name__}, not an object")
        return value

    def _damaged(self, why: str) -> EdgebenchError:
        return EdgebenchError(f"{self.path} is a damaged results store ({why}): restore it from a copy, or "
                              "move it away and start a new one with --store PATH", ExitStatus.OUTPUT)

    def runs(self, limit: int | None = None) -> list[RunInfo]:
        """Newest first."""
        sql = self._RUN_QUERY + "GROUP BY r.id ORDER BY r.id DESC" + (" LIMIT ?" if limit else "")
        return [self._run_info(row) for row in self._read(sql, (limit,) if limit else ())]

    def last_run(self) -> RunInfo | None:
        runs = self.runs(limit=1)
        return runs[0] if runs else None

    def run(self, ref: int | str) -> RunInfo:
        """A run by id, or by name (its newest run); unknown → an error that lists recent runs."""
        text = str(ref).strip()
        arg: int | str
        if text.isascii() and text.isdigit() and int(text) < 2**63:  # past SQLite's INTEGER: no such id
            where, arg = "WHERE r.id = ? ", int(text)
        else:
            where, arg = "WHERE r.name = ? ", text
        rows = self._read(self._RUN_QUERY + where + "GROUP BY r.id ORDER BY r.id DESC LIMIT 1", (arg,))
        row = rows[0] if rows else None
        if row is None:
            recent = self.runs(limit=5)
            listing = "; ".join(r.describe() for r in recent) if recent else "the store has no runs yet"
            raise EdgebenchError(f"no run {text!r} in {self.path} (recent: {listing}): pass a run id or name "
                                 "from 'edgebench results list'", ExitStatus.NOT_FOUND)
        return self._run_info(row)

    # --- results ------------------------------------------------------------------------------------
    def add_result(self, run_id: int, result: Result, key: CellKey | None = None) -> None:
        """Store one cell in its own transaction. The same cell added again replaces the earlier row:
        a run holds one row per cell, and a re-run cell (a retried error) keeps its newest result.
        ``key`` (default ``result.cell_key``) lets a sweep file a cell under its planned key, e.g. an
        error cell whose Result could not learn every option."""
        model, recipe, fmt, device, options = (key or result.cell_key).astuple()
        error = json.dumps(result.error.to_dict(), sort_keys=True) if result.error else None
        p50 = result.p50
        top1 = result.accuracy.top1
        payload = json.dumps(result.to_dict(), separators=(",", ":"))
        self.run(run_id)
        with self._transaction("store a result in") as conn:
            conn.execute(
                "INSERT INTO results (run_id, model, recipe, format, device, options, status, error, p50_ms, "
                "top1, result, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, model, recipe, format, device, options) DO UPDATE SET "
                "status = excluded.status, error = excluded.error, p50_ms = excluded.p50_ms, "
                "top1 = excluded.top1, result = excluded.result, created_utc = excluded.created_utc",
                (run_id, model, recipe, fmt, device, options, result.status, error, p50, top1, payload, utc_now()))

    def finished_cells(self, run_id: int, include_errors: bool = True) -> set[CellKey]:
        """Cell keys already stored for the run (what ``--resume`` skips); ``include_errors=False``
        leaves failed cells out so that a resume can retry them."""
        self.run(run_id)
        sql = "SELECT model, recipe, format, device, options FROM results WHERE run_id = ?"
        if not include_errors:
            sql += " AND status = 'ok'"
        return {CellKey(*row) for row in self._read(sql, (run_id,))}

    def results(self, run_id: int) -> list[Result]:
        """In the order the cells finished."""
        self.run(run_id)
        rows = self._read("SELECT id, result FROM results WHERE run_id = ? ORDER BY id", (run_id,))
        return [Result.from_dict(self._json(text, f"result {rid}"), f"{self.path} result {rid}") for rid, text in rows]

    def latency_history(self) -> list[StoredLatency]:
        """Every measured cell of every run (oldest first) whose source model's hash is known, without loading
        its samples: what the noise floor between runs is learned from (``pipeline/noise.py``). Rows whose
        JSON is damaged are left out (reading that run names the damage)."""
        rows = self._read(
            "SELECT run_id, model, recipe, format, device, options, p50_ms, "
            "json_extract(result, '$.model.source_sha256'), coalesce(json_extract(result, '$.model.precision'), ''), "
            "coalesce(json_extract(result, '$.provenance.converter'), ''), "
            "coalesce(json_extract(result, '$.runtime.name'), ''), "
            "coalesce(json_extract(result, '$.runtime.version'), '') "
            "FROM results WHERE status = 'ok' AND typeof(p50_ms) IN ('real', 'integer') AND p50_ms > 0 "
            "AND json_valid(result) "
            "AND json_extract(result, '$.model.source_sha256') IS NOT NULL ORDER BY run_id, id")
        return [StoredLatency(run_id=row[0], key=CellKey(*row[1:6]), p50_ms=float(row[6]),
                              artifact=tuple(str(v) for v in row[7:])) for row in rows]


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
