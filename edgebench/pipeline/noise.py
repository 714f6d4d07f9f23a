"""The noise floor between stored runs: how far a device's median moves between two runs of the same artifact.

Two stored results of one cell (model, recipe, format, device, options) that measured the same artifact —
the same source model hash, precision, converter versions and runtime — in different runs are an A/A pair:
nothing changed but the run. Across all consecutive such pairs on a device, the change of the median,
``|Δ| = max(r, 1/r) − 1`` with ``r`` the ratio of the two p50s, is what separate runs on that device disagree
by when nothing changed. Its 95th percentile (nearest rank) is the device's **noise floor**: a change
smaller than it cannot be told from noise by comparing stored runs, only by measuring both sides
interleaved (``edgebench ab``). Below ``MIN_PAIRS`` pairs there is no floor.

:func:`settle_command` names what decides a verdict that stored runs leave inconclusive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
import shlex
from pathlib import Path

from edgebench.pipeline.stats import nearest_rank
from edgebench.result import CellKey, Result
from edgebench.store.base import StoredLatency
from edgebench.store.locate import StoreLocation, open_store

QUANTILE = 95  # the floor: this percentile of |Δ| over a device's A/A pairs
MIN_PAIRS = 5  # fewer pairs than this give no floor


@dataclass(frozen=True)
class NoiseFloor:
    device: str
    pairs: int  # A/A pairs on the device
    median: float | None = None  # the median |Δ| of those pairs (a fraction: 0.03 = 3%)
    floor: float | None = None  # their QUANTILE-th percentile; None with fewer than MIN_PAIRS pairs

    def describe(self) -> str:
        if self.floor is not None:
            return f"noise floor (A/A between runs): {self.floor:.1%} from {self.pairs} pairs"
        if not self.pairs:
            return "no A/A history"
        return f"not enough A/A history: {self.pairs} pair{'s' * (self.pairs != 1)} ({MIN_PAIRS} needed)"


def aa_changes(history: Iterable[StoredLatency]) -> dict[str, list[float]]:
    """Per device, |Δ| of the p50 between each stored result and the previous one of its cell and artifact in
    another run (``history`` oldest first, as :meth:`BaseStore.latency_history` gives it)."""
    last: dict[tuple[CellKey, tuple[str, ...]], StoredLatency] = {}
    changes: dict[str, list[float]] = {}
    for row in history:
        previous = last.get((row.key, row.artifact))
        if previous is not None and previous.run_id != row.run_id:
            ratio = row.p50_ms / previous.p50_ms
            changes.setdefault(row.key.device, []).append(max(ratio, 1 / ratio) - 1)
        last[(row.key, row.artifact)] = row
    return changes


def noise_floors(history: Iterable[StoredLatency]) -> dict[str, NoiseFloor]:
    """Each device's floor from the A/A pairs in ``history`` (devices without a pair are absent: see
    :func:`floor_of`)."""
    floors = {}
    for device, changes in aa_changes(history).items():
        ordered = sorted(changes)
        floors[device] = NoiseFloor(device, len(ordered), nearest_rank(ordered, 50),
                                    nearest_rank(ordered, QUANTILE) if len(ordered) >= MIN_PAIRS else None)
    return floors


def store_floors(path: StoreLocation) -> dict[str, NoiseFloor]:
    """The floors of every device from the results store at ``path``."""
    with open_store(path, read_only=True) as db:
        return noise_floors(db.latency_history())


def floor_of(floors: Mapping[str, NoiseFloor], device: str) -> NoiseFloor:
    """The device's floor, or one of 0 pairs (no A/A history)."""
    return floors.get(device) or NoiseFloor(device, 0)


def settle_command(base: Result, cand: Result) -> str:
    """The command that decides an inconclusive latency verdict of ``cand`` against ``base``: ``edgebench ab``
    on both models interleaved on the cell's device with its options — or, when a model file is unknown or
    not on this machine, which and what would do it where both are at hand."""
    absent = [f"the {side}'s model " + (f"{path} does not exist on this machine" if path else "path is unknown")
              for side, path in (("baseline", base.model.path), ("candidate", cand.model.path))
              if not path or not Path(path).exists()]
    if absent:
        return f"{'; '.join(absent)}: 'edgebench gate --remeasure' decides it where both artifacts are at hand"
    args = ["edgebench", "ab", "--baseline", str(base.model.path), "--candidate", str(cand.model.path),
            "--device", cand.device.profile]
    for option in ("threads", "batch"):
        if cand.options.get(option) is not None:
            args += [f"--{option}", str(cand.options[option])]
    return shlex.join(args + ["--name", cand.model.name])
