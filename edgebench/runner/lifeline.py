"""The runner dies with the edgebench that started it.

A runner left behind by a killed edgebench (``kill -9``, an OOM kill, a CI job cancelled hard) would go
on loading and timing a model nobody waits for, holding the device's cores and memory. On Linux the kernel
ends it when its parent exits (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); a local host also names itself in
``EDGEBENCH_PARENT_PID``, so a runner whose edgebench died before that call took hold exits at once.
Standard library only: this file runs on the device.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "EDGEBENCH_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent exits (Linux; elsewhere nothing), then exit now
    if the edgebench named in ``EDGEBENCH_PARENT_PID`` is already gone."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # a libc without prctl: the host's own clean-up still applies
            pass
    parent = os.environ.get(PARENT_ENV, "")
    if os.name == "posix" and parent.isdigit() and not _alive(int(parent)):
        os._exit(1)  # nobody is left to read a reply


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
