"""`edgebench convert` (artifacts through the cache) and `edgebench compare` (cross-format agreement)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from edgebench import artifacts
from edgebench.commands.common import console
from edgebench.compress.weights import slug
from edgebench.compare import DEFAULT_TOLERANCES, MIN_AGREEMENT, Row, compare as run_compare
from edgebench.convert import parse_formats
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.source import load_onnx_info

PRECISION_HELP = "fp32, fp16, int8 (needs --calibration) or int8-dynamic; with --recipe, added as its last step."
RECIPE_HELP = "Compression recipe, e.g. prune:0.8+cluster:16+int8 (see docs/compression.md)."
CALIBRATION_HELP = ".npz of calibration inputs (int8 needs it; converters also take a sample from it)."


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def convert(
    model: Path = typer.Argument(..., help="Source model (.onnx)."),
    to: str = typer.Option(..., "--to", help="Formats, comma-separated: onnx,openvino,tflite,tensorrt."),
    precision: Optional[str] = typer.Option(None, help=PRECISION_HELP),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help=RECIPE_HELP),
    out: Optional[Path] = typer.Option(None, "--out", help="Also copy each artifact (with meta.json) to OUT/FORMAT-RECIPE/."),
    calibration: Optional[Path] = typer.Option(None, help=CALIBRATION_HELP),
    cache_dir: Optional[Path] = typer.Option(None, help="Artifact cache (default .edgebench/cache or $EDGEBENCH_CACHE)."),
) -> None:
    """Convert a model into deployment formats; a conversion already in the cache is not repeated."""
    load_onnx_info(model)  # a bad model is refused before any converter starts
    parsed = artifacts.effective_recipe(recipe, precision)
    table = Table(title=f"artifacts of {model.name} ({parsed.canonical})")
    for col in ("format", "precision", "files", "size", "gzip", "× gzip", "convert s", "cache", "path"):
        table.add_column(col, justify="right" if col in ("size", "gzip", "× gzip", "convert s") else "left")
    for fmt in parse_formats(to):
        with console.status(f"converting to {fmt} ({parsed.canonical})…"):
            cached = artifacts.ensure(model, fmt, recipe=parsed.canonical, calibration=calibration, root=cache_dir)
        meta = cached.artifact.meta
        where = cached.path
        if out is not None:
            where = out / f"{fmt}-{slug(parsed)}"
            shutil.rmtree(where, ignore_errors=True)
            shutil.copytree(cached.path, where)
        ratio = meta.get("gzip_ratio")
        table.add_row(fmt, meta["precision"], ", ".join(meta["files"]), _size(meta["size_bytes"]),
                      _size(meta["gzip_bytes"]), f"{ratio:.2f}" if ratio else "—", f"{cached.seconds:.2f}",
                      "hit" if cached.hit else "converted", str(where))
    console.print(table)


def _tolerance(items: list[str]) -> dict[str, tuple[float, float]]:
    found = {}
    for item in items:
        try:
            prec, atol, rtol = item.split(":")
            found[prec] = (float(atol), float(rtol))
        except ValueError:
            raise EdgebenchError(f"bad --tolerance {item!r}: write PRECISION:ATOL:RTOL (e.g. fp16:1e-2:1e-2)",
                                 ExitStatus.USAGE) from None
    return found


def _fmt(value: float | None, spec: str = "{:.4f}") -> str:
    return "—" if value is None else spec.format(value)


def compare(
    model: Path = typer.Argument(..., help="Source model (.onnx); its fp32 ONNX Runtime outputs are the reference."),
    formats: str = typer.Option("onnx,openvino,tflite", "--formats", help="Formats to compare, comma-separated."),
    dataset: Path = typer.Option(..., help=".npz with one array per input (+ labels for top-1)."),
    precision: Optional[str] = typer.Option(None, help=PRECISION_HELP),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help=RECIPE_HELP + " Every format at it."),
    device: str = typer.Option("local-cpu", "--device", "-d", help="Device profile name or YAML path."),
    threads: Optional[int] = typer.Option(None, min=0, help="Runtime threads (0: runtime default)."),
    output: Optional[str] = typer.Option(None, help="Output compared (default: the first)."),
    calibration: Optional[Path] = typer.Option(None, help=CALIBRATION_HELP),
    cache_dir: Optional[Path] = typer.Option(None, help="Artifact cache directory."),
    tolerance: list[str] = typer.Option([], help="Override PRECISION:ATOL:RTOL (repeatable)."),
    min_agreement: float = typer.Option(MIN_AGREEMENT, min=0, max=1, help="Top-1 agreement a format needs."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON here."),
) -> None:
    """Run each format on the same data; compare with the fp32 ONNX reference (exit status 1 if one fails)."""
    if recipe is not None:
        recipe = artifacts.effective_recipe(recipe, precision).canonical
        precision = None
    rows = run_compare(model, parse_formats(formats), dataset, precision, device, threads, output, calibration,
                       cache_dir, _tolerance(tolerance), min_agreement, recipe)
    console.print(compare_table(rows))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"schema_version": 1, "model": str(model), "rows": [r.to_dict() for r in rows]},
                                       indent=1))
    failed = [f"{r.format}/{r.recipe}" for r in rows if not r.passed]
    if failed:
        raise EdgebenchError(f"{', '.join(failed)} failed the agreement check (table above): inspect the errors or "
                             "loosen --tolerance / --min-agreement if the drift is acceptable", ExitStatus.REGRESSION)


def compare_table(rows: list[Row]) -> Table:
    table = Table(title="cross-format agreement vs fp32 ONNX Runtime "
                        f"(defaults: {', '.join(f'{p} atol=rtol={a:g}' for p, (a, _) in DEFAULT_TOLERANCES.items())})")
    for col in ("format", "recipe", "top-1", "agree top-1", "max abs", "max rel", "min tolerance passing",
                "atol/rtol", "pass"):
        table.add_column(col, justify="left" if col in ("format", "recipe", "pass") else "right")
    for r in rows:
        if r.status != "ok":
            table.add_row(r.format, r.recipe, f"[red]error: {escape(str(r.error))}[/red]", *[""] * 5, "[red]FAIL[/red]")
            continue
        table.add_row(r.format, r.recipe, _fmt(r.top1), _fmt(r.agreement_top1), _fmt(r.max_abs_err, "{:.2e}"),
                      _fmt(r.max_rel_err, "{:.2e}"),
                      escape(f"[abs={r.required_atol:.2e}] OR [rel={r.required_rtol:.2e}]"),
                      f"{r.atol:g}/{r.rtol:g}", "[green]pass[/green]" if r.passed else "[red]FAIL[/red]")
    return table


def install(app: typer.Typer) -> None:
    app.command()(convert)
    app.command()(compare)
