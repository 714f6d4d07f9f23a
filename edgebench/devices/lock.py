"""One measurement at a time per device, across processes: two sweeps (or a sweep and a bench) on one device
would each slow the other down and record it as the model's speed.

The lock is an OS file lock (``filelock``: flock on Unix) on this machine, in ``$EDGEBENCH_LOCK_DIR`` (default
the user cache folder's ``locks/``), one file per device: a local device by its profile's name, an SSH board by
its address (``host:port``), so two profiles of one board share it. The OS releases it when its process ends,
however it ends (``kill -9``, a lost connection), so it can never be left stale. A second process waits,
saying once who holds the device (pid, command, since when), for ``wait_s`` seconds (default
``$EDGEBENCH_DEVICE_WAIT_S``, else no limit; 0 refuses at once), then refuses with exit status 8. A lock on the
board itself would also cover two host machines sharing one board, but it outlives a host that is killed or
loses its connection, which is the common case this guards against; that limit is documented.

Within one process the lock is re-entrant per thread: a sweep's device worker holds it across its cells and
each job it runs takes it again at no cost.

With a PostgreSQL store (devices/leases.py) the device is also leased in the database inside this lock, which
covers every host of a team; each job then confirms the lease is still its own at its start and end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from filelock import FileLock, Timeout

from edgebench.config import DeviceProfile
from edgebench.devices.stop import STOP, Stopped
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.postgres import is_url, redact
from edgebench.text import printable

if TYPE_CHECKING:
    from edgebench.devices.leases import Lease, PgLeases

log = logging.getLogger("edgebench.devices")

DIR_VAR = "EDGEBENCH_LOCK_DIR"
WAIT_VAR = "EDGEBENCH_DEVICE_WAIT_S"


@dataclasses.dataclass
class _Hold:
    """One thread's hold of one device: the file lock, the pool and lease when one is set, how deep the holds nest
    and whether any nested (a sweep worker's hold has its jobs inside; a plain one is the measurement itself)."""

    lock: FileLock
    pool: "PgLeases | None"
    lease: "Lease | None"
    depth: int = 1
    nested: bool = False


_held: dict[tuple[str, int], _Hold] = {}  # (lock file, thread) → its hold
_guard = threading.Lock()


def lock_key(profile: DeviceProfile) -> str:
    """What the lock protects: an SSH board's address, or a local device's profile name."""
    c = profile.connection
    return f"ssh {c.host}:{c.port or 22}" if c.type == "ssh" else f"local {profile.name}"


def lock_dir() -> Path:
    """Where the lock files live; a home that cannot be written (a sandboxed CI) falls back to the temp folder."""
    configured = os.environ.get(DIR_VAR)
    if configured:
        folder = Path(configured).expanduser()
    else:
        from platformdirs import user_cache_dir

        folder = Path(user_cache_dir("edgebench", appauthor=False)) / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError:
        if configured:
            raise EdgebenchError(f"cannot create the device lock folder {folder} (${DIR_VAR}): point it at a "
                                 "writable folder", ExitStatus.USAGE) from None
    fallback = Path(tempfile.gettempdir()) / f"edgebench-locks-{os.getuid() if hasattr(os, 'getuid') else 0}"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def env_seconds(var: str, fits: Callable[[float], bool], what: str, fix: str) -> float | None:
    """``$var`` in seconds, None when unset; a value that does not parse or ``fits`` not (``what`` it must be)
    is one line naming ``fix``."""
    text = os.environ.get(var, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value) or not fits(value):
        raise EdgebenchError(f"{var}={text!r} is not {what}: {fix}", ExitStatus.USAGE)
    return value


def default_wait_s() -> float | None:
    """``$EDGEBENCH_DEVICE_WAIT_S`` in seconds; None (no limit) when unset."""
    return env_seconds(WAIT_VAR, lambda v: v >= 0, "a number of seconds",
                       "set it to 0 (refuse a busy device) or more, or unset it to wait without limit")


@contextlib.contextmanager
def device_lock(profile: DeviceProfile, wait_s: float | None = None,
                stop: threading.Event | None = None) -> Iterator[None]:
    """Hold ``profile``'s device for the block. ``wait_s``: how long to wait for another process to let it go
    (None: ``$EDGEBENCH_DEVICE_WAIT_S``, else no limit); ``stop`` (or edgebench stopping) ends the wait with
    :class:`Stopped`. With a lease pool, a measurement whose lease was taken over while it ran raises the
    lost-lease error as the block ends (a block that raised keeps its own error)."""
    path = _lock_file(lock_key(profile))
    me = (str(path), threading.get_ident())
    with _guard:
        hold = _held.get(me)
    if hold is None:
        hold = _take(profile, path, default_wait_s() if wait_s is None else wait_s, stop)
        with _guard:
            _held[me] = hold
    else:
        if hold.lease is not None and not hold.lease.renew():  # taken over between two jobs: wait for it again
            hold.lease.release(check=False)
            hold.lease = None
        if hold.lease is None and hold.pool is not None:
            hold.lease = hold.pool.acquire(profile, default_wait_s() if wait_s is None else wait_s, stop)
        hold.depth += 1
        hold.nested = True
    try:
        yield
    except BaseException:
        _leave(me, hold, check=False)
        raise
    _leave(me, hold, check=True)


def _take(profile: DeviceProfile, path: Path, wait_s: float | None, stop: threading.Event | None) -> _Hold:
    """The file lock, then the lease (if a pool is set) within what is left of ``wait_s``."""
    started = time.monotonic()
    lock = _acquire(profile, path, wait_s, stop)
    try:
        from edgebench.devices.leases import lease_pool

        pool = lease_pool()
        left = None if wait_s is None else max(0.0, round(wait_s - (time.monotonic() - started), 1))
        return _Hold(lock, pool, None if pool is None else pool.acquire(profile, left, stop))
    except BaseException:
        _drop_lock(path, lock)
        raise


def _leave(me: tuple[str, int], hold: _Hold, check: bool) -> None:
    """End one level of ``hold``: the outermost releases the lease and the lock; ``check``: the block ended
    normally, so a lease lost meanwhile is raised (by the innermost level, the measurement)."""
    hold.depth -= 1
    if hold.depth > 0:
        if check and hold.lease is not None:
            hold.lease.confirm()
        return
    with _guard:
        del _held[me]
    try:
        if hold.lease is not None:
            hold.lease.release(check=check and not hold.nested)
    finally:
        _drop_lock(Path(me[0]), hold.lock)


def _drop_lock(path: Path, lock: FileLock) -> None:
    with contextlib.suppress(OSError):
        _holder_file(path).unlink()
    lock.release()


def _lock_file(key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:80]
    return lock_dir() / f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.lock"


def _holder_file(path: Path) -> Path:
    return path.with_suffix(".holder.json")


class Waiting:
    """A wait for a device another process holds (its lock file here, or its lease in the team store): says once
    who holds it, and ends with :class:`Stopped` when edgebench or ``stop`` stops, or exit status 8 once
    ``wait_s`` seconds (None: no limit) are spent."""

    def __init__(self, profile: DeviceProfile, wait_s: float | None, stop: threading.Event | None) -> None:
        self.profile, self.wait_s, self.stop = profile, wait_s, stop
        self.started = time.monotonic()
        self.told = False

    def left(self) -> float | None:
        return None if self.wait_s is None else self.wait_s - (time.monotonic() - self.started)

    def still(self, holder: str) -> float | None:
        """Another round of waiting for ``holder``; the seconds left (None: no limit)."""
        if STOP.is_set() or (self.stop is not None and self.stop.is_set()):
            raise Stopped(self.profile.name)
        left = self.left()
        if left is not None and left <= 0:
            raise in_use_error(self.profile.name, holder, self.wait_s or 0.0)
        if not self.told:
            limit = "without limit" if self.wait_s is None else f"at most {self.wait_s:g} s"
            log.warning("device %s is in use by %s: waiting for it (%s)", self.profile.name, holder, limit)
            self.told = True
        return left

    def done(self) -> None:
        if self.told:
            log.warning("device %s is free: measuring (waited %.0f s)", self.profile.name,
                        time.monotonic() - self.started)


def _acquire(profile: DeviceProfile, path: Path, wait_s: float | None, stop: threading.Event | None) -> FileLock:
    lock = FileLock(str(path), thread_local=False)
    waiting = Waiting(profile, wait_s, stop)
    while True:
        left = waiting.left()
        try:
            lock.acquire(timeout=0.0 if not waiting.told else 0.5 if left is None else min(0.5, max(0.0, left)),
                         poll_interval=0.05)
            break
        except Timeout:
            pass
        except OSError as exc:
            raise EdgebenchError(f"cannot take the lock of device {profile.name} ({path}): {exc.strerror or exc}: "
                                 f"point ${DIR_VAR} at a writable folder", ExitStatus.USAGE) from None
        waiting.still(_holder(path))
    waiting.done()
    with contextlib.suppress(OSError):
        _write_holder(path, lock_key(profile))
    return lock


def in_use_error(device: str, holder: str, wait_s: float) -> EdgebenchError:
    """The one line for a device another process kept past ``wait_s``."""
    return EdgebenchError(f"device {device} is in use by {holder}: wait for it to finish, or let edgebench wait "
                          f"longer (sweep --device-wait, ${WAIT_VAR}; now {wait_s:g} s)", ExitStatus.DEVICE)


def holder_command() -> str:
    """This process's command line as holders show it (``edgebench sweep nightly.yaml``), a store URL's
    password left out."""
    argv = sys.argv or ["python"]
    prog = "edgebench" if Path(argv[0]).name in ("edgebench", "__main__.py") else Path(argv[0]).name
    return " ".join([prog, *map(_without_password, argv[1:])])[:200]


def _without_password(word: str) -> str:
    if is_url(word):
        return redact(word)
    option, equals, value = word.partition("=")  # --store=URL
    return f"{option}={redact(value)}" if equals and is_url(value) else word


def _write_holder(path: Path, key: str) -> None:
    info = {"pid": os.getpid(), "command": holder_command(), "device": key,
            "since": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, _holder_file(path))


def _holder(path: Path) -> str:
    try:
        info: Any = json.loads(_holder_file(path).read_text())
        return printable(f"pid {int(info['pid'])} ({info['command']}) since {info['since']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "another edgebench process"


def held_locks() -> list[dict[str, Any]]:
    """The device locks held on this host now (device, pid, command, since, lock file): each holder file whose
    lock a non-blocking try cannot take; a file left by a process that is gone is skipped."""
    found = []
    for holder in sorted(lock_dir().glob("*.holder.json")):
        path = holder.with_name(holder.name[:-len(".holder.json")] + ".lock")
        lock = FileLock(str(path), thread_local=False)
        try:
            lock.acquire(timeout=0.0)
        except Timeout:
            found.append(_held_row(holder, path))
        except OSError:
            pass
        else:
            lock.release()  # nobody holds it: a holder file left behind
    return found


def _held_row(holder: Path, path: Path) -> dict[str, Any]:
    try:
        info: Any = json.loads(holder.read_text())
        return {"device": printable(str(info.get("device") or path.stem)), "pid": int(info["pid"]),
                "command": printable(str(info["command"])), "since": printable(str(info["since"])), "file": str(path)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {"device": path.stem, "pid": None, "command": "?", "since": "?", "file": str(path)}
