"""`edgebench bench`: one model or artifact on one device."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgebench.bench import BenchRequest, run_bench
from edgebench.commands.common import (ALL_LAYERS_HELP, EXCLUDE_HELP, INCLUDE_HELP, NAME_HELP, console,
                                       print_warnings, timing_options)
from edgebench.compress.graph import layer_selection
from edgebench.data import parse_shape
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.render import result_table
from edgebench.result import write_results

SHAPE_HELP = "Sizes for dynamic dims: NAME:1x3x224x224 (repeatable; default: from --dataset)."
RANGE_HELP = ("Random-input range [LOW, HIGH): NAME:LOW:HIGH (repeatable; an integer input defaults to the "
              "values its graph shows as valid).")
VALUE_HELP = "Fixed input value: NAME=VALUE (repeatable), e.g. sr=16000."


def parse_shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    return dict(parse_shape(s) for s in items)


def parse_ranges(items: list[str]) -> dict[str, tuple[float, float]]:
    ranges = {}
    for item in items:
        name, _, rest = item.partition(":")
        low, _, high = rest.partition(":")
        try:
            ranges[name] = (float(low), float(high))
        except ValueError:
            ranges[name] = (0.0, 0.0)
        if not name or not ranges[name][0] < ranges[name][1]:
            raise EdgebenchError(f"bad --input-range {item!r}: write NAME:LOW:HIGH with LOW < HIGH (e.g. "
                                 "ids:0:30522)", ExitStatus.USAGE)
    return ranges


def parse_values(items: list[str]) -> dict[str, float]:
    values = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            values[name] = float(value)
        except ValueError:
            raise EdgebenchError(f"bad --input-value {item!r}: write NAME=VALUE (e.g. sr=16000)",
                                 ExitStatus.USAGE) from None
    return values


def parse_options(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` runtime options; integers stay integers, commas make lists."""
    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EdgebenchError(f"bad --option {item!r}: write KEY=VALUE (e.g. graph_optimization_level=basic)",
                                 ExitStatus.USAGE)
        parts = [int(v) if v.lstrip("-").isdigit() else v for v in value.split(",")]
        options[key] = parts if "," in value or key.endswith("providers") else parts[0]
    return options


def bench(
    model: Path = typer.Argument(..., help="Model or artifact: .onnx, .xml (OpenVINO IR), .tflite, .engine/.plan."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Convert the .onnx to this format first (through the cache)."),
    precision: Optional[str] = typer.Option(None, help="With --format: fp32 (default), fp16, int8, int8-dynamic."),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help="Compress the .onnx first (through the cache), "
                                         "e.g. prune:0.5+int8; with --format, for that format."),
    calibration: Optional[Path] = typer.Option(None, help=".npz of calibration inputs (int8 needs it)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Artifact cache (default .edgebench/cache)."),
    device: str = typer.Option("local-cpu", "--device", "-d", help="Device profile name or YAML path."),
    dataset: Optional[Path] = typer.Option(None, help=".npz with one array per input (+ optional labels)."),
    batch: Optional[int] = typer.Option(None, min=1, help="Batch size for a dynamic first dimension."),
    threads: Optional[int] = typer.Option(None, min=0, help="Runtime threads (0: runtime default)."),
    shape: list[str] = typer.Option([], help=SHAPE_HELP),
    input_range: list[str] = typer.Option([], help=RANGE_HELP),
    input_value: list[str] = typer.Option([], help=VALUE_HELP),
    warmup_s: float = typer.Option(0.5, min=0, help="Warm up at least this long."),
    warmup_iterations: int = typer.Option(5, min=0, help="Warm up at least this many iterations."),
    min_iterations: int = typer.Option(50, min=1, help="Measure at least this many iterations."),
    min_duration_s: float = typer.Option(1.0, min=0, help="Measure at least this long."),
    max_duration_s: float = typer.Option(60.0, min=0.001, help="Stop measuring after this long."),
    output: Optional[str] = typer.Option(None, help="Output scored for top-1 (default: the first)."),
    option: list[str] = typer.Option([], "--option", "-o", help="Runtime option KEY=VALUE (repeatable), e.g. "
                                     "graph_optimization_level=basic, execution_providers=CPUExecutionProvider, "
                                     "inter_op_threads=2."),
    include: list[str] = typer.Option([], help=INCLUDE_HELP),
    exclude: list[str] = typer.Option([], help=EXCLUDE_HELP),
    all_layers: bool = typer.Option(False, "--all-layers", help=ALL_LAYERS_HELP),
    name: Optional[str] = typer.Option(None, help=NAME_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the result JSON here."),
) -> None:
    """Benchmark one model or artifact on one device: latency, load and first inference, peak memory, top-1."""
    req = BenchRequest(
        model=model, device=device, dataset=dataset, batch=batch, threads=threads,
        shapes=parse_shapes(shape), ranges=parse_ranges(input_range), values=parse_values(input_value), output=output, backend_options=parse_options(option),
        format=fmt, precision=precision, recipe=recipe, calibration=calibration, cache_dir=cache_dir,
        timing=timing_options(warmup_s, warmup_iterations, min_iterations, min_duration_s, max_duration_s),
        layers=layer_selection(include, exclude, all_layers), name=name,
    )
    _bench_and_show(req, json_out)


def _bench_and_show(req: BenchRequest, json_out: Path | None) -> None:
    with console.status(f"benchmarking {req.model.name} on {req.device}…"):
        result = run_bench(req)
    console.print(result_table([result]))
    print_warnings(result.model.get("warnings") or [])
    if json_out:
        write_results([result], json_out)
        console.print(f"result written to {json_out}")


def install(app: typer.Typer) -> None:
    app.command()(bench)
