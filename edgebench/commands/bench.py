"""`edgebench bench`: one model or artifact on one device."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from edgebench.pipeline.bench import BenchRequest, execute, resolve_target
from edgebench.commands.common import (AllLayers, Batch, Dataset, Device, Exclude, FinetuneData, Include, InputRanges,
                                       InputValues, ModelName, Route, Shapes, Teacher, Threads, TrainConfig,
                                       check_default_cache, environment, finetune_from, parse_options,
                                       training_progress, writable_store,
                                       parse_ranges, parse_shapes, parse_values, print_warnings, timing_options,
                                       writable_file, writable_folder)
from edgebench.commands.progress import Steps
from edgebench.compress.graph import layer_selection
from edgebench.config import check_cpus
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.sources.registry import source_of
from edgebench.commands.tables import energy_line, profile_table, result_table, throughput_line
from edgebench.result import write_results
from edgebench.store.locate import default_location, shown
from edgebench.devices.leases import use_lease_pool
from edgebench.store.runs import record_bench


def bench(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Model or artifact: .onnx, .xml (OpenVINO IR), .tflite, .engine/.plan; or a "
                                 "model to export to ONNX first: .keras, .h5, a SavedModel folder, .pt2, .pt "
                                 "(docs/sources.md)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Convert the model to this format first (through the "
                                      "cache)."),
    precision: Optional[str] = typer.Option(None, help="With --format: fp32 (default), fp16, int8, int8-dynamic."),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help="Compress the .onnx first (through the cache), "
                                         "e.g. prune:0.5+int8; with --format, for that format."),
    calibration: Optional[Path] = typer.Option(None, help=".npz of calibration inputs (int8 needs it)."),
    finetune: FinetuneData = None,
    teacher: Teacher = None,
    train_config: TrainConfig = None,
    cache_dir: Optional[Path] = typer.Option(None, callback=writable_folder, help="Artifact cache (default .edgebench/cache)."),
    device: Device = "local-cpu",
    dataset: Dataset = None,
    batch: Batch = None,
    threads: Threads = None,
    shape: Shapes = [],
    input_range: InputRanges = [],
    input_value: InputValues = [],
    warmup_s: float = typer.Option(0.5, min=0, help="Warm up at least this long."),
    warmup_iterations: int = typer.Option(5, min=0, help="Warm up at least this many iterations."),
    min_iterations: int = typer.Option(50, min=1, help="Measure at least this many iterations."),
    min_duration_s: float = typer.Option(1.0, min=0, help="Measure at least this long."),
    max_duration_s: float = typer.Option(60.0, min=0.001, help="Stop measuring after this long."),
    output: Optional[str] = typer.Option(None, help="Output scored for top-1 (default: the first)."),
    mode: str = typer.Option("latency", "--mode", help="throughput: after the single-stream loop, also several "
                             "requests in flight at once (inferences/s and latency under that load)."),
    streams: Optional[int] = typer.Option(None, min=1, help="--mode throughput: model instances (OpenVINO streams, "
                                          "ONNX Runtime sessions, TFLite interpreters); default: the runtime's."),
    requests: Optional[int] = typer.Option(None, min=1, help="--mode throughput: requests in flight; default: "
                                           "--streams, else the runtime's (OpenVINO) or one per CPU."),
    cpus: Optional[str] = typer.Option(None, help="Pin the runner to these CPUs, e.g. 4,5,6,7 (default: the "
                                       "profile's cpus, else none)."),
    profile: bool = typer.Option(False, "--profile", help="Also profile per layer with the runtime's own profiler, "
                                 "in a pass after the timed loop (the latency stays unprofiled): the top ops, "
                                 "stored in the result."),
    option: list[str] = typer.Option([], "--option", "-o", help="Runtime option KEY=VALUE (repeatable), e.g. "
                                     "graph_optimization_level=basic, execution_providers=CPUExecutionProvider, "
                                     "inter_op_threads=2."),
    include: Include = [],
    exclude: Exclude = [],
    all_layers: AllLayers = False,
    route: Route = "auto",
    name: ModelName = None,
    json_out: Optional[Path] = typer.Option(None, "--json", callback=writable_file, help="Write the result JSON here."),
    store: Optional[str] = typer.Option(None, "--store", callback=writable_store, help="Also file the result in this results store (the "
                                         "SQLite file of 'edgebench sweep', created if need be, or a PostgreSQL URL) "
                                         "as a run of one cell, named bench-MODEL."),
) -> None:
    """Benchmark one model or artifact on one device: latency, load and first inference, peak memory, top-1."""
    use_lease_pool(store or default_location())  # a PostgreSQL store: its database leases the boards to every host
    req = BenchRequest(
        model=model, device=device, dataset=dataset, batch=batch, threads=threads,
        shapes=parse_shapes(shape), ranges=parse_ranges(input_range), values=parse_values(input_value), output=output, backend_options=parse_options(option),
        format=fmt, precision=precision, recipe=recipe, calibration=calibration, cache_dir=cache_dir,
        timing=timing_options(warmup_s, warmup_iterations, min_iterations, min_duration_s, max_duration_s),
        layers=layer_selection(include, exclude, all_layers), name=name,
        finetune=finetune_from(finetune, teacher, train_config, output),
        **load_options(mode, streams, requests, cpus),
        profile=profile, route=route,
    )
    env = environment(ctx)
    console = env.console
    req.progress = training_progress(console)
    exports = source_of(model) is not None  # a Keras, SavedModel or PyTorch model: exported to ONNX first
    converts = (fmt or recipe or finetune) is not None and (exports or req.model.suffix.lower() == ".onnx")
    if converts or exports:
        check_default_cache(cache_dir)
    measuring = f"benchmarking {req.model.name} on {req.device}"
    with Steps(env, f"converting {req.model.name} to {fmt or 'onnx'} {recipe or precision or 'fp32'}" if converts
               else f"exporting {req.model.name} to ONNX" if exports else measuring) as steps:
        target = resolve_target(req)  # a source model: its hub ONNX from here on (req.model, req.source)
        if converts or exports:
            steps.step(measuring, ("cache hit" if target.cache_hit else "converted") if converts else "done")
        result = execute(req, target=target).result
    console.print(result_table([result]))
    if result.throughput is not None:
        console.print(throughput_line(result))
    if result.profile is not None:
        console.print(profile_table(result.profile))
    if energy_line(result):
        console.print(energy_line(result), markup=False)
    print_warnings(console, result.model.warnings)
    if json_out:
        write_results([result], json_out)
        console.print(f"result written to {json_out}")
    if store:
        run = record_bench(store, result, model)
        console.print(f"stored as run {run.id} ({run.name}) in {shown(store)}")


def load_options(mode: str, streams: int | None, requests: int | None, cpus: str | None) -> dict[str, Any]:
    """--mode, --streams, --requests and --cpus as BenchRequest fields; a bad one is one line, exit 2."""
    if mode not in ("latency", "throughput"):
        raise EdgebenchError(f"--mode {mode!r} is not latency or throughput: pick one", ExitStatus.USAGE)
    if mode != "throughput" and (streams or requests):
        raise EdgebenchError("--streams and --requests apply in throughput mode: add --mode throughput",
                             ExitStatus.USAGE)
    try:
        pinned = [int(c) for c in cpus.split(",")] if cpus is not None else None
        check_cpus(pinned)
    except ValueError:
        raise EdgebenchError(f"--cpus {cpus!r} is not a list of distinct CPU numbers: pass e.g. --cpus 0,2",
                             ExitStatus.USAGE) from None
    return {"mode": mode, "streams": streams, "requests": requests, "cpus": pinned}
