"""`edgebench convert` (artifacts through the cache) and `edgebench compare` (cross-format agreement)."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from edgebench import artifacts
from edgebench.bench import model_name
from edgebench.commands.common import (ALL_LAYERS_HELP, EXCLUDE_HELP, INCLUDE_HELP, NAME_HELP, console,
                                       print_warnings)
from edgebench.compress.graph import layer_selection
from edgebench.compress.weights import slug, weight_warnings
from edgebench.accuracy import TASKS
from edgebench.compare import DEFAULT_CRITERIA, Criteria, Row, compare as run_compare
from edgebench.convert import parse_formats
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.commands.bench import RANGE_HELP, SHAPE_HELP, VALUE_HELP, parse_ranges, parse_shapes, parse_values
from edgebench.data import check_shapes
from edgebench.source import load_onnx_info

PRECISION_HELP = "fp32, fp16, int8 (needs --calibration) or int8-dynamic; with --recipe, added as its last step."
RECIPE_HELP = "Compression recipe, e.g. prune:0.8+cluster:16+int8 (see docs/compression.md)."
CALIBRATION_HELP = ".npz of calibration inputs (int8 needs it; converters also take a sample from it)."
CONVERT_SHAPE_HELP = ("Sizes for dynamic dims, NAME:1x3x224x224 (repeatable), for converters that need them "
                      "static and for calibration; part of the cache key.")


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
    shape: list[str] = typer.Option([], help=CONVERT_SHAPE_HELP),
    include: list[str] = typer.Option([], help=INCLUDE_HELP),
    exclude: list[str] = typer.Option([], help=EXCLUDE_HELP),
    all_layers: bool = typer.Option(False, "--all-layers", help=ALL_LAYERS_HELP),
) -> None:
    """Convert a model into deployment formats; a conversion already in the cache is not repeated."""
    shapes = parse_shapes(shape)
    check_shapes(load_onnx_info(model).inputs, shapes)  # a bad model or --shape: refused before converting
    parsed = artifacts.effective_recipe(recipe, precision)
    table = Table(title=f"artifacts of {model.name} ({parsed.canonical})")
    for col in ("format", "precision", "files", "size", "gzip", "× gzip", "convert s", "cache", "path"):
        table.add_column(col, justify="right" if col in ("size", "gzip", "× gzip", "convert s") else "left")
    for fmt in parse_formats(to):
        with console.status(f"converting to {fmt} ({parsed.canonical})…"):
            cached = artifacts.ensure(model, fmt, recipe=parsed.canonical, calibration=calibration, root=cache_dir,
                                      shapes=shapes, selection=layer_selection(include, exclude, all_layers))
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
    print_warnings(weight_warnings(meta))  # of the float model every format shares


_EXAMPLE = {"min_snr_db": "12", "min_cosine": "0.97", "min_agreement": "0.9"}


def _criteria(min_snr: list[str], min_cosine: list[str], min_agreement: list[str]) -> dict[str, Criteria]:
    """Per-precision criteria: the defaults, with each ``[PRECISION:]VALUE`` given replacing one figure
    (without a precision, for every precision)."""
    found = dict(DEFAULT_CRITERIA)
    for option, items, key in (("--min-snr", min_snr, "min_snr_db"), ("--min-cosine", min_cosine, "min_cosine"),
                               ("--min-agreement", min_agreement, "min_agreement")):
        for item in items:
            prec, _, text = item.rpartition(":")
            try:
                value: float | None = float(text)
            except ValueError:
                value = None
            if value is None or math.isnan(value) or (prec and prec not in found) or (key != "min_snr_db" and not -1 <= value <= 1):
                raise EdgebenchError(f"bad {option} {item!r}: write [PRECISION:]VALUE, PRECISION one of "
                                     f"{', '.join(DEFAULT_CRITERIA)} (e.g. {option} int8:{_EXAMPLE[key]})",
                                     ExitStatus.USAGE)
            for p in [prec] if prec else list(found):
                found[p] = replace(found[p], **{key: value})
    return found


def _defaults(key: str) -> str:
    return ", ".join(f"{p} {getattr(c, key):g}" for p, c in DEFAULT_CRITERIA.items())


def _fmt(value: float | None, spec: str = "{:.4f}") -> str:
    return "—" if value is None else spec.format(value)


def compare(
    model: Path = typer.Argument(..., help="Source model (.onnx); its fp32 ONNX Runtime outputs are the reference."),
    formats: str = typer.Option("onnx,openvino,tflite", "--formats", help="Formats to compare, comma-separated."),
    dataset: Optional[Path] = typer.Option(None, help=".npz with one array per input (+ labels for top-1); "
                                           "without it, every format gets the same seeded random inputs."),
    shape: list[str] = typer.Option([], help=SHAPE_HELP + " Conversions take them too."),
    input_range: list[str] = typer.Option([], help=RANGE_HELP),
    input_value: list[str] = typer.Option([], help=VALUE_HELP),
    precision: Optional[str] = typer.Option(None, help=PRECISION_HELP),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help=RECIPE_HELP + " Every format at it."),
    device: str = typer.Option("local-cpu", "--device", "-d", help="Device profile name or YAML path."),
    threads: Optional[int] = typer.Option(None, min=0, help="Runtime threads (0: runtime default)."),
    output: Optional[str] = typer.Option(None, help="The one output judged and scored against labels "
                                                    "(default: every output judged, the first scored)."),
    task: str = typer.Option("auto", help="What the scored output is: classify (class scores: top-1 / top-5 "
                                          "agreement apply), values (embeddings, maps, states: cosine and SNR "
                                          "only) or auto (read from the output and labels)."),
    calibration: Optional[Path] = typer.Option(None, help=CALIBRATION_HELP),
    cache_dir: Optional[Path] = typer.Option(None, help="Artifact cache directory."),
    min_snr: list[str] = typer.Option([], help="SNR in dB an output needs, [PRECISION:]DB (repeatable; "
                                               f"defaults {_defaults('min_snr_db')})."),
    min_cosine: list[str] = typer.Option([], help="Cosine an output needs, [PRECISION:]VALUE (repeatable; "
                                                  f"defaults {_defaults('min_cosine')})."),
    min_agreement: list[str] = typer.Option([], help="Top-1 agreement class scores need, [PRECISION:]VALUE "
                                                     f"(repeatable; defaults {_defaults('min_agreement')})."),
    include: list[str] = typer.Option([], help=INCLUDE_HELP),
    exclude: list[str] = typer.Option([], help=EXCLUDE_HELP),
    all_layers: bool = typer.Option(False, "--all-layers", help=ALL_LAYERS_HELP),
    name: Optional[str] = typer.Option(None, help=NAME_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the rows as JSON here."),
) -> None:
    """Run each format on the same data; compare every output with the fp32 ONNX reference (exit status 1
    if a format fails its precision's criteria)."""
    if task not in TASKS:
        raise EdgebenchError(f"bad --task {task!r}: choose one of {', '.join(TASKS)}", ExitStatus.USAGE)
    criteria = _criteria(min_snr, min_cosine, min_agreement)
    if recipe is not None:
        recipe = artifacts.effective_recipe(recipe, precision).canonical
        precision = None
    rows = run_compare(model, parse_formats(formats), dataset, precision, device, threads, output, calibration,
                       cache_dir, criteria=criteria, recipe=recipe, task=task, shapes=parse_shapes(shape),
                       ranges=parse_ranges(input_range), values=parse_values(input_value),
                       layers=layer_selection(include, exclude, all_layers))
    console.print(compare_table(rows))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"schema_version": 1, "model": str(model), "name": model_name(model, name),
                                        "rows": [r.to_dict() for r in rows]}, indent=1))
    failed = [f"{r.format}/{r.recipe}" + (f" ({r.failures[0]})" if r.failures else "") for r in rows if not r.passed]
    if failed:
        raise EdgebenchError(f"{', '.join(failed)} failed the agreement check (table above): inspect the errors, or "
                             "pass --min-snr / --min-cosine / --min-agreement if the drift is acceptable",
                             ExitStatus.REGRESSION)


def _criteria_line(criteria: dict[str, Criteria]) -> str:
    return "; ".join(f"{p} SNR ≥ {c.min_snr_db:g} dB, cosine ≥ {c.min_cosine:g}, top-1 agreement ≥ {c.min_agreement:g}"
                     for p, c in criteria.items())


def compare_table(rows: list[Row]) -> Table:
    """One line per (format, output); the flat row metrics are the scored output's, ``outputs`` has them all."""
    table = Table(title="agreement with the fp32 ONNX Runtime reference, per output")
    for col in ("format", "recipe", "output", "top-1", "agree top-1 (top-5)", "cosine (min/sample)", "SNR dB",
                "rel L2", "min tolerance passing", "pass"):
        table.add_column(col, justify="left" if col in ("format", "recipe", "output", "pass") else "right")
    notes: list[str] = []
    for r in rows:
        if r.status != "ok":
            table.add_row(r.format, r.recipe, "", f"[red]error: {escape(str(r.error))}[/red]", *[""] * 5,
                          "[red]FAIL[/red]")
            continue
        for i, (name, m) in enumerate(r.outputs.items()):
            agree = _fmt(m.get("agreement_top1"))
            if m.get("agreement_top5") is not None:
                agree += f" ({m['agreement_top5']:.4f})"
            verdict = ("[red]FAIL[/red]" if m["failures"] else "[green]pass[/green]") if m["judged"] else "not judged"
            table.add_row(r.format if i == 0 else "", r.recipe if i == 0 else "", escape(name), _fmt(m.get("top1")),
                          agree, f"{m['cosine']:.5f} ({m['cosine_min']:.4f})", f"{m['snr_db']:.1f}",
                          f"{m['rel_l2']:.2e}", escape(f"[abs={m['max_abs_err']:.2e}] OR [rel={m['max_rel_err']:.2e}]"),
                          verdict)
        notes += [f"{r.format}/{r.recipe} {escape(why)}" for why in r.failures]
    criteria = {r.precision: Criteria(**r.criteria) for r in rows if r.criteria}
    table.caption = "\n".join([f"pass: {_criteria_line(criteria)}", *notes]) if criteria else None
    table.caption_justify = "left"
    return table


def install(app: typer.Typer) -> None:
    app.command()(convert)
    app.command()(compare)
