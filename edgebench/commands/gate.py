"""`edgebench gate` (compare two result files) and `edgebench ab` (paired, interleaved A/B runs).

Exit status: 0 pass, 1 regression, 2 the gate's own input is wrong (a result file, a run, the rules), 12 a
results store that cannot be read (damaged). CI reads 2 as "the gate itself is broken" and 1 as "the change
is bad", so an error in that input is exit 2 whatever its kind; a damaged store keeps the 12 every command
gives it. The runs of ``ab`` are measurements like ``bench``: their errors keep their own status
(3 a model not found, 7 a runtime missing, 8 a device …).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional, TypeVar

import typer

from edgebench.pipeline.ab import AB_TIMING, Budget, gate_rounds, run_sequential
from edgebench.pipeline.sequential import Decision
from edgebench.pipeline.bench import BenchRequest
from edgebench.commands.common import (Batch, Dataset, Device, InputRanges, InputValues, Shapes, Threads,
                                       environment, parse_ranges, parse_shapes, parse_values, store_option,
                                       timing_options, writable_file)
from edgebench.commands.progress import Steps, log_line
from edgebench.config import GateSpec, load_gate_spec
from edgebench.environment import Environment
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.gate import GateReport, is_stored_run, load_results, run_gate
from edgebench.pipeline.gate_report import gate_table, summary_line, terminal_notes, write_junit, write_markdown
from edgebench.pipeline.noise import store_floors
from edgebench.pipeline.remeasure import remeasure
from edgebench.commands.tables import result_table
from edgebench.devices.leases import use_lease_pool
from edgebench.store.locate import default_location
from edgebench.result import Result, write_results
from edgebench.text import printable

RULES_HELP = "Gate rules YAML (thresholds per metric and device); default: built-in rules (docs/ci.md)."

T = TypeVar("T")


def _gate_input(load: Callable[[], T]) -> T:
    """``load()``, any error of it exit 2 (the gate's own input is wrong) but a damaged results store (12)."""
    try:
        return load()
    except EdgebenchError as exc:
        raise EdgebenchError(str(exc), ExitStatus.OUTPUT if exc.status == ExitStatus.OUTPUT else ExitStatus.USAGE
                             ) from None


def _emit(env: Environment, report: GateReport, md: Path | None, junit: Path | None) -> None:
    env.console.print(gate_table(report))
    for line in terminal_notes(report):  # commands to copy: the user's paths as they are, never wrapped
        env.console.print(printable(line), markup=False, highlight=False, soft_wrap=True)
    try:
        summary = env.step_summary
        if summary:
            write_markdown(report, summary, append=True)
        if md:
            write_markdown(report, md)
        if junit:
            write_junit(report, junit)
    except OSError as exc:
        raise EdgebenchError(f"cannot write the gate report ({exc.strerror}: {exc.filename}): pass a writable "
                             "path to --md/--junit", ExitStatus.USAGE) from None
    env.console.print(summary_line(report))
    raise typer.Exit(int(report.exit_status))


def gate(
    ctx: typer.Context,
    baseline: str = typer.Option(..., "--baseline", "-b", help="Baseline results: a JSON file from bench/sweep "
                                 "--json or results export, or a run id/name in the store."),
    candidate: str = typer.Option(..., "--candidate", "-c", help="Candidate results, same forms."),
    store: str = store_option(),
    rules: Optional[Path] = typer.Option(None, "--rules", help=RULES_HELP),
    md: Optional[Path] = typer.Option(None, "--md", callback=writable_file, help="Write the Markdown report here."),
    junit: Optional[Path] = typer.Option(None, "--junit", callback=writable_file,
                                         help="Write JUnit XML here (one testcase per cell × metric)."),
    again: bool = typer.Option(False, "--remeasure", help="Measure again, with ab on this machine, every cell "
                               "whose latency verdict is inconclusive (both model files must be here)."),
    max_rounds: int = typer.Option(Budget.max_rounds, "--max-rounds", min=1, max=1000,
                                   help="With --remeasure: round pairs per cell at most."),
    max_time_s: float = typer.Option(Budget.max_time_s, "--max-time-s", min=1,
                                     help="With --remeasure: seconds per cell at most."),
) -> None:
    """Fail (exit 1) when the candidate regresses latency, memory, size or accuracy against the baseline."""
    env = environment(ctx)

    def judge() -> tuple[GateReport, list[Result], list[Result], GateSpec]:
        spec = load_gate_spec(rules).for_ci(env.ci)
        base, cand = load_results(baseline, store), load_results(candidate, store)
        stored = is_stored_run(baseline) or is_stored_run(candidate)
        return run_gate(base, cand, spec, store_floors(store) if stored else None), base, cand, spec

    report, base, cand, spec = _gate_input(judge)
    if again:  # measurements: their errors keep their own status, as in ab
        use_lease_pool(store)  # a PostgreSQL store: lease the boards from the team's pool
        with Steps(env) as steps:
            report = remeasure(report, base, cand, spec, Budget(max_rounds, max_time_s),
                               lambda label: steps.step(f"measuring again with ab: {label}"))
    _emit(env, report, md, junit)


def ab(
    ctx: typer.Context,
    baseline: Path = typer.Option(..., "--baseline", "-b", help="Model A (.onnx), the reference."),
    candidate: Path = typer.Option(..., "--candidate", "-c", help="Model B (.onnx), the change."),
    device: Device = "local-cpu",
    max_rounds: int = typer.Option(Budget.max_rounds, "--max-rounds", min=1, max=1000,
                                   help="Stop after this many round pairs (A and B once each) without a verdict."),
    max_time_s: float = typer.Option(Budget.max_time_s, "--max-time-s", min=1,
                                     help="Stop before a round pair that would end past this many seconds."),
    dataset: Dataset = None,
    batch: Batch = None,
    threads: Threads = None,
    shape: Shapes = [],
    input_range: InputRanges = [],
    input_value: InputValues = [],
    warmup_s: float = typer.Option(AB_TIMING.warmup_s, min=0, help="Warm up at least this long, each run."),
    warmup_iterations: int = typer.Option(AB_TIMING.warmup_iterations, min=0,
                                          help="Warm up at least this many iterations, each run."),
    min_iterations: int = typer.Option(AB_TIMING.min_iterations, min=1,
                                       help="Measure at least this many iterations, each run."),
    min_duration_s: float = typer.Option(AB_TIMING.min_duration_s, min=0, help="Measure at least this long, each run."),
    max_duration_s: float = typer.Option(AB_TIMING.max_duration_s, min=0.001,
                                         help="Stop measuring after this long, each run."),
    rules: Optional[Path] = typer.Option(None, "--rules", help=RULES_HELP),
    md: Optional[Path] = typer.Option(None, "--md", callback=writable_file, help="Write the Markdown report here."),
    junit: Optional[Path] = typer.Option(None, "--junit", callback=writable_file, help="Write JUnit XML here."),
    name: Optional[str] = typer.Option(None, help="The model's name in both results (A and B are two versions of "
                                       "it); default: each file's name by bench's rule."),
    json_out: Optional[Path] = typer.Option(None, "--json", callback=writable_file, help="Write the two pooled results here."),
) -> None:
    """Measure A and B together, round by round, until a sequential test proves the latency verdict; then gate."""
    use_lease_pool(default_location())  # $EDGEBENCH_STORE a PostgreSQL URL: lease the board from the team's pool
    env = environment(ctx)
    spec = _gate_input(lambda: load_gate_spec(rules).for_ci(env.ci))
    timing = timing_options(warmup_s, warmup_iterations, min_iterations, min_duration_s, max_duration_s)
    shapes, ranges, values = parse_shapes(shape), parse_ranges(input_range), parse_values(input_value)
    a, b = (BenchRequest(model=m, device=device, dataset=dataset, batch=batch, threads=threads, timing=timing,
                         name=name, shapes=shapes, ranges=ranges, values=values) for m in (baseline, candidate))
    budget = Budget(max_rounds, max_time_s)
    with Steps(env) as steps:
        rounds = run_sequential((a, b), spec, budget, lambda k, what: steps.step(
            f"round {k}: {what} on {device}"), _round_line(env))
    env.console.print(result_table(list(rounds.pooled)))
    if json_out:
        write_results(list(rounds.pooled), json_out)
    settle = (f"measure longer with --max-rounds {max(2 * max_rounds, max_rounds + 20)} "
              f"--max-time-s {2 * max_time_s:g}, on a quieter device, or widen the threshold")
    _emit(env, gate_rounds(rounds, (a, b), spec, budget, settle), md, junit)


def _round_line(env: Environment) -> Callable[[int, dict[str, Decision]], None]:
    """One line per round pair: where each latency metric's paired ratio and confidence sequence stand."""
    def line(k: int, decisions: dict[str, Decision]) -> None:
        parts = []
        for metric, d in decisions.items():
            bounds = f" [{d.ci[0] - 1:+.1%}, {d.ci[1] - 1:+.1%}]" if math.isfinite(d.ci[1]) else ""
            parts.append(f"{metric.removeprefix('latency_')} {d.estimate - 1:+.1%}{bounds} {d.verdict}")
        log_line(env, f"round {k}: " + "; ".join(parts))
    return line
