"""`edgebench compress`: apply a recipe and show what it bought (size, gzip size, sparsity, shared values)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from edgebench.commands.common import console
from edgebench.compress import LayerSelection, parse_recipe
from edgebench.compress.pipeline import Compressed, compress_onnx
from edgebench.errors import EdgebenchError, ExitStatus

FORMATS = ("onnx",)
LATER_FORMATS = ("openvino", "tflite", "tensorrt")


def parse_formats(text: str) -> list[str]:
    """``onnx,openvino`` → the formats, refusing unknown ones and those compression does not reach yet."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    for fmt in formats:
        if fmt in LATER_FORMATS:
            raise EdgebenchError(f"--to {fmt}: openvino/tflite compression lands with the converter layer; "
                                 "use --to onnx for now", ExitStatus.USAGE)
        if fmt not in FORMATS:
            raise EdgebenchError(f"unknown format {fmt!r} in --to: use onnx", ExitStatus.USAGE)
    if not formats:
        raise EdgebenchError("--to names no format: pass e.g. --to onnx", ExitStatus.USAGE)
    return formats


def compress_table(rows: list[tuple[str, Compressed]]) -> Table:
    table = Table(title="edgebench compress", show_lines=False)
    for col in ("format", "recipe", "file", "size KB", "gzip KB", "× smaller", "× smaller gz", "params",
                "nonzero", "sparsity", "max unique"):
        table.add_column(col, justify="left" if col in ("format", "recipe", "file") else "right")
    for fmt, c in rows:
        m = c.metrics
        table.add_row(fmt, c.recipe.canonical, str(c.path), f"{m['size_bytes'] / 1024:.1f}",
                      f"{m['gzip_bytes'] / 1024:.1f}", f"{m['size_ratio']:.2f}", f"{m['gzip_ratio']:.2f}",
                      str(m["params"]), str(m["nonzero_params"]), f"{m['sparsity']:.1%}",
                      str(m["max_unique_values"]))
    return table


def compress(
    model: Path = typer.Argument(..., help="Model file (.onnx)."),
    recipe: str = typer.Option(..., "--recipe", "-r", help="Steps joined by '+', e.g. prune:0.8+cluster:16+int8."),
    calibration: Optional[Path] = typer.Option(None, help=".npz of calibration inputs (needed by int8)."),
    to: str = typer.Option("onnx", "--to", help="Formats to produce, comma-separated (onnx for now)."),
    out: Path = typer.Option(Path(".edgebench/compressed"), "--out", help="Folder for the compressed files."),
    include: list[str] = typer.Option([], help="Only layers whose node or weight name matches (fnmatch)."),
    exclude: list[str] = typer.Option([], help="Leave layers whose node or weight name matches (fnmatch)."),
    all_layers: bool = typer.Option(False, "--all-layers", help="Also prune/cluster the first and last layers."),
    seed: int = typer.Option(0, help="Seed of the clustering inits."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the metrics as JSON here."),
) -> None:
    """Compress a model with a recipe; print size, gzip size, ratios vs fp32, sparsity and unique values."""
    parsed = parse_recipe(recipe)
    formats = parse_formats(to)
    selection = LayerSelection(tuple(include), tuple(exclude), all_layers)
    rows = []
    for fmt in formats:
        with console.status(f"compressing {model.name} with {parsed.canonical} for {fmt}…"):
            rows.append((fmt, compress_onnx(model, parsed, out, calibration, selection, seed)))
    console.print(compress_table(rows))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps([{"format": fmt, "recipe": c.recipe.canonical, "path": str(c.path),
                                         "float_path": str(c.float_path), "metrics": c.metrics,
                                         "reference": c.reference, "steps": c.steps} for fmt, c in rows],
                                       indent=2, sort_keys=True))
        console.print(f"metrics written to {json_out}")


def install(app: typer.Typer) -> None:
    app.command()(compress)
