"""A board pool shared by every host of a team: a device is leased in the PostgreSQL store before a job runs on
it and released after, so sweeps from different processes and hosts never measure on one board at once.

The lease is a row of ``edgebench.device_leases`` (one per device key), taken by one atomic upsert that only
replaces a row whose lease has expired or whose holder's connection is gone. The database's clock decides expiry,
so host clocks do not matter. A holder whose process dies loses the lease at once (its backend ends with its
connection); one whose host freezes or loses the network loses it after the TTL (``$EDGEBENCH_LEASE_TTL_S``,
default 60 s), which a heartbeat thread renews every third of it. A holder that finds its lease taken over
(it froze past the TTL) reports its measurement as untrusted. ``edgebench.device_lease_log`` keeps every lease
(who, how long it waited, when it ended and how) for ``edgebench devices status``, benchmarks and tests.

The pool is process-wide: the commands that know the store call :func:`use_lease_pool`; ``device_lock``
(devices/lock.py) takes the lease inside its local file lock when a pool is set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import math
import os
import random
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from edgebench.config import DeviceProfile
from edgebench.devices.lock import Waiting, env_seconds, holder_command, lock_key
from edgebench.devices.stop import STOP
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.postgres import SCHEMA_LOCK, connect, holder_host, import_psycopg, is_url, lost_fault, redact
from edgebench.text import one_line, printable

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("edgebench.devices")

TTL_VAR = "EDGEBENCH_LEASE_TTL_S"
DEFAULT_TTL_S = 60.0
POLL_S = (0.2, 1.0)  # a waiter retries after a random pause in this range: waiters do not move in lockstep

SCHEMA = SCHEMA_LOCK + """;
CREATE SCHEMA IF NOT EXISTS edgebench;
CREATE TABLE IF NOT EXISTS edgebench.device_leases (
    device text PRIMARY KEY,
    token uuid NOT NULL,
    holder_host text NOT NULL,
    pid integer NOT NULL,
    command text NOT NULL,
    run_name text,
    backend_pid integer NOT NULL,
    backend_start timestamptz,
    acquired_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS edgebench.device_lease_log (
    id bigserial PRIMARY KEY,
    token uuid NOT NULL UNIQUE,
    device text NOT NULL,
    holder_host text NOT NULL,
    pid integer NOT NULL,
    command text NOT NULL,
    run_name text,
    waited_s double precision NOT NULL,
    acquired_at timestamptz NOT NULL,
    released_at timestamptz,
    ended text CHECK (ended IN ('released', 'expired', 'taken-over'))
);
CREATE INDEX IF NOT EXISTS device_lease_log_device ON edgebench.device_lease_log (device, acquired_at);
"""

# Whether a lease row's holder still has its connection: the backend with that pid, started when it was.
_ALIVE = ("EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.backend_pid "
          "AND a.backend_start IS NOT DISTINCT FROM l.backend_start)")
_CURRENT = f"""
SELECT l.token, l.holder_host, l.pid, l.command, l.acquired_at, l.expires_at,
       l.expires_at < clock_timestamp() AS expired, NOT {_ALIVE} AS gone
FROM edgebench.device_leases l WHERE l.device = %(device)s FOR UPDATE
"""
_TAKE = f"""
INSERT INTO edgebench.device_leases AS l (device, token, holder_host, pid, command, run_name, backend_pid,
    backend_start, acquired_at, heartbeat_at, expires_at)
VALUES (%(device)s, %(token)s, %(host)s, %(pid)s, %(command)s, %(run)s, pg_backend_pid(), %(backend_start)s,
    clock_timestamp(), clock_timestamp(), clock_timestamp() + make_interval(secs => %(ttl)s))
ON CONFLICT (device) DO UPDATE SET token = EXCLUDED.token, holder_host = EXCLUDED.holder_host,
    pid = EXCLUDED.pid, command = EXCLUDED.command, run_name = EXCLUDED.run_name,
    backend_pid = EXCLUDED.backend_pid, backend_start = EXCLUDED.backend_start,
    acquired_at = EXCLUDED.acquired_at, heartbeat_at = EXCLUDED.heartbeat_at, expires_at = EXCLUDED.expires_at
WHERE l.expires_at < clock_timestamp() OR NOT {_ALIVE}
RETURNING l.acquired_at
"""
_LOG_TAKEN = """
INSERT INTO edgebench.device_lease_log (token, device, holder_host, pid, command, run_name, waited_s, acquired_at)
VALUES (%(token)s, %(device)s, %(host)s, %(pid)s, %(command)s, %(run)s, %(waited)s, %(acquired)s)
"""
_LOG_END = ("UPDATE edgebench.device_lease_log SET released_at = coalesce(%s, clock_timestamp()), ended = %s "
            "WHERE token = %s AND released_at IS NULL")
_RENEW = """
UPDATE edgebench.device_leases SET heartbeat_at = clock_timestamp(),
    expires_at = clock_timestamp() + make_interval(secs => %(ttl)s),
    backend_pid = pg_backend_pid(), backend_start = %(backend_start)s
WHERE device = %(device)s AND token = %(token)s
"""
_NEXT_HOLDER = """
SELECT mine.ended, mine.released_at, nxt.pid, nxt.holder_host
FROM edgebench.device_lease_log mine
LEFT JOIN LATERAL (SELECT pid, holder_host FROM edgebench.device_lease_log n
                   WHERE n.device = mine.device AND n.acquired_at >= mine.released_at
                   ORDER BY n.acquired_at LIMIT 1) nxt ON true
WHERE mine.token = %s
"""
_STATUS = f"""
SELECT l.device, l.holder_host, l.pid, l.command, l.run_name, l.acquired_at,
       extract(epoch FROM clock_timestamp() - l.heartbeat_at) AS heartbeat_age_s,
       extract(epoch FROM l.expires_at - clock_timestamp()) AS expires_in_s, NOT {_ALIVE} AS gone
FROM edgebench.device_leases l ORDER BY l.device
"""


def lease_ttl_s() -> float:
    """``$EDGEBENCH_LEASE_TTL_S`` in seconds (default 60): how long a holder that stops renewing keeps a board."""
    value = env_seconds(TTL_VAR, lambda v: 0 < v < math.inf, "a positive number of seconds",
                        f"set it to how long a frozen holder may keep a board (e.g. {DEFAULT_TTL_S:g}), or unset it")
    return DEFAULT_TTL_S if value is None else value


def lease_key(profile: DeviceProfile) -> str:
    """What a lease protects: an SSH board by its address (as the local lock), a local device per host."""
    return lock_key(profile) if profile.connection.type == "ssh" else f"local {holder_host()} {profile.name}"


def _stamp(when: datetime.datetime) -> str:
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _holder(row: dict[str, Any]) -> str:
    return printable(f"pid {row['pid']} on {row['holder_host']} ({row['command']}) since {_stamp(row['acquired_at'])}")


@dataclasses.dataclass(frozen=True)
class LeaseRow:
    """One held (or abandoned) lease, as ``edgebench devices status`` shows it."""

    device: str
    holder_host: str
    pid: int
    command: str
    run_name: str | None
    acquired_at: datetime.datetime
    heartbeat_age_s: float
    expires_in_s: float
    gone: bool

    @property
    def state(self) -> str:
        if self.gone:
            return "holder gone (free to take)"
        return "expired (free to take)" if self.expires_in_s < 0 else "held"


class PgLeases:
    """The board pool in the PostgreSQL database at ``url``; ``run``: the run name leases record."""

    def __init__(self, url: str, run: str | None = None, ttl_s: float | None = None) -> None:
        self.url, self.shown, self.run = url, redact(url), run
        self.ttl_s = lease_ttl_s() if ttl_s is None else ttl_s
        self._ready = False

    def connect(self) -> "tuple[psycopg.Connection[Any], datetime.datetime | None]":
        """A connection of its own for one lease, and when its backend started (with its pid, what tells
        whether the holder is still connected). A session idle inside a transaction past the TTL (a process
        frozen mid-statement) is ended by the server, so it never keeps the row locked; a waiter's statement
        gives up on a row lock after 2 s (and tries again), so it keeps hearing ``stop``."""
        conn = connect(self.url, "edgebench lease")
        try:
            conn.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false), "
                         "set_config('lock_timeout', '2s', false)", (str(max(1000, int(self.ttl_s * 1000))),))
            row = conn.execute("SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()
        except import_psycopg().Error as exc:
            conn.close()
            raise lost_fault(exc, self.shown, "lease a device in") from None
        return conn, (row[0] if row else None)

    def prepare(self) -> None:
        """Create the lease tables if they are missing (idempotent, safe against concurrent first users)."""
        if self._ready:
            return
        conn, _ = self.connect()
        with conn:
            self._create(conn)

    def _create(self, conn: "psycopg.Connection[Any]") -> None:
        psycopg = import_psycopg()
        for attempt in range(3):
            try:
                with conn.transaction():
                    for statement in filter(str.strip, SCHEMA.split(";")):
                        conn.execute(statement)  # our own constant SQL
                self._ready = True
                return
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject) as exc:
                if attempt == 2:  # another program made the schema at the same moment, under another lock
                    raise self._schema_fault(exc) from None
            except psycopg.OperationalError as exc:
                raise lost_fault(exc, self.shown, "create the device lease tables in") from None
            except psycopg.Error as exc:
                raise self._schema_fault(exc) from None

    def _schema_fault(self, exc: Exception) -> EdgebenchError:
        return EdgebenchError(f"cannot create the device lease tables in the PostgreSQL store {self.shown} "
                              f"({one_line(str(exc), 300)}): let its user create a schema there (GRANT CREATE ON "
                              "DATABASE …) or have an administrator create the schema edgebench for it",
                              ExitStatus.OUTPUT)

    def acquire(self, profile: DeviceProfile, wait_s: float | None, stop: threading.Event | None = None) -> "Lease":
        """Lease ``profile``'s device, waiting for its holder for at most ``wait_s`` seconds (None: no limit);
        exit status 8 past it, :class:`Stopped` when the sweep or edgebench stops."""
        self.prepare()
        psycopg = import_psycopg()
        key = lease_key(profile)
        conn, backend_start = self.connect()
        waiting = Waiting(profile, wait_s, stop)
        holder = "another edgebench process"
        try:
            while True:
                token = uuid.uuid4()
                try:
                    taken, previous = self._try(conn, key, token, backend_start,
                                                time.monotonic() - waiting.started)
                except psycopg.errors.LockNotAvailable:  # another waiter's statement holds the row this instant
                    taken, previous = False, None
                if taken:
                    break
                if previous is not None:
                    holder = _holder(previous)
                left = waiting.still(holder)
                _pause(random.uniform(*POLL_S) if left is None else min(left, random.uniform(*POLL_S)), stop)
        except psycopg.Error as exc:
            conn.close()
            raise lost_fault(exc, self.shown, f"lease device {profile.name} in") from None
        except BaseException:
            conn.close()
            raise
        waiting.done()
        self._warn_taken_over(profile, previous)
        return Lease(self, conn, backend_start, profile.name, key, token)

    def _try(self, conn: "psycopg.Connection[Any]", key: str, token: uuid.UUID,
             backend_start: datetime.datetime | None, waited_s: float) -> tuple[bool, dict[str, Any] | None]:
        """One attempt: (taken, the row it replaced or found held). The upsert alone decides; the row read
        before it (locked) names the holder and closes its log entry when it was taken over."""
        from psycopg.rows import dict_row

        me = {"device": key, "token": token, "host": holder_host(), "pid": os.getpid(), "command": holder_command(),
              "run": self.run, "backend_start": backend_start, "ttl": self.ttl_s, "waited": waited_s}
        with conn.transaction():
            with conn.cursor(row_factory=dict_row) as cur:
                previous = cur.execute(_CURRENT, me).fetchone()
                got = cur.execute(_TAKE, me).fetchone()
                if got is None:
                    return False, previous
                if previous is not None:
                    cur.execute(_LOG_END, (got["acquired_at"], "taken-over" if previous["gone"] else "expired",
                                           previous["token"]))  # it ended as the new lease began
                cur.execute(_LOG_TAKEN, {**me, "acquired": got["acquired_at"]})
        return True, previous

    @staticmethod
    def _warn_taken_over(profile: DeviceProfile, previous: dict[str, Any] | None) -> None:
        if previous is None:
            return
        why = ("its process is gone (its connection to the store ended)" if previous["gone"] else
               f"its lease expired at {_stamp(previous['expires_at'])} (no heartbeat: its host froze or lost the store)")
        log.warning("device %s: took over the lease of %s: %s", profile.name, _holder(previous), why)


def lease_rows(url: str) -> list[LeaseRow]:
    """Every lease row in the database at ``url``, held or abandoned; none when no edgebench has leased a board
    there yet (nothing is created: reading needs no more than the right to read)."""
    from psycopg.rows import dict_row

    with connect(url, "edgebench devices status") as conn:
        try:
            with conn.cursor(row_factory=dict_row) as cur:
                exists = cur.execute("SELECT to_regclass('edgebench.device_leases') IS NOT NULL AS t").fetchone()
                rows = cur.execute(_STATUS).fetchall() if exists and exists["t"] else []
        except import_psycopg().Error as exc:
            raise lost_fault(exc, redact(url), "read the device leases of") from None
    return [LeaseRow(device=r["device"], holder_host=r["holder_host"], pid=r["pid"], command=r["command"],
                     run_name=r["run_name"], acquired_at=r["acquired_at"], heartbeat_age_s=float(r["heartbeat_age_s"]),
                     expires_in_s=float(r["expires_in_s"]), gone=bool(r["gone"])) for r in rows]


def _pause(seconds: float, stop: threading.Event | None) -> None:
    """Sleep ``seconds``, waking early when the sweep or edgebench stops."""
    end = time.monotonic() + max(0.0, seconds)
    while (left := end - time.monotonic()) > 0:
        if STOP.is_set() or (stop is not None and stop.is_set()):
            return
        time.sleep(min(0.05, left))


class Lease:
    """One held lease: a heartbeat thread renews it through the lease's own connection until :meth:`release`.
    :meth:`confirm` tells whether it is still this process's (nobody took it over since it was taken)."""

    def __init__(self, pool: PgLeases, conn: "psycopg.Connection[Any]", backend_start: datetime.datetime | None,
                 device: str, key: str, token: uuid.UUID) -> None:
        self.pool, self.device, self.key, self.token = pool, device, key, token
        self._conn, self._backend_start = conn, backend_start
        self._guard = threading.Lock()  # the connection is used by the heartbeat and the holder's thread
        self._ended = threading.Event()
        self.lost_reason: str | None = None
        self._reported = False
        self._thread = threading.Thread(target=self._beat, name=f"edgebench lease {key}", daemon=True)
        self._thread.start()

    @property
    def lost(self) -> bool:
        return self.lost_reason is not None

    def _beat(self) -> None:
        while not self._ended.wait(self.pool.ttl_s / 3):
            try:
                if not self.renew():
                    return
            except EdgebenchError as exc:  # the store is out of reach: try again at the next beat
                log.debug("cannot renew the lease on %s: %s", self.device, exc)

    def renew(self) -> bool:
        """Push the expiry one TTL ahead; False once the lease is found taken over. A broken connection is
        replaced (the lease row then names the new one); an unreachable store raises EdgebenchError."""
        psycopg = import_psycopg()
        with self._guard:
            if self.lost_reason is not None:
                return False
            try:
                count = self._renew()
            except psycopg.OperationalError:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn, self._backend_start = self.pool.connect()
                try:
                    count = self._renew()
                except psycopg.Error as exc:
                    raise lost_fault(exc, self.pool.shown, f"renew the lease on device {self.device} in") from None
            if count == 0:
                self.lost_reason = self._how_lost()
        return self.lost_reason is None

    def _renew(self) -> int:
        cur = self._conn.execute(_RENEW, {"ttl": self.pool.ttl_s, "backend_start": self._backend_start,
                                          "device": self.key, "token": self.token})
        return cur.rowcount

    def _how_lost(self) -> str:
        try:
            row = self._conn.execute(_NEXT_HOLDER, (self.token,)).fetchone()
        except import_psycopg().Error:
            row = None
        if row is None or row[0] is None:
            return f"another holder took it over (no heartbeat within its {self.pool.ttl_s:g} s)"
        ended, at, pid, host = row
        how = (f"expired (no heartbeat within its {self.pool.ttl_s:g} s: this process was frozen or cut off)"
               if ended == "expired" else "was taken over (this process's connection to the store was gone)")
        by = f" and pid {pid} on {printable(str(host))} took the device" if pid is not None else ""
        return f"it {how} at {_stamp(at)}{by}"

    def lost_error(self) -> EdgebenchError:
        return EdgebenchError(f"the lease on device {self.device} was lost during the measurement ({self.lost_reason}):"
                              " its result is not trusted", ExitStatus.DEVICE)

    def confirm(self) -> None:
        """Raise the lost-lease error (once) when another holder took the device since this lease was taken;
        a store out of reach cannot confirm it, which is said the same way."""
        try:
            held = self.renew()
        except EdgebenchError as exc:
            raise EdgebenchError(f"the lease on device {self.device} could not be confirmed ({exc}): its result is "
                                 "not trusted", ExitStatus.DEVICE) from None
        if not held and not self._reported:
            self._reported = True
            raise self.lost_error()

    def release(self, check: bool = True) -> None:
        """Give the device back and close the connection. ``check``: raise the lost-lease error when it was
        taken over and no :meth:`confirm` said so yet."""
        self._ended.set()
        self._thread.join(timeout=self.pool.ttl_s)
        psycopg = import_psycopg()
        with self._guard:
            try:
                if self.lost_reason is None:
                    with self._conn.transaction():
                        gone = self._conn.execute("DELETE FROM edgebench.device_leases WHERE device = %s AND "
                                                  "token = %s", (self.key, self.token)).rowcount == 0
                        if not gone:
                            self._conn.execute(_LOG_END, (None, "released", self.token))
                    if gone:
                        self.lost_reason = self._how_lost()
            except psycopg.Error as exc:  # the row expires, or its backend is gone: others take it over then
                log.warning("device %s: the lease could not be given back (%s): it frees itself within %g s",
                            self.device, one_line(str(exc), 200), self.pool.ttl_s)
            finally:
                with contextlib.suppress(Exception):
                    self._conn.close()
        if self.lost_reason is not None and not self._reported:
            self._reported = True
            if check:
                raise self.lost_error()
            log.warning("device %s: the lease was lost (%s)", self.device, self.lost_reason)


_pool: PgLeases | None = None


def use_lease_pool(store: object, run: str | None = None) -> PgLeases | None:
    """Lease devices in the store's database from now on when ``store`` is a PostgreSQL URL (else only the local
    lock serialises, as with an SQLite store); creates the lease tables and checks the TTL at once, so a bad URL
    or setting is one line before any work. Returns the pool, or None."""
    global _pool
    url = store.strip() if isinstance(store, str) and is_url(store) else None
    if url is None:
        _pool = None
    elif _pool is None or (_pool.url, _pool.run) != (url, run):
        pool = PgLeases(url, run)
        pool.prepare()
        _pool = pool
    return _pool


def lease_pool() -> PgLeases | None:
    """The pool set by :func:`use_lease_pool`, if any."""
    return _pool
