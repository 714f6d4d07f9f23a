"""Real file-system faults for tests: a small tmpfs mounted by the test (a disk that can be filled up, or
remounted read-only) instead of a shim. Needs root (or CAP_SYS_ADMIN); where mounting is not permitted the
tests that ask for one are skipped with the reason. Use the ``tmpfs`` fixture of ``tests/conftest.py``."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


class Tmpfs:
    """One mounted tmpfs of ``size`` bytes at ``path``."""

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size

    def fill(self) -> None:
        """Write a file until the disk is full (ENOSPC): every later write there fails."""
        with open(self.path / "filler", "ab", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        assert os.statvfs(self.path).f_bavail == 0

    def remount(self, mode: str) -> None:
        """``mode`` "ro" or "rw"; "ro" needs no file there open for writing (the kernel refuses: busy)."""
        done = _mount("-o", f"remount,{mode}", str(self.path))
        assert done.returncode == 0, done.stderr

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)


def mounted_tmpfs(base: Path) -> Iterator[Callable[..., Tmpfs]]:
    """A factory ``make(size=1 MiB, name="disk") -> Tmpfs`` mounting each under ``base``; all unmounted at the end."""
    made: list[Tmpfs] = []

    def make(size: int = 1 << 20, name: str = "disk") -> Tmpfs:
        path = base / name
        path.mkdir(parents=True)
        done = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
        if done.returncode != 0:
            pytest.skip(reason=f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
        made.append(Tmpfs(path, size))
        return made[-1]

    yield make
    for disk in reversed(made):
        disk.unmount()
