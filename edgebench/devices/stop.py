"""Stopping the runners in flight at once, when edgebench itself is stopping (SIGTERM, a second Ctrl-C).

A signal stops the whole process, so the flag is process-wide: the sweep sets it (and clears it when a sweep
starts), every transport checks it while it waits for a runner, kills that runner (on this machine or on the
board) and raises :class:`Stopped`. A runner waited for in the main thread is killed by the
``KeyboardInterrupt`` itself, as ``subprocess.run`` does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from contextlib import suppress

from edgebench.errors import EdgebenchError, ExitStatus

STOP = threading.Event()


class Stopped(EdgebenchError):
    """A runner killed because edgebench is stopping: no result, nothing to record."""

    status = ExitStatus.INTERRUPTED

    def __init__(self, device: str) -> None:
        super().__init__(f"the runner on {device} was stopped: edgebench is stopping (interrupted or terminated)")


def kill_group(proc: subprocess.Popen[str], grace_s: float = 5.0) -> None:
    """End ``proc`` and everything it started (it leads its own session): SIGTERM, then SIGKILL after
    ``grace_s``; its pipes are drained and closed."""
    for polite in (True, False):
        with suppress(ProcessLookupError, PermissionError):
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, signal.SIGTERM if polite else signal.SIGKILL)
            else:  # Windows: no process groups to signal
                proc.terminate() if polite else proc.kill()
        try:
            proc.communicate(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue
