"""``gate --remeasure``: a stored-run gate that cannot decide a cell's latency gets more evidence instead of a
verdict it cannot support — the cell's two models measured again with the sequential A/B (``pipeline/ab``)
on the cell's device with its options, when both files are on this machine."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from edgebench.config import GateSpec
from edgebench.pipeline.ab import AB_TIMING, Budget, gate_rounds, run_sequential
from edgebench.pipeline.bench import BenchRequest
from edgebench.pipeline.gate import LATENCY_PERCENTILES, GateReport, cell_label
from edgebench.result import CellKey, Result


def request(result: Result) -> BenchRequest:
    """How to measure ``result``'s model again as it was measured: its file, device, threads, batch, input
    shapes, backend options and name."""
    shapes = result.extra.get("input_shapes") or {}
    return BenchRequest(model=Path(str(result.model.path)), device=result.device.profile,
                        threads=result.options.get("threads"), batch=result.options.get("batch"),
                        shapes={k: tuple(int(d) for d in v) for k, v in shapes.items()},
                        backend_options=dict(result.options.get("backend") or {}), timing=AB_TIMING,
                        name=result.model.name)


def undecided_cells(report: GateReport, baseline: list[Result], candidate: list[Result]
                    ) -> list[tuple[Result, Result]]:
    """The matched cells with an inconclusive latency check, as (baseline, candidate) results."""
    labels = {c.cell for c in report.checks if c.metric in LATENCY_PERCENTILES and c.verdict == "inconclusive"}
    base: dict[CellKey, Result] = {r.cell_key: r for r in baseline}
    return [(base[c.cell_key], c) for c in candidate if c.cell_key in base and cell_label(c) in labels]


def remeasure(report: GateReport, baseline: list[Result], candidate: list[Result], spec: GateSpec,
              budget: Budget = Budget(), starting: Callable[[str], None] | None = None) -> GateReport:
    """``report`` with the latency checks of every undecided cell replaced by the sequential A/B's, where
    both model files exist here; a cell that cannot be measured again keeps its checks, with the reason
    added to their notes."""
    checks = list(report.checks)
    for base, cand in undecided_cells(report, baseline, candidate):
        label = cell_label(cand)
        absent = [f"the {side}'s model " + (f"{p} is not on this machine" if p else "path is unknown")
                  for side, p in (("baseline", base.model.path), ("candidate", cand.model.path))
                  if not p or not Path(p).exists()]
        mine = [c for c in checks if c.cell == label and c.metric in LATENCY_PERCENTILES]
        if absent:
            for c in mine:
                c.message = "; ".join(filter(None, [c.message, f"not measured again: {', '.join(absent)}"]))
            continue
        if starting is not None:
            starting(label)
        pair = (request(base), request(cand))
        rounds = run_sequential(pair, spec, budget)
        fresh = [dataclasses.replace(c, cell=label, message=f"measured again (ab): {c.message}")
                 for c in gate_rounds(rounds, pair, spec, budget).checks if c.metric in LATENCY_PERCENTILES]
        at = checks.index(mine[0])
        checks = [c for c in checks if c not in mine]
        checks[at:at] = fresh
    return dataclasses.replace(report, checks=checks)
