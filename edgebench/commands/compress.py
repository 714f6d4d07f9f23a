"""`edgebench compress`: apply a recipe in each format and show what it bought (size, gzip size, sparsity,
shared values) and that the produced files kept the pruning and clustering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from edgebench.artifacts import cache as artifacts
from edgebench.artifacts.cache import CachedArtifact
from edgebench.artifacts.meta import COST_METRICS, ArtifactMeta, Preservation
from edgebench.commands.common import (CONVERT_SHAPE_HELP, AllLayers, FinetuneData, Teacher, TrainConfig,
                                       check_default_cache, environment, finetune_from, onnx_of, parse_shapes,
                                       print_warnings, training_progress, writable_file, writable_folder)
from edgebench.compress import LayerSelection
from edgebench.compress.weights import slug, weight_warnings
from edgebench.files import atomic_write_text, copy_folder
from edgebench.formats import parse_formats
from edgebench.data.inputs import check_shapes
from edgebench.data.source import load_onnx_info

# The fields of meta.json that --json writes per artifact (the cost metrics among them), then its path.
JSON_FIELDS = ("format", "precision", "recipe", "files", "size_bytes", "gzip_bytes", *COST_METRICS, "preservation",
               "preservation_note", "weights")


def _preserved(meta: ArtifactMeta) -> str:
    """The preservation check, short: yes / — (nothing to keep) / the reason it was not checked."""
    if meta.preservation is None or meta.preservation is Preservation.NOTHING:
        return "—"
    return "yes" if meta.preservation is Preservation.CHECKED else meta.preservation_note


def _ratio(value: float | None) -> str:
    return f"{value:.2f}" if value else "—"


def compress_table(rows: list[tuple[str, CachedArtifact, Path]]) -> Table:
    table = Table(title="edgebench compress (ratios: × smaller than the fp32 artifact of the same format)")
    for col in ("format", "recipe", "size KB", "gzip KB", "DC KB", "× smaller", "× smaller gz", "× smaller DC",
                "params", "nonzero", "sparsity", "max unique", "preserved", "path"):
        table.add_column(col, justify="left" if col in ("format", "recipe", "preserved", "path") else "right")
    for fmt, cached, where in rows:
        m = cached.meta
        table.add_row(fmt, m.recipe, f"{m.size_bytes / 1024:.1f}", f"{m.gzip_bytes / 1024:.1f}",
                      f"{m.dc_bytes / 1024:.1f}" if m.dc_bytes is not None else "—",
                      _ratio(m.size_ratio), _ratio(m.gzip_ratio), _ratio(m.dc_ratio), str(m.params),
                      str(m.nonzero_params),
                      f"{m.sparsity:.1%}", str(m.max_unique_values), escape(_preserved(m)), str(where))
    return table


def compress(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Model: .onnx, or .keras, .h5, a SavedModel folder, .pt2, .pt (exported "
                                 "to ONNX first; docs/sources.md)."),
    recipe: str = typer.Option(..., "--recipe", "-r", help="Steps joined by '+', e.g. prune:0.8+cluster:16+int8."),
    calibration: Optional[Path] = typer.Option(None, help=".npz of calibration inputs (needed by int8)."),
    finetune: FinetuneData = None,
    teacher: Teacher = None,
    train_config: TrainConfig = None,
    to: str = typer.Option("onnx", "--to", help="Formats to produce, comma-separated: onnx,openvino,tflite,tensorrt."),
    out: Optional[Path] = typer.Option(None, "--out", callback=writable_folder, help="Also copy each artifact (with meta.json) to "
                                       "OUT/FORMAT-RECIPE/."),
    cache_dir: Optional[Path] = typer.Option(None, callback=writable_folder,
                                             help="Artifact cache (default .edgebench/cache or $EDGEBENCH_CACHE)."),
    include: list[str] = typer.Option([], help="Only layers whose node or weight name matches (fnmatch)."),
    exclude: list[str] = typer.Option([], help="Leave layers whose node or weight name matches (fnmatch)."),
    all_layers: AllLayers = False,
    seed: int = typer.Option(0, help="Seed of the clustering inits."),
    shape: list[str] = typer.Option([], help=CONVERT_SHAPE_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", callback=writable_file, help="Write the metrics as JSON here."),
) -> None:
    """Compress a model with a recipe in each format; print size, gzip size, ratios vs fp32, sparsity,
    unique values and whether the produced file kept the pruning/clustering."""
    console = environment(ctx).console
    check_default_cache(cache_dir)
    parsed = artifacts.effective_recipe(recipe, None)
    formats = parse_formats(to)
    shapes = parse_shapes(shape)
    onnx = onnx_of(model, cache_dir, shapes, console)  # a Keras, SavedModel or PyTorch model: its hub ONNX
    check_shapes(load_onnx_info(onnx).inputs, shapes)  # a bad model or --shape is refused before any step runs
    selection = LayerSelection(tuple(include), tuple(exclude), all_layers)
    training = finetune_from(finetune, teacher, train_config)
    rows = []
    for fmt in formats:
        with console.status(f"compressing {model.name} with {parsed.canonical} for {fmt}…"):
            cached = artifacts.ensure(onnx, fmt, recipe=parsed.canonical, calibration=calibration, root=cache_dir,
                                      selection=selection, seed=seed, shapes=shapes, finetune=training,
                                      progress=training_progress(console))
        where = cached.main
        if out is not None:
            folder = out / f"{fmt}-{slug(artifacts.effective_recipe(cached.meta.recipe, None))}"
            copy_folder(cached.path, folder, "--out")
            where = folder / cached.meta.main
        rows.append((fmt, cached, where))
    console.print(compress_table(rows))
    # of the float model all formats share
    print_warnings(console, weight_warnings(rows[0][1].meta.weight_steps) if rows else [])
    if json_out:
        metas = [(c.meta.to_dict(), where) for _, c, where in rows]
        atomic_write_text(json_out, json.dumps([{**{k: m.get(k) for k in JSON_FIELDS}, "path": str(where)}
                                        for m, where in metas], indent=2, sort_keys=True))
        console.print(f"metrics written to {json_out}")

