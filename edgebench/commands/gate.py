"""`edgebench gate` (compare two result files) and `edgebench ab` (paired, interleaved A/B runs).

Exit status: 0 pass, 1 regression, 2 the gate's own input is wrong (a result file, a run, the rules), 12 a
results store that cannot be read (damaged). CI reads 2 as "the gate itself is broken" and 1 as "the change
is bad", so an error in that input is exit 2 whatever its kind; a damaged store keeps the 12 every command
gives it. The runs of ``ab`` are measurements like ``bench``: their errors keep their own status
(3 a model not found, 7 a runtime missing, 8 a device …).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, TypeVar

import typer

from edgebench.pipeline.ab import gate_pair, run_rounds
from edgebench.pipeline.bench import BenchRequest
from edgebench.commands.common import (Batch, Dataset, Device, InputRanges, InputValues, Shapes, Threads,
                                       environment, parse_ranges, parse_shapes, parse_values, store_option,
                                       timing_options, writable_file)
from edgebench.commands.progress import Steps
from edgebench.config import load_gate_spec
from edgebench.environment import Environment
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.gate import GateReport, load_results, run_gate
from edgebench.pipeline.gate_report import gate_table, summary_line, write_junit, write_markdown
from edgebench.commands.tables import result_table
from edgebench.result import write_results

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
    store: Path = store_option(),
    rules: Optional[Path] = typer.Option(None, "--rules", help=RULES_HELP),
    md: Optional[Path] = typer.Option(None, "--md", callback=writable_file, help="Write the Markdown report here."),
    junit: Optional[Path] = typer.Option(None, "--junit", callback=writable_file,
                                         help="Write JUnit XML here (one testcase per cell × metric)."),
) -> None:
    """Fail (exit 1) when the candidate regresses latency, memory, size or accuracy against the baseline."""
    report = _gate_input(lambda: run_gate(load_results(baseline, store), load_results(candidate, store),
                                          load_gate_spec(rules)))
    _emit(environment(ctx), report, md, junit)


def ab(
    ctx: typer.Context,
    baseline: Path = typer.Option(..., "--baseline", "-b", help="Model A (.onnx), the reference."),
    candidate: Path = typer.Option(..., "--candidate", "-c", help="Model B (.onnx), the change."),
    device: Device = "local-cpu",
    rounds: int = typer.Option(5, min=1, max=1000, help="Rounds; each runs A then B once."),
    dataset: Dataset = None,
    batch: Batch = None,
    threads: Threads = None,
    shape: Shapes = [],
    input_range: InputRanges = [],
    input_value: InputValues = [],
    warmup_s: float = typer.Option(0.2, min=0, help="Warm up at least this long, each run."),
    warmup_iterations: int = typer.Option(5, min=0, help="Warm up at least this many iterations, each run."),
    min_iterations: int = typer.Option(50, min=1, help="Measure at least this many iterations, each run."),
    min_duration_s: float = typer.Option(0.5, min=0, help="Measure at least this long, each run."),
    max_duration_s: float = typer.Option(10.0, min=0.001, help="Stop measuring after this long, each run."),
    rules: Optional[Path] = typer.Option(None, "--rules", help=RULES_HELP),
    md: Optional[Path] = typer.Option(None, "--md", callback=writable_file, help="Write the Markdown report here."),
    junit: Optional[Path] = typer.Option(None, "--junit", callback=writable_file, help="Write JUnit XML here."),
    name: Optional[str] = typer.Option(None, help="The model's name in both results (A and B are two versions of "
                                       "it); default: each file's name by bench's rule."),
    json_out: Optional[Path] = typer.Option(None, "--json", callback=writable_file, help="Write the two pooled results here."),
) -> None:
    """Run A, B, A, B … on one device so drift and heat hit both alike, then gate the pooled samples."""
    env = environment(ctx)
    spec = _gate_input(lambda: load_gate_spec(rules))
    timing = timing_options(warmup_s, warmup_iterations, min_iterations, min_duration_s, max_duration_s)
    shapes, ranges, values = parse_shapes(shape), parse_ranges(input_range), parse_values(input_value)
    a, b = (BenchRequest(model=m, device=device, dataset=dataset, batch=batch, threads=threads, timing=timing,
                         name=name, shapes=shapes, ranges=ranges, values=values) for m in (baseline, candidate))
    with Steps(env) as steps:
        pooled = run_rounds((a, b), rounds, lambda k, side, req: steps.step(
            f"round {k + 1}/{rounds}: {'AB'[side]} ({req.model.name}) on {device}"))
    env.console.print(result_table(pooled))
    if json_out:
        write_results(list(pooled), json_out)
    _emit(env, gate_pair(pooled, (a, b), spec), md, junit)
