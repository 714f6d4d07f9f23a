"""`edgebench convert`: artifacts through the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from edgebench.artifacts import cache as artifacts
from edgebench.commands.common import (CALIBRATION_HELP, CONVERT_SHAPE_HELP, PRECISION_HELP, RECIPE_HELP, AllLayers,
                                       Exclude, FinetuneData, Include, Route, Teacher, TrainConfig, check_default_cache,
                                       environment, finetune_from, onnx_of, parse_shapes, print_warnings,
                                       training_progress, writable_folder)
from edgebench.compress.graph import layer_selection
from edgebench.compress.weights import slug, weight_warnings
from edgebench.data.inputs import check_shapes
from edgebench.files import copy_folder
from edgebench.formats import parse_formats
from edgebench.data.source import load_onnx_info


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def convert(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Source model: .onnx, or .keras, .h5, a SavedModel folder, .pt2, .pt "
                                 "(exported to ONNX first; docs/sources.md)."),
    to: str = typer.Option(..., "--to", help="Formats, comma-separated: onnx,openvino,tflite,tensorrt."),
    precision: Optional[str] = typer.Option(None, help=PRECISION_HELP),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help=RECIPE_HELP),
    out: Optional[Path] = typer.Option(None, "--out", callback=writable_folder, help="Also copy each artifact (with meta.json) to OUT/FORMAT-RECIPE/."),
    calibration: Optional[Path] = typer.Option(None, help=CALIBRATION_HELP),
    finetune: FinetuneData = None,
    teacher: Teacher = None,
    train_config: TrainConfig = None,
    cache_dir: Optional[Path] = typer.Option(None, callback=writable_folder,
                                             help="Artifact cache (default .edgebench/cache or $EDGEBENCH_CACHE)."),
    shape: list[str] = typer.Option([], help=CONVERT_SHAPE_HELP),
    include: Include = [],
    exclude: Exclude = [],
    all_layers: AllLayers = False,
    route: Route = "auto",
) -> None:
    """Convert a model into deployment formats; a conversion already in the cache is not repeated."""
    console = environment(ctx).console
    check_default_cache(cache_dir)
    shapes = parse_shapes(shape)
    onnx = onnx_of(model, cache_dir, shapes, console)  # a Keras, SavedModel or PyTorch model: its hub ONNX
    check_shapes(load_onnx_info(onnx).inputs, shapes)  # a bad model or --shape: refused before converting
    parsed = artifacts.effective_recipe(recipe, precision)
    training = finetune_from(finetune, teacher, train_config)
    table = Table(title=f"artifacts of {model.name} ({parsed.canonical})")
    for col in ("format", "precision", "files", "size", "gzip", "× gzip", "convert s", "cache", "path"):
        table.add_column(col, justify="right" if col in ("size", "gzip", "× gzip", "convert s") else "left")
    routes = []  # a source model's: how each format was converted (artifacts.routes)
    for fmt in parse_formats(to):
        with console.status(f"converting to {fmt} ({parsed.canonical})…"):
            cached = artifacts.ensure(onnx, fmt, recipe=parsed.canonical, calibration=calibration, root=cache_dir,
                                      shapes=shapes, selection=layer_selection(include, exclude, all_layers),
                                      finetune=training, progress=training_progress(console), route=route)
        meta = cached.meta
        where = cached.path
        if out is not None:
            where = out / f"{fmt}-{slug(artifacts.effective_recipe(meta.recipe, None))}"
            copy_folder(cached.path, where, "--out")
        table.add_row(fmt, meta.precision, ", ".join(meta.files), _size(meta.size_bytes), _size(meta.gzip_bytes),
                      f"{meta.gzip_ratio:.2f}" if meta.gzip_ratio else "—", f"{meta.convert_s:.2f}",
                      "hit" if cached.hit else "converted", str(where))
        if meta.route:
            tool = f" ({meta.route['tool']})" if meta.route.get("tool") else ""
            routes.append(f"{fmt} {meta.precision}: {meta.route['route']}{tool}")
    console.print(table)
    for line in routes:
        console.print(line, markup=False, highlight=False)
    print_warnings(console, weight_warnings(meta.weight_steps))  # of the float model every format shares
