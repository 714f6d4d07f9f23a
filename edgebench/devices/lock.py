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
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

from edgebench.config import DeviceProfile
from edgebench.devices.stop import STOP, Stopped
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.text import printable

log = logging.getLogger("edgebench.devices")

DIR_VAR = "EDGEBENCH_LOCK_DIR"
WAIT_VAR = "EDGEBENCH_DEVICE_WAIT_S"

_held: dict[tuple[str, int], tuple[FileLock, int]] = {}  # (lock file, thread) → (its lock, depth)
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


def default_wait_s() -> float | None:
    """``$EDGEBENCH_DEVICE_WAIT_S`` in seconds; None (no limit) when unset."""
    text = os.environ.get(WAIT_VAR, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # NaN too
        raise EdgebenchError(f"{WAIT_VAR}={text!r} is not a number of seconds: set it to 0 (refuse a busy device) "
                             "or more, or unset it to wait without limit", ExitStatus.USAGE)
    return value


@contextlib.contextmanager
def device_lock(profile: DeviceProfile, wait_s: float | None = None,
                stop: threading.Event | None = None) -> Iterator[None]:
    """Hold ``profile``'s device for the block. ``wait_s``: how long to wait for another process to let it go
    (None: ``$EDGEBENCH_DEVICE_WAIT_S``, else no limit); ``stop`` (or edgebench stopping) ends the wait with
    :class:`Stopped`."""
    path = _lock_file(lock_key(profile))
    me = (str(path), threading.get_ident())
    with _guard:
        held = _held.get(me)
        if held is not None:
            _held[me] = (held[0], held[1] + 1)
    if held is None:
        lock = _acquire(profile, path, default_wait_s() if wait_s is None else wait_s, stop)
        with _guard:
            _held[me] = (lock, 1)
    try:
        yield
    finally:
        with _guard:
            lock, depth = _held.pop(me)
            if depth > 1:
                _held[me] = (lock, depth - 1)
        if depth == 1:
            with contextlib.suppress(OSError):
                _holder_file(path).unlink()
            lock.release()


def _lock_file(key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:80]
    return lock_dir() / f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.lock"


def _holder_file(path: Path) -> Path:
    return path.with_suffix(".holder.json")


def _acquire(profile: DeviceProfile, path: Path, wait_s: float | None, stop: threading.Event | None) -> FileLock:
    lock = FileLock(str(path), thread_local=False)
    started = time.monotonic()
    told = False
    while True:
        left = None if wait_s is None else wait_s - (time.monotonic() - started)
        try:
            lock.acquire(timeout=0.0 if not told else 0.5 if left is None else min(0.5, max(0.0, left)),
                         poll_interval=0.05)
            break
        except Timeout:
            pass
        except OSError as exc:
            raise EdgebenchError(f"cannot take the lock of device {profile.name} ({path}): {exc.strerror or exc}: "
                                 f"point ${DIR_VAR} at a writable folder", ExitStatus.USAGE) from None
        if STOP.is_set() or (stop is not None and stop.is_set()):
            raise Stopped(profile.name)
        holder = _holder(path)
        if left is not None and left <= 0:
            raise EdgebenchError(f"device {profile.name} is in use by {holder}: wait for it to finish, or let "
                                 f"edgebench wait longer (sweep --device-wait, ${WAIT_VAR}; now {wait_s:g} s)",
                                 ExitStatus.DEVICE)
        if not told:
            limit = "without limit" if wait_s is None else f"at most {wait_s:g} s"
            log.warning("device %s is in use by %s: waiting for it (%s)", profile.name, holder, limit)
            told = True
    if told:
        log.warning("device %s is free: measuring (waited %.0f s)", profile.name, time.monotonic() - started)
    with contextlib.suppress(OSError):
        _write_holder(path)
    return lock


def _write_holder(path: Path) -> None:
    argv = sys.argv or ["python"]
    prog = "edgebench" if Path(argv[0]).name in ("edgebench", "__main__.py") else Path(argv[0]).name
    info = {"pid": os.getpid(), "command": " ".join([prog, *argv[1:]])[:200],
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
