"""`edgebench gate` (compare two result files) and `edgebench ab` (paired, interleaved A/B runs).

Exit status: 0 pass, 1 regression, 2 any usage or input error. CI reads 2 as "the gate itself is
broken" and 1 as "the change is bad", so every EdgebenchError is mapped to 2 here, inside the command,
leaving the global mapping of the other commands alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import typer

from edgebench.bench import BenchRequest, model_name, run_bench
from edgebench.commands.bench import RANGE_HELP, SHAPE_HELP, VALUE_HELP, parse_ranges, parse_shapes, parse_values
from edgebench.commands.common import console, timing_options
from edgebench.commands.results import store_option
from edgebench.config import load_gate_spec
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.gate import GateReport, compare, load_results, pool, run_gate
from edgebench.gate_report import gate_table, summary_line, write_junit, write_markdown
from edgebench.render import result_table
from edgebench.result import Result, write_results

RULES_HELP = "Gate rules YAML (thresholds per metric and device); default: built-in rules (docs/ci.md)."


def _as_usage(action: Callable[[], GateReport]) -> GateReport:
    try:
        return action()
    except EdgebenchError as exc:
        raise EdgebenchError(str(exc), ExitStatus.USAGE) from None


def _emit(report: GateReport, md: Path | None, junit: Path | None) -> None:
    console.print(gate_table(report))
    try:
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            write_markdown(report, Path(summary), append=True)
        if md:
            write_markdown(report, md)
        if junit:
            write_junit(report, junit)
    except OSError as exc:
        raise EdgebenchError(f"cannot write the gate report ({exc.strerror}: {exc.filename}): pass a writable "
                             "path to --md/--junit", ExitStatus.USAGE) from None
    console.print(summary_line(report))
    raise typer.Exit(int(report.exit_status))


def gate(
    baseline: str = typer.Option(..., "--baseline", "-b", help="Baseline results: a JSON file from bench/sweep "
                                 "--json or results export, or a run id/name in the store."),
    candidate: str = typer.Option(..., "--candidate", "-c", help="Candidate results, same forms."),
    store: Path = store_option(),
    rules: Optional[Path] = typer.Option(None, "--rules", help=RULES_HELP),
    md: Optional[Path] = typer.Option(None, "--md", help="Write the Markdown report here."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here (one testcase per cell × metric)."),
) -> None:
    """Fail (exit 1) when the candidate regresses latency, memory, size or accuracy against the baseline."""
    report = _as_usage(lambda: run_gate(load_results(baseline, store), load_results(candidate, store),
                                           load_gate_spec(rules)))
    _emit(report, md, junit)


def ab(
    baseline: Path = typer.Option(..., "--baseline", "-b", help="Model A (.onnx), the reference."),
    candidate: Path = typer.Option(..., "--candidate", "-c", help="Model B (.onnx), the change."),
    device: str = typer.Option("local-cpu", "--device", "-d", help="Device profile name or YAML path."),
    rounds: int = typer.Option(5, min=1, max=1000, help="Rounds; each runs A then B once."),
    dataset: Optional[Path] = typer.Option(None, help=".npz with one array per input (+ optional labels)."),
    batch: Optional[int] = typer.Option(None, min=1, help="Batch size for a dynamic first dimension."),
    threads: Optional[int] = typer.Option(None, min=0, help="Runtime threads (0: runtime default)."),
    shape: list[str] = typer.Option([], help=SHAPE_HELP),
    input_range: list[str] = typer.Option([], help=RANGE_HELP),
    input_value: list[str] = typer.Option([], help=VALUE_HELP),
    warmup_s: float = typer.Option(0.2, min=0, help="Warm up at least this long, each run."),
    warmup_iterations: int = typer.Option(5, min=0, help="Warm up at least this many iterations, each run."),
    min_iterations: int = typer.Option(50, min=1, help="Measure at least this many iterations, each run."),
    min_duration_s: float = typer.Option(0.5, min=0, help="Measure at least this long, each run."),
    max_duration_s: float = typer.Option(10.0, min=0.001, help="Stop measuring after this long, each run."),
    rules: Optional[Path] = typer.Option(None, "--rules", help=RULES_HELP),
    md: Optional[Path] = typer.Option(None, "--md", help="Write the Markdown report here."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here."),
    name: Optional[str] = typer.Option(None, help="The model's name in both results (A and B are two versions of "
                                       "it); default: each file's name by bench's rule."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the two pooled results here."),
) -> None:
    """Run A, B, A, B … on one device so drift and heat hit both alike, then gate the pooled samples."""

    def measure() -> GateReport:
        spec = load_gate_spec(rules)
        timing = timing_options(warmup_s, warmup_iterations, min_iterations, min_duration_s, max_duration_s)
        inputs = {"shapes": parse_shapes(shape), "ranges": parse_ranges(input_range),
                  "values": parse_values(input_value)}
        reqs = [BenchRequest(model=m, device=device, dataset=dataset, batch=batch, threads=threads, timing=timing,
                             name=name, **inputs) for m in (baseline, candidate)]
        runs: tuple[list[Result], list[Result]] = ([], [])
        with console.status("A/B rounds…") as status:
            for k in range(rounds):
                for side, req in enumerate(reqs):
                    status.update(f"round {k + 1}/{rounds}: {'AB'[side]} ({req.model.name}) on {device}")
                    runs[side].append(run_bench(req))
        pooled = [pool(runs[0]), pool(runs[1])]
        console.print(result_table(pooled))
        if json_out:
            write_results(pooled, json_out)
        label = f"{model_name(baseline)} → {model_name(candidate)} @{device}"
        label = f"{name}: {label}" if name else label
        return GateReport(checks=compare(pooled[0], pooled[1], spec, label))

    _emit(_as_usage(measure), md, junit)


def install(app: typer.Typer) -> None:
    app.command()(gate)
    app.command()(ab)
