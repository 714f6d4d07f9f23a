"""The world a command runs in: its output streams, environment variables and clock (httpie's ``Environment``).

``edgebench.cli.main(argv, env)`` hands one environment to every command, which prints through
``env.console`` and reads variables from ``env.environ``, never from ``sys.stdout`` or ``os.environ``; tests
run the CLI in process with their own streams and variables. Building it costs nothing: the rich console
is made on first use, so ``edgebench --version`` does not import rich.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, TextIO

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class Environment:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    clock: Callable[[], float] = field(default=time.monotonic)  # seconds, for elapsed times only

    @cached_property
    def console(self) -> Console:
        """Tables, progress and messages on stdout; 200 columns when stdout is not a terminal (logs, CI)."""
        from rich.console import Console

        return Console(file=self.stdout, width=None if self.stdout.isatty() else 200, _environ=self.environ)

    @property
    def ci(self) -> bool:
        """Whether this runs in CI: ``$CI`` set to anything but empty, ``0``, ``false``, ``no`` or ``off`` (GitHub
        Actions, GitLab and most CI systems set ``CI=true``)."""
        return self.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")

    @property
    def step_summary(self) -> Path | None:
        """The GitHub Actions job summary file (``$GITHUB_STEP_SUMMARY``), where the gate appends its report."""
        path = self.environ.get("GITHUB_STEP_SUMMARY")
        return Path(path) if path else None
