"""What the command modules share: the console they print to."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from edgebench.config import TimingSpec

console = Console(width=None if sys.stdout.isatty() else 200)


def timing_options(warmup_s: float, warmup_iterations: int, min_iterations: int, min_duration_s: float,
                   max_duration_s: float) -> "TimingSpec":
    """The timing rules from command-line options; a maximum below the minimum is one line, exit 2."""
    from edgebench.config import TimingSpec
    from edgebench.errors import EdgebenchError, ExitStatus

    if max_duration_s < min_duration_s:
        raise EdgebenchError(f"--max-duration-s {max_duration_s} is below --min-duration-s {min_duration_s}: "
                             "raise it", ExitStatus.USAGE)
    return TimingSpec(warmup_s=warmup_s, warmup_iterations=warmup_iterations, min_iterations=min_iterations,
                      min_duration_s=min_duration_s, max_duration_s=max_duration_s)
