"""What the command modules share: the console they print to."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from edgebench.config import TimingSpec

console = Console(width=None if sys.stdout.isatty() else 200)

# The layer options of every command that takes a recipe, and the model name of those that make results.
INCLUDE_HELP = "Prune/cluster only layers whose node or weight name matches (fnmatch; repeatable)."
EXCLUDE_HELP = "Leave layers whose node or weight name matches (fnmatch; repeatable)."
ALL_LAYERS_HELP = ("Also prune/cluster the first and last layers when they hold few weights (left alone by "
                   "default; see docs/compression.md).")
NAME_HELP = "The model's name in results (default: the file's stem; for model.onnx, inference.tflite …, its folder)."


def print_warnings(lines: list[str]) -> None:
    """Warnings (a recipe that got less than it asked …), one line each, after the table."""
    from rich.markup import escape

    for line in lines:
        console.print(f"[yellow]warning:[/yellow] {escape(line)}")


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
