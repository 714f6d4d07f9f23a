"""User-facing errors: one line that names the problem and the fix, and a distinct exit status.

Anything that is the user's to fix (a path, a file, a field, a device) raises :class:`EdgebenchError`;
the CLI prints its message on one line and exits with its status. Programming errors stay ordinary
exceptions so that they keep their traceback.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0
    REGRESSION = 1  # a gate found a regression
    USAGE = 2  # bad command-line usage
    NOT_FOUND = 3  # a file or path that does not exist
    INVALID_MODEL = 4  # a model or artifact that cannot be read
    DATA_MISMATCH = 5  # a dataset or input spec that does not fit the model
    CONFIG = 6  # a profile, spec or rules file with a wrong field, or an unknown name
    RUNTIME_MISSING = 7  # a runtime or converter that is not installed
    DEVICE = 8  # a device that cannot be reached or refuses the job
    RUNNER_FAILED = 9  # the runner process died or broke the protocol
    CONVERSION_FAILED = 10  # a converter or compression step failed
    CELLS_FAILED = 11
    """A sweep ran to its end but some cells failed (each stored with its error; ``--allow-failures``: 0)."""
    OUTPUT = 12
    """An output that cannot be written (read-only, full, no permission, a file where a folder belongs …) or
    a damaged results store (a file that is no store at all is USAGE)."""
    INTERRUPTED = 130
    TERMINATED = 143  # SIGTERM (128 + 15), what CI sends on cancel: stopped at once, finished cells kept


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the CLI's handler: handled as Ctrl-C is (every ``except
    KeyboardInterrupt`` catches it), except that the runners in flight are stopped at once, not awaited."""


class EdgebenchError(Exception):
    """An error the user can fix; ``str(err)`` is the one line to show."""

    status: ExitStatus = ExitStatus.USAGE

    def __init__(self, message: str, status: ExitStatus | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status

    @property
    def kind(self) -> str:
        return self.status.name.lower()
