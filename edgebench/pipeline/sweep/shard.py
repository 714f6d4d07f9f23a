"""Sharding a sweep for a CI matrix: ``--shard I/N`` runs a deterministic share of the plan's cells into one
run that the N shards share (``--run NAME``), so N jobs fill one run that ``report`` and ``gate`` read whole.

How the cells are dealt (``deal``): every shard plans the whole spec, orders the cells by their ``CellKey``
and takes the I-th of N contiguous slices whose sizes differ by at most one cell. The key starts with (model,
recipe, format), so the cells of one conversion lie side by side and a slice boundary cuts at most one
conversion's cells in two: the shards are balanced to one cell, and at most N−1 conversions in the whole
matrix are made twice (a CI job's artifact cache is its own, so each shard converts what its cells need).
The alternatives were worse for a matrix: dealing cells round-robin balances as well but converts every
conversion with N or more cells in every shard; dealing whole conversions never converts twice, but leaves
shards idle when there are fewer conversions than shards and a shard with one big conversion (a model on
four devices × three thread counts) doing all of it while the others wait. Cells are balanced by count, not
by time: a TFLite conversion or a fine-tuning recipe costs more than an ONNX one, which no spec says up front.

Which cells are dealt must not depend on the machine a shard runs on, or two shards would disagree and a
cell would be run twice or never: the deal covers the cells the spec's device profiles run, including those
this machine skips because a local runtime is not installed here (``make_plan``'s ``_missing_here``); a shard
whose runner lacks that runtime skips its share of them, as an unsharded sweep there would.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import get as get_format
from edgebench.pipeline.sweep.plan import Cell, Plan

# A GitHub Actions matrix holds at most 256 jobs; far more shards than cells is a typo, not a plan.
MAX_SHARDS = 1024
_SHARD = re.compile(r"([0-9]+)/([0-9]+)")


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based, as a CI matrix counts) of ``total``."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"

    def args(self, run: str) -> list[str]:
        """The command-line words that run this shard again into run ``run`` (a CI retry, or a resume)."""
        return ["--shard", str(self), "--run", run]


def parse_shard(text: str) -> Shard:
    """``--shard I/N``: integers with 1 ≤ I ≤ N ≤ MAX_SHARDS; anything else is one line and a usage error."""
    found = _SHARD.fullmatch(text.strip())
    if found is None:
        raise EdgebenchError(f"--shard {text!r} is not I/N: pass this job's shard and the shard count, e.g. --shard "
                             "2/4 (in a CI matrix, the job's index from 1 and the matrix size)", ExitStatus.USAGE)
    index, total = int(found[1]), int(found[2])
    if not 1 <= total <= MAX_SHARDS:
        raise EdgebenchError(f"--shard {text}: the shard count must be 1 to {MAX_SHARDS}: pass I/N with N the "
                             "number of jobs in the matrix", ExitStatus.USAGE)
    if not 1 <= index <= total:
        raise EdgebenchError(f"--shard {text}: shard {index} of {total} does not exist: shards count from 1 to "
                             f"{total} (--shard 1/{total} … --shard {total}/{total})", ExitStatus.USAGE)
    return Shard(index, total)


def deal(cells: Sequence[Cell], total: int) -> list[list[Cell]]:
    """``cells`` ordered by their key and cut into ``total`` contiguous slices, sizes within one of each other
    (the module's docstring says why); slice ``i - 1`` is shard ``i``'s. The first shards take the larger
    slices, so with fewer cells than shards the last ones are empty."""
    ordered = sorted(cells, key=lambda cell: cell.key.astuple())
    bounds = [-(-i * len(ordered) // total) for i in range(total + 1)]  # ⌈i·M/N⌉
    return [ordered[bounds[i]:bounds[i + 1]] for i in range(total)]


def dealt_cells(plan: Plan) -> list[Cell]:
    """The cells every shard deals alike, wherever it runs: the plan's cells and those skipped only because this
    machine lacks a local runtime; the cells a device's profile cannot run are in no shard."""
    return [*plan.cells, *(cell for cell, _ in plan.skipped if _profile_runs(plan, cell))]


def shard_plan(plan: Plan, shard: Shard) -> Plan:
    """``plan`` cut down to ``shard``'s cells (its conversions follow from them); the cells no profile can run
    stay listed as skipped in every shard."""
    mine = {cell.key for cell in deal(dealt_cells(plan), shard.total)[shard.index - 1]}
    return dataclasses.replace(
        plan, cells=[cell for cell in plan.cells if cell.key in mine],
        skipped=[(cell, why) for cell, why in plan.skipped if cell.key in mine or not _profile_runs(plan, cell)])


def _profile_runs(plan: Plan, cell: Cell) -> bool:
    return get_format(cell.format).runtime in plan.profiles[cell.device].runtimes


def check_run_name(name: str) -> None:
    """``--run NAME`` names a run that commands find again by name: a name they would read as something else (a
    run id, a name with spaces at its ends, which a lookup strips) is refused up front."""
    if not name.strip():
        raise EdgebenchError("--run needs a name, e.g. --run nightly-42", ExitStatus.USAGE)
    if name != name.strip():
        raise EdgebenchError(f"--run {name!r} starts or ends with a space: pass the name without it", ExitStatus.USAGE)
    if name.isascii() and name.isdigit():
        raise EdgebenchError(f"--run {name}: a name of digits reads as a run id ('edgebench report {name}' would look "
                             f"for run id {name}): give it a letter, e.g. --run nightly-{name}", ExitStatus.USAGE)
