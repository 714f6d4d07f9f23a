"""The results store's API, written once for both dialects: SQLite (``store/db.py``, the embedded default) and
PostgreSQL (``store/postgres.py``, the team store). A dialect supplies its connection (``_transaction``,
``_read``), the SQL that differs (``_DIALECT``), what its errors mean, and its schema migrations; every query
here is plain SQL both engines run, with ``?`` placeholders.

A run is one sweep (or bench) invocation; a **shared run** is filled by several shards (``sweep --shard i/N
--run NAME``, one CI job each): it is joined by name, each shard recorded in ``run_shards``, and it finishes
when every shard has. Results are one row per cell (re-running a cell replaces its row), each holding the full
Result JSON with its raw samples, committed one by one.
"""

from __future__ import annotations

import abc
import contextlib
import json
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from edgebench import __version__
from edgebench.commits import git_commit
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.postgres import holder_host
from edgebench.result import CellKey, Result, utc_now

SCHEMA_VERSION = 2  # 1: runs and results; 2: shared runs (run_shards) and migrated runs' origin
RUN_STATUSES = ("running", "finished", "interrupted", "failed")
# One result row as stored, without its id and run: what `results migrate` copies verbatim.
RESULT_COLUMNS = ("model", "recipe", "format", "device", "options", "status", "error", "p50_ms", "top1", "result",
                  "created_utc")


def schema_migrations(identity: str, key: str, real: str) -> dict[int, tuple[str, ...]]:
    """The schema as migrations, in a dialect's words for an identity column, a reference to one and a float:
    each version's statements turn the one before into it (1 from an empty store)."""
    return {
        1: (f"""CREATE TABLE runs (
  id {identity},
  name TEXT NOT NULL,
  created_utc TEXT NOT NULL,
  finished_utc TEXT,
  status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted', 'failed')),
  spec TEXT NOT NULL,
  edgebench_version TEXT NOT NULL,
  commit_sha TEXT,
  commit_dirty INTEGER
)""", f"""CREATE TABLE results (
  id {identity},
  run_id {key} NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  model TEXT NOT NULL, recipe TEXT NOT NULL, format TEXT NOT NULL, device TEXT NOT NULL, options TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT,
  p50_ms {real},
  top1 {real},
  result TEXT NOT NULL,
  created_utc TEXT NOT NULL,
  UNIQUE (run_id, model, recipe, format, device, options)
)""", "CREATE INDEX results_run ON results(run_id)"),
        2: ("ALTER TABLE runs ADD COLUMN shared_name TEXT", "ALTER TABLE runs ADD COLUMN origin TEXT",
            "CREATE UNIQUE INDEX runs_shared_name ON runs(shared_name)",
            "CREATE UNIQUE INDEX runs_origin ON runs(origin)", f"""CREATE TABLE run_shards (
  run_id {key} NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  shard INTEGER NOT NULL, total INTEGER NOT NULL, status TEXT NOT NULL, host TEXT NOT NULL,
  started_utc TEXT NOT NULL, finished_utc TEXT,
  PRIMARY KEY (run_id, shard)
)"""),
    }


class Cursor(Protocol):
    def execute(self, sql: str, args: Sequence[Any] = ...) -> Any: ...


@dataclass(frozen=True)
class ShardState:
    """The shards of a shared run: how many it has, which finished, which are running; a shard that failed or was
    interrupted is neither (re-run it)."""

    total: int
    finished: tuple[int, ...]
    running: tuple[int, ...]

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(i for i in range(1, self.total + 1) if i not in self.finished)

    @property
    def complete(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        return f"{len(self.finished)}/{self.total} shards"


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
    shards: ShardState | None = None

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


@dataclass(frozen=True)
class StoredRun:
    """A run with its result rows exactly as stored: what ``results migrate`` copies from one store to another."""

    info: RunInfo
    shard_rows: list[tuple[Any, ...]]  # (shard, total, status, host, started_utc, finished_utc)
    rows: list[tuple[Any, ...]]  # RESULT_COLUMNS


class BaseStore(abc.ABC):
    """What every store offers; thread-safe (a sweep's device workers share one store)."""

    location: str  # what messages name: the file, or the URL without its password
    read_only: bool
    schema_version: int  # of the store as opened (a read-only old store is read as it is)

    # --- what a dialect supplies ----------------------------------------------------------------------
    @abc.abstractmethod
    def _transaction(self, doing: str = "write to") -> contextlib.AbstractContextManager[Cursor]:
        """One write transaction, committed on success, rolled back on any exception; its errors one line."""

    @abc.abstractmethod
    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """The rows of one query; its errors one line."""

    @abc.abstractmethod
    def _latency_rows(self) -> list[Any]:
        """(run_id, model, recipe, format, device, options, p50_ms, sha256, precision, converter, runtime,
        runtime version) of every measured cell whose model hash is known, oldest first."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "BaseStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- messages ---------------------------------------------------------------------------------------
    def _damaged(self, why: str) -> EdgebenchError:
        return EdgebenchError(f"{self.location} is a damaged results store ({why}): restore it from a copy, or "
                              "move it away and start a new one with --store", ExitStatus.OUTPUT)

    def _newer(self, version: int) -> EdgebenchError:
        return EdgebenchError(f"{self.location} was written by a newer edgebench (store schema {version}, this "
                              f"edgebench {__version__} reads {SCHEMA_VERSION}): upgrade edgebench or pass another "
                              "--store", ExitStatus.USAGE)

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

    # --- runs -------------------------------------------------------------------------------------------
    def create_run(self, name: str, spec: dict[str, Any]) -> int:
        commit = git_commit()
        with self._transaction("add a run to") as cur:
            row = cur.execute(
                "INSERT INTO runs (name, created_utc, status, spec, edgebench_version, commit_sha, commit_dirty) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?) RETURNING id",
                (name, utc_now(), json.dumps(spec, sort_keys=True, default=str), __version__,
                 commit["sha"] if commit else None, int(commit["dirty"]) if commit else None)).fetchone()
            return int(row[0])

    def finish_run(self, run_id: int, status: str = "finished") -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"run status {status!r} is not one of {RUN_STATUSES}")
        self.run(run_id)
        with self._transaction(f"mark run {run_id} {status} in") as cur:
            cur.execute("UPDATE runs SET status = ?, finished_utc = ? WHERE id = ?", (status, utc_now(), run_id))

    def join_run(self, name: str, spec: dict[str, Any], shard: int, total: int) -> int:
        """Shard ``shard`` of ``total`` joins the shared run ``name`` (made by the first shard to come): one
        transaction, so shards starting together make one run. A shared run of that name made from another spec
        or shard count is refused; a shard that comes again (a CI retry) is running again, its stored cells kept
        (each cell it re-measures replaces its row). The run's id."""
        if not 1 <= shard <= total:
            raise ValueError(f"shard {shard} of {total}")
        self._require_schema(2, "shard a run in")
        text = json.dumps(spec, sort_keys=True, default=str)
        commit = git_commit()
        with self._transaction(f"join shared run {name!r} in") as cur:
            cur.execute(
                "INSERT INTO runs (name, created_utc, status, spec, edgebench_version, commit_sha, commit_dirty, "
                "shared_name) VALUES (?, ?, 'running', ?, ?, ?, ?, ?) ON CONFLICT (shared_name) DO NOTHING",
                (name, utc_now(), text, __version__, commit["sha"] if commit else None,
                 int(commit["dirty"]) if commit else None, name))
            run_id, stored = cur.execute("SELECT id, spec FROM runs WHERE shared_name = ?", (name,)).fetchone()
            totals = {t for (t,) in cur.execute("SELECT DISTINCT total FROM run_shards WHERE run_id = ?",
                                                 (run_id,)).fetchall()}
            if stored != text:
                raise EdgebenchError(f"shared run {name!r} in {self.location} was made from another spec: give this "
                                     "sweep another --run NAME, or run every shard with the same spec",
                                     ExitStatus.USAGE)
            if totals and totals != {total}:
                raise EdgebenchError(f"shared run {name!r} is split into {min(totals)} shards, not {total}: run its "
                                     f"shards as i/{min(totals)}, or give this sweep another --run NAME",
                                     ExitStatus.USAGE)
            cur.execute(
                "INSERT INTO run_shards (run_id, shard, total, status, host, started_utc) "
                "VALUES (?, ?, ?, 'running', ?, ?) ON CONFLICT (run_id, shard) DO UPDATE SET "
                "status = 'running', host = excluded.host, started_utc = excluded.started_utc, finished_utc = NULL",
                (run_id, shard, total, holder_host(), utc_now()))
            cur.execute("UPDATE runs SET status = 'running', finished_utc = NULL WHERE id = ?", (run_id,))
            return int(run_id)

    def finish_shard(self, run_id: int, shard: int, status: str = "finished") -> None:
        """Shard ``shard`` of a shared run ended with ``status``; the run is finished once every shard is."""
        if status not in RUN_STATUSES:
            raise ValueError(f"shard status {status!r} is not one of {RUN_STATUSES}")
        self.run(run_id)
        with self._transaction(f"mark shard {shard} of run {run_id} {status} in") as cur:
            now = utc_now()
            cur.execute("UPDATE run_shards SET status = ?, finished_utc = ? WHERE run_id = ? AND shard = ?",
                        (status, now, run_id, shard))
            total, finished = cur.execute(
                "SELECT max(total), sum(CASE WHEN status = 'finished' THEN 1 ELSE 0 END) FROM run_shards "
                "WHERE run_id = ?", (run_id,)).fetchone()
            if total is not None and finished == total:
                cur.execute("UPDATE runs SET status = 'finished', finished_utc = ? WHERE id = ?", (now, run_id))

    _RUN_QUERY = ("SELECT r.id, r.name, r.created_utc, r.finished_utc, r.status, r.spec, r.edgebench_version, "
                  "r.commit_sha, r.commit_dirty, count(c.id), "
                  "coalesce(sum(CASE WHEN c.status <> 'ok' THEN 1 ELSE 0 END), 0) "
                  "FROM runs r LEFT JOIN results c ON c.run_id = r.id ")
    _RUN_GROUP = ("GROUP BY r.id, r.name, r.created_utc, r.finished_utc, r.status, r.spec, r.edgebench_version, "
                  "r.commit_sha, r.commit_dirty ")

    def _run_infos(self, rows: list[Any]) -> list[RunInfo]:
        shards = self._shard_states([row[0] for row in rows])
        out = []
        for row in rows:
            commit = None if row[7] is None else {"sha": row[7], "dirty": bool(row[8])}
            out.append(RunInfo(id=int(row[0]), name=row[1], created_utc=row[2], finished_utc=row[3], status=row[4],
                               spec=self._json(row[5], f"the spec of run {row[0]}"), edgebench_version=row[6],
                               commit=commit, cells=int(row[9]), errors=int(row[10]), shards=shards.get(row[0])))
        return out

    def _shard_states(self, run_ids: list[int]) -> dict[int, ShardState]:
        if self.schema_version < 2 or not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        rows = self._read(f"SELECT run_id, shard, total, status FROM run_shards WHERE run_id IN ({marks}) "
                          "ORDER BY run_id, shard", tuple(run_ids))
        found: dict[int, tuple[int, list[int], list[int]]] = {}
        for run_id, shard, total, status in rows:
            t, finished, running = found.setdefault(run_id, (int(total), [], []))
            (finished if status == "finished" else running if status == "running" else []).append(int(shard))
        return {run_id: ShardState(t, tuple(f), tuple(r)) for run_id, (t, f, r) in found.items()}

    def runs(self, limit: int | None = None) -> list[RunInfo]:
        """Newest first."""
        sql = self._RUN_QUERY + self._RUN_GROUP + "ORDER BY r.id DESC" + (" LIMIT ?" if limit else "")
        return self._run_infos(self._read(sql, (limit,) if limit else ()))

    def last_run(self) -> RunInfo | None:
        runs = self.runs(limit=1)
        return runs[0] if runs else None

    def run(self, ref: int | str) -> RunInfo:
        """A run by id, or by name (its newest run); unknown → an error that lists recent runs."""
        text = str(ref).strip()
        arg: int | str
        if text.isascii() and text.isdigit() and int(text) < 2**63:  # past a 64-bit INTEGER: no such id
            where, arg = "WHERE r.id = ? ", int(text)
        else:
            where, arg = "WHERE r.name = ? ", text
        rows = self._read(self._RUN_QUERY + where + self._RUN_GROUP + "ORDER BY r.id DESC LIMIT 1", (arg,))
        if not rows:
            recent = self.runs(limit=5)
            listing = "; ".join(r.describe() for r in recent) if recent else "the store has no runs yet"
            raise EdgebenchError(f"no run {text!r} in {self.location} (recent: {listing}): pass a run id or name "
                                 "from 'edgebench results list'", ExitStatus.NOT_FOUND)
        return self._run_infos(rows)[0]

    # --- results ----------------------------------------------------------------------------------------
    def add_result(self, run_id: int, result: Result, key: CellKey | None = None) -> None:
        """Store one cell in its own transaction. The same cell added again replaces the earlier row:
        a run holds one row per cell, and a re-run cell (a retried error) keeps its newest result.
        ``key`` (default ``result.cell_key``) lets a sweep file a cell under its planned key, e.g. an
        error cell whose Result could not learn every option."""
        model, recipe, fmt, device, options = (key or result.cell_key).astuple()
        error = json.dumps(result.error.to_dict(), sort_keys=True) if result.error else None
        payload = json.dumps(result.to_dict(), separators=(",", ":"))
        self.run(run_id)
        with self._transaction("store a result in") as cur:
            self._upsert_result(cur, run_id, (model, recipe, fmt, device, options, result.status, error, result.p50,
                                              result.accuracy.top1, payload, utc_now()))

    @staticmethod
    def _upsert_result(cur: Cursor, run_id: int, row: Sequence[Any]) -> None:
        cur.execute(
            f"INSERT INTO results (run_id, {', '.join(RESULT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, model, recipe, format, device, options) DO UPDATE SET "
            "status = excluded.status, error = excluded.error, p50_ms = excluded.p50_ms, "
            "top1 = excluded.top1, result = excluded.result, created_utc = excluded.created_utc",
            (run_id, *row))

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
        return [Result.from_dict(self._json(text, f"result {rid}"), f"{self.location} result {rid}")
                for rid, text in rows]

    def latency_history(self) -> list[StoredLatency]:
        """Every measured cell of every run (oldest first) whose source model's hash is known, without loading
        its samples: what the noise floor between runs is learned from (``pipeline/noise.py``). Rows whose
        JSON is damaged are left out (reading that run names the damage)."""
        return [StoredLatency(run_id=int(row[0]), key=CellKey(*row[1:6]), p50_ms=float(row[6]),
                              artifact=tuple(str(v) for v in row[7:])) for row in self._latency_rows()]

    # --- copying between stores (results migrate) ------------------------------------------------------------
    def stored_run(self, run_id: int) -> StoredRun:
        info = self.run(run_id)
        shard_rows = [] if self.schema_version < 2 else [tuple(r) for r in self._read(
            "SELECT shard, total, status, host, started_utc, finished_utc FROM run_shards WHERE run_id = ? "
            "ORDER BY shard", (run_id,))]
        rows = [tuple(r) for r in self._read(f"SELECT {', '.join(RESULT_COLUMNS)} FROM results WHERE run_id = ? "
                                             "ORDER BY id", (run_id,))]
        return StoredRun(info, shard_rows, rows)

    def copied_origins(self) -> set[str]:
        """The origins (``results migrate``'s ``SOURCE#RUN``) of the runs copied into this store."""
        return {o for (o,) in self._read("SELECT origin FROM runs WHERE origin IS NOT NULL")}

    def copy_run(self, run: StoredRun, origin: str) -> int:
        """File ``run`` here as it was (times, status, commit, every result row), in one transaction, marked with
        ``origin`` so that copying again skips it. The new run's id (ids are this store's own)."""
        self._require_schema(2, "copy runs into")
        info = run.info
        commit = info.commit or {}
        shared = info.name if info.shards is not None else None
        with self._transaction(f"copy run {info.id} into") as cur:
            row = cur.execute(
                "INSERT INTO runs (name, created_utc, finished_utc, status, spec, edgebench_version, commit_sha, "
                "commit_dirty, shared_name, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (info.name, info.created_utc, info.finished_utc, info.status,
                 json.dumps(info.spec, sort_keys=True, default=str), info.edgebench_version, commit.get("sha"),
                 int(commit["dirty"]) if "dirty" in commit else None, shared, origin)).fetchone()
            new_id = int(row[0])
            for shard_row in run.shard_rows:
                cur.execute("INSERT INTO run_shards (run_id, shard, total, status, host, started_utc, finished_utc) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", (new_id, *shard_row))
            for result_row in run.rows:
                self._upsert_result(cur, new_id, result_row)
            return new_id

    def _require_schema(self, version: int, doing: str) -> None:
        if self.schema_version < version:  # only a store opened read-only stays at an older schema
            raise EdgebenchError(f"cannot {doing} the results store {self.location}: it was opened read-only",
                                 ExitStatus.OUTPUT)

