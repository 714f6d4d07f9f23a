"""Regression checks: does the candidate run make any cell slower, bigger, hungrier or less accurate?

A gate that cries wolf on a noisy runner gets switched off, so latency counts as a regression only when
three things hold at once (docs/ci.md explains why): the change in the percentile exceeds the threshold,
Mann–Whitney U on the raw samples says the candidate is slower (p < alpha), and the whole bootstrap CI of
the ratio lies beyond the threshold — and the change stays past the threshold after dividing out the
larger drift of either run between its own first and second half (a run that disagrees with itself by
15% cannot convict another of being 10% slower), and the two runs were measured under similar noise
(robust CVs within a factor of 3, unless even the candidate's p10 is past the threshold by more than the
noisier run's spread). A significant change past the threshold that misses the last two — or, between stored
runs, lies within the device's noise floor (``pipeline/noise.py``) — is ``inconclusive``: a failure or a warning
as the rules (or, unset, ``$CI``: ``GateSpec.for_ci``) say, with the command that would decide it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from edgebench.config import GATE_METRICS, GateSpec, ResolvedRule
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.result import CellKey, Result, Validity, read_results
from edgebench.pipeline.noise import NoiseFloor, floor_of, settle_command
from edgebench.pipeline.stats import (MannWhitney, bootstrap_ratio_ci, half_drift, mann_whitney, nearest_rank,
                             summarize_ns, throughput_per_s)

if TYPE_CHECKING:
    from edgebench.store.locate import StoreLocation

LATENCY_PERCENTILES = {"latency_p50": 50, "latency_p90": 90, "latency_p99": 99}
FAILING = {"regression", "error"}
# Two runs whose robust CVs (1.4826·MAD/median) differ this much, the larger above NOISY_CV, were not
# measured under the same conditions (a neighbour's load during one of them): they cannot convict — unless
# even the candidate's SEPARATION_PERCENTILE is past the baseline's percentile × (1 + threshold) by more than
# SPREADS × the noisier run's robust CV: load only adds time, so no load explains that (docs/ci.md).
NOISE_MISMATCH, NOISY_CV = 3.0, 0.03
SEPARATION_PERCENTILE, SPREADS = 10, 3.0


@dataclass
class Check:
    """One testcase: one metric of one cell."""

    cell: str
    metric: str
    verdict: str  # pass | improved | regression | inconclusive | missing | error
    baseline: float | None = None
    candidate: float | None = None
    unit: str = ""
    ratio: float | None = None  # candidate / baseline, for relative metrics
    ci: tuple[float, float] | None = None  # bootstrap CI of the ratio (latency)
    p: float | None = None  # one-sided Mann–Whitney p in the direction of the change (latency)
    delta_points: float | None = None  # candidate − baseline, in points (accuracy)
    rule: str = ""
    message: str = ""
    failed: bool = False
    settle: str = ""  # for an inconclusive latency verdict: the command that would decide it, or why none here


@dataclass
class GateReport:
    checks: list[Check]
    missing_cells: list[str] = field(default_factory=list)  # in the baseline, absent from the candidate
    new_cells: list[str] = field(default_factory=list)  # in the candidate only: nothing to compare with
    noise_floors: list[NoiseFloor] = field(default_factory=list)  # per gated device, when stored runs were gated

    @property
    def failed(self) -> bool:
        return any(c.failed for c in self.checks)

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.REGRESSION if self.failed else ExitStatus.OK

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.checks)


def is_stored_run(ref: str) -> bool:
    """Whether ``load_results`` reads ``ref`` from the results store (a run id or name), not from a file."""
    return not (Path(ref).expanduser().exists() or ref.endswith(".json") or os.sep in ref)


def load_results(ref: str, store: "StoreLocation | None" = None) -> list[Result]:
    """Results named by a reference: a result JSON file (one object or a list, as ``bench --json``,
    ``sweep --json`` and ``results export --json`` write), or a run id/name in the results store."""
    if not is_stored_run(ref):
        results = read_results(Path(ref).expanduser())
    else:
        from edgebench.store.locate import default_location, open_store, store_exists
        from edgebench.store.runs import check_complete

        store_path = store or default_location()
        if not store_exists(store_path):
            raise EdgebenchError(f"{ref!r} is neither a result file nor a run in a store ({store_path} does not "
                                 "exist): pass a JSON file from 'edgebench bench/sweep --json', or --store PATH",
                                 ExitStatus.USAGE)
        with open_store(store_path, read_only=True) as db:
            run = db.run(ref)
            check_complete(run)  # a shared run with shards still out would gate a part as the whole
            results = db.results(run.id)
    if not results:  # a gate over nothing would pass, whatever changed
        raise EdgebenchError(f"{ref} holds no results: pass a file or run with at least one measured cell",
                             ExitStatus.USAGE)
    return results


def cell_label(result: Result) -> str:
    m, o = result.model, result.options
    backend = o.get("backend")
    backend = backend if isinstance(backend, dict) else {}
    shown = {**{k: v for k, v in o.items() if k not in ("shapes", "backend")}, **backend}
    opts = " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in sorted(shown.items()))
    return f"{m.name}/{m.recipe}/{m.format}@{result.device.profile}" + \
        (f" {opts}" if opts else "")


def _some(labels: list[str], shown: int = 5) -> str:
    """The first ``shown`` labels, then how many more."""
    more = f" … and {len(labels) - shown} more" if len(labels) > shown else ""
    return ", ".join(labels[:shown]) + more


def _index(results: list[Result], side: str) -> dict[CellKey, Result]:
    cells: dict[CellKey, Result] = {}
    for r in results:
        if r.cell_key in cells:
            raise EdgebenchError(f"the {side} holds two results for cell {cell_label(r)}: gate one run per "
                                 "file (or pool them with 'edgebench ab')", ExitStatus.USAGE)
        cells[r.cell_key] = r
    return cells


def run_gate(baseline: list[Result], candidate: list[Result], spec: GateSpec,
             floors: dict[str, NoiseFloor] | None = None) -> GateReport:
    """Match cells by (model, recipe, format, device, options) and check every enabled metric; ``floors``:
    each device's noise floor between stored runs (``pipeline/noise.py``), when stored runs are gated."""
    versions = {r.schema_version for r in baseline} | {r.schema_version for r in candidate}
    if len(versions) > 1:
        raise EdgebenchError(f"baseline and candidate mix result schema versions {sorted(versions)}: re-run "
                             "the older side with this edgebench", ExitStatus.USAGE)
    base, cand = _index(baseline, "baseline"), _index(candidate, "candidate")
    _check_matched(base, cand, spec)
    checks: list[Check] = []
    for key, c in cand.items():
        if key in base:
            checks += compare(base[key], c, spec, floor=None if floors is None else floor_of(floors, key.device))
        elif not c.ok:
            checks.append(_error_check(c))
    missing = [cell_label(r) for k, r in base.items() if k not in cand]
    checks += [Check(cell=label, metric="presence", verdict="missing", failed=spec.missing == "fail",
                     message="in the baseline, absent from the candidate") for label in missing]
    return GateReport(checks=checks, missing_cells=missing,
                      new_cells=[cell_label(r) for k, r in cand.items() if k not in base and r.ok],
                      noise_floors=[] if floors is None else [floor_of(floors, d) for d in
                                                              sorted({k.device for k in cand if k in base})])


def _check_matched(base: dict[CellKey, Result], cand: dict[CellKey, Result], spec: GateSpec) -> None:
    """Refuse (exit 2) what would otherwise pass unjudged: no cell in common, or a matched cell whose latency
    cannot be judged because a side that ran has no samples."""
    matched = [k for k in cand if k in base]
    if not matched:
        raise EdgebenchError(
            f"no candidate cell matches a baseline cell, so nothing would be gated (baseline cells: "
            f"{_some([cell_label(r) for r in base.values()])}; candidate cells: "
            f"{_some([cell_label(r) for r in cand.values()])})"
            ": cells match by model name, recipe, format, device and options — name the model the same way on both "
            "sides (bench --name, or the sweep spec's model name; both default to the file's name) and measure on "
            "the same device with the same --threads, --batch and --option", ExitStatus.USAGE)
    bare = [f"{side} {cell_label(r)}" for k in matched for side, r in (("baseline", base[k]), ("candidate", cand[k]))
            if r.ok and not r.samples_ns and any(spec.rule(m, r.device.profile).enabled for m in LATENCY_PERCENTILES)]
    if bare:
        raise EdgebenchError(
            f"no latency samples ('samples_ns' is empty) in {_some(bare)}: the gate judges latency on the raw "
            "samples — pass results as edgebench writes them (bench/sweep --json and results export --json keep "
            "every sample), re-run the benchmark, or disable the latency metrics in --rules", ExitStatus.USAGE)


def _error_check(cand: Result, label: str | None = None) -> Check:
    err = cand.error
    kind, message = (err.kind, err.message) if err is not None else ("error", "no message")
    return Check(cell=label or cell_label(cand), metric="status", verdict="error", failed=True,
                 message=f"candidate failed: {kind}: {message}")


def compare(base: Result, cand: Result, spec: GateSpec, label: str | None = None,
            skip: tuple[str, ...] = (), floor: NoiseFloor | None = None) -> list[Check]:
    """Every enabled metric of one cell but those in ``skip`` (judged elsewhere); a failed candidate is a
    failure of its own, never skipped. ``floor``: the device's noise floor between stored runs."""
    label = label or cell_label(cand)
    if not cand.ok:
        return [_error_check(cand, label)]
    if not base.ok:
        # Not an improvement: a broken run on main would otherwise pass every later gate.
        return [Check(cell=label, metric="status", verdict="missing", failed=spec.missing == "fail",
                      message="the baseline cell failed, so there is nothing to compare the candidate with: "
                              "re-run the baseline")]
    device = cand.device.profile
    mw = functools.cache(lambda: mann_whitney(base.samples_ns, cand.samples_ns))
    checks = []
    for metric in GATE_METRICS:
        rule = spec.rule(metric, device)
        if not rule.enabled or metric in skip:
            continue
        if metric in LATENCY_PERCENTILES:
            check = _latency(label, rule, base, cand, mw, spec, floor)
        elif metric in ("accuracy_top1", "agreement_top1"):
            key = "top1" if metric == "accuracy_top1" else "agreement_top1"
            check = _points(label, rule, base.accuracy.metric(key), cand.accuracy.metric(key))
        elif metric == "memory_peak":
            check = _relative(label, rule, base.memory_mb.peak, cand.memory_mb.peak, "MB")
        elif metric in ENERGY_UNITS:
            check = _relative(label, rule, _energy(base, metric), _energy(cand, metric), ENERGY_UNITS[metric])
        else:
            check = _relative(label, rule, base.model.size_bytes, cand.model.size_bytes, "B")
        if check is not None:
            if check.verdict == "regression" and rule.severity == "warn":
                check.message = "; ".join(filter(None, ["severity warn: reported, not failed", check.message]))
            check.failed = rule.severity == "fail" and (
                check.verdict in FAILING or (check.verdict == "inconclusive" and spec.inconclusive == "fail"
                                             and (check.ratio or 0) > 1)  # a faster-or-same never fails
                or (check.verdict == "missing" and spec.missing == "fail"))
            checks.append(check)
    return checks


ENERGY_UNITS = {"energy_mj_per_inference": "mJ", "avg_power_w": "W"}


def _energy(result: Result, metric: str) -> float | None:
    """An energy figure of ``result`` (None without one, or at 0: below what its sensor resolves)."""
    value = getattr(result.energy, metric) if result.energy is not None else None
    return float(value) if value else None


def _absent(label: str, rule: ResolvedRule, base: Any) -> Check | None:
    """None when neither side has the metric (nothing to check); a ``missing`` check when only the
    baseline has it (the candidate lost a measurement)."""
    if base is None:
        return None
    return Check(cell=label, metric=rule.metric, verdict="missing", baseline=base,
                 message="the baseline has this metric, the candidate does not")


def _latency(label: str, rule: ResolvedRule, base: Result, cand: Result,
             mw: Callable[[], MannWhitney], spec: GateSpec, floor: NoiseFloor | None = None) -> Check | None:
    p = LATENCY_PERCENTILES[rule.metric]
    if not base.samples_ns or not cand.samples_ns:
        return _absent(label, rule, base.latency_ms.percentile(p) if base.samples_ns and base.latency_ms else None)
    a, b = np.sort(np.asarray(base.samples_ns, dtype=float)), np.sort(np.asarray(cand.samples_ns, dtype=float))
    va, vb = nearest_rank(a, p) / 1e6, nearest_rank(b, p) / 1e6
    ratio = vb / va
    ci = bootstrap_ratio_ci(base.samples_ns, cand.samples_ns, p, spec.confidence, spec.resamples, spec.seed,
                            rounds=(base.extra.get("round_sizes"), cand.extra.get("round_sizes")))
    test = mw()
    hi = 1 + (rule.threshold or 0.0)
    alpha = rule.alpha or 0.0
    verdict = "pass"
    if ratio > hi and test.p_greater < alpha:
        verdict = "regression" if ci[0] > hi else "inconclusive"
    elif ratio < 1 / hi and test.p_less < alpha and ci[1] < 1 / hi:
        verdict = "improved"
    notes = [f"{side} throttled" for side, r in (("baseline", base), ("candidate", cand)) if r.validity.throttled]
    drifts = {side: half_drift(r.samples_ns, p) for side, r in (("baseline", base), ("candidate", cand))
              if len(r.samples_ns) >= 2}
    worst = max((max(d, 1 / d) for d in drifts.values()), default=1.0)
    if verdict == "regression" and ratio / worst <= hi:
        verdict = "inconclusive"
        notes += [f"{side} p{p} moved {d - 1:+.1%} between its own halves" for side, d in drifts.items()
                  if max(d, 1 / d) == worst]
    cvs = sorted(summarize_ns(r.samples_ns).robust_cv for r in (base, cand))
    if verdict == "regression" and cvs[1] > NOISY_CV and cvs[1] > NOISE_MISMATCH * cvs[0]:
        noise = f"the runs were measured under different noise (robust CV {cvs[0]:.1%} vs {cvs[1]:.1%})"
        low = nearest_rank(b, SEPARATION_PERCENTILE) / 1e6
        if low > va * hi * (1 + SPREADS * cvs[1]):  # load only adds time: even the fast end moved past it
            notes.append(f"{noise}, but even the candidate's p{SEPARATION_PERCENTILE} is {low / va - 1:+.1%} past "
                         f"the baseline's p{p}: more than {SPREADS:g}× the noisier run's spread")
        else:
            verdict = "inconclusive"
            notes.append(noise)
    if floor is not None and floor.floor is not None and (rule.threshold or 0.0) < floor.floor:
        notes.append(f"this device's noise floor between stored runs is {floor.floor:.1%} (from {floor.pairs} A/A "
                     "pairs): changes below it cannot be resolved from stored runs; use ab")
        if verdict in ("regression", "improved") and max(ratio, 1 / ratio) - 1 <= floor.floor:
            verdict = "inconclusive"
    return Check(cell=label, metric=rule.metric, verdict=verdict, baseline=va, candidate=vb, unit="ms",
                 ratio=ratio, ci=ci, p=test.p_greater if ratio >= 1 else test.p_less,
                 rule=f">{rule.threshold:.0%}, p<{alpha:g}, CI beyond", message="; ".join(notes),
                 settle=settle_command(base, cand) if verdict == "inconclusive" else "")


def _relative(label: str, rule: ResolvedRule, base: float | None, cand: float | None, unit: str) -> Check | None:
    if base is None or cand is None or base <= 0:
        return _absent(label, rule, base)
    ratio = cand / base
    hi = 1 + (rule.threshold or 0.0)
    verdict = "regression" if ratio > hi else "improved" if ratio < 1 / hi else "pass"
    return Check(cell=label, metric=rule.metric, verdict=verdict, baseline=float(base), candidate=float(cand),
                 unit=unit, ratio=ratio, rule=f">{rule.threshold:.0%}")


def _points(label: str, rule: ResolvedRule, base: float | None, cand: float | None) -> Check | None:
    if base is None or cand is None:
        return _absent(label, rule, base)
    delta = (cand - base) * 100
    limit = rule.max_drop_points or 0.0
    verdict = "regression" if -delta > limit else "improved" if delta > limit else "pass"
    return Check(cell=label, metric=rule.metric, verdict=verdict, baseline=base * 100, candidate=cand * 100,
                 unit="%", delta_points=delta, rule=f"drop>{limit:g} pt")


def pool(rounds: list[Result]) -> Result:
    """One result from several short runs of the same cell: samples concatenated (never averages of
    averages), peak memory the highest, validity the worst; a failed round makes the pool that failure."""
    failed = next((r for r in rounds if not r.ok), None)
    if failed is not None:
        return failed
    first = rounds[0]
    samples = [s for r in rounds for s in r.samples_ns]
    peaks = [r.memory_mb.peak for r in rounds if r.memory_mb.peak is not None]
    validity = Validity(**{k: (any if k in ("throttled", "stopped_by_max_duration") else all)(
        r.validity.flag(k) for r in rounds) for k in first.validity.to_dict()})
    return dataclasses.replace(
        first, samples_ns=samples, latency_ms=summarize_ns(samples), iterations=len(samples),
        duration_s=sum(r.duration_s for r in rounds), throughput_per_s=throughput_per_s(samples, first.batch),
        memory_mb=dataclasses.replace(first.memory_mb, peak=max(peaks, default=None)), validity=validity,
        extra={**first.extra, "rounds": len(rounds), "round_sizes": [len(r.samples_ns) for r in rounds],
               "round_p50_ms": [r.p50 for r in rounds]})
