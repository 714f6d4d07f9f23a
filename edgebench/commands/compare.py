"""`edgebench compare`: every format on the same data, judged against the fp32 ONNX reference."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from edgebench.commands.common import (CALIBRATION_HELP, PRECISION_HELP, RECIPE_HELP, SHAPE_HELP, AllLayers, Device,
                                       Exclude, Include, InputRanges, InputValues, ModelName, Threads,
                                       check_default_cache, environment, parse_ranges, parse_shapes, parse_values,
                                       writable_file, writable_folder)
from edgebench.commands.progress import Steps
from edgebench.devices.leases import use_lease_pool
from edgebench.pipeline.compare import DEFAULT_CRITERIA, Criteria, Row, compare as run_compare, write_json
from edgebench.compress.graph import layer_selection
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import parse_formats
from edgebench.store.locate import default_location


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


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def compare(
    ctx: typer.Context,
    model: Path = typer.Argument(..., help="Source model (.onnx, or .keras, .h5, a SavedModel folder, .pt2, .pt: "
                                 "exported to ONNX first); its fp32 ONNX Runtime outputs are the reference."),
    formats: str = typer.Option("onnx,openvino,tflite", "--formats", help="Formats to compare, comma-separated."),
    dataset: Optional[Path] = typer.Option(None, help=".npz with one array per input (+ labels for top-1); "
                                           "without it, every format gets the same seeded random inputs."),
    shape: list[str] = typer.Option([], help=SHAPE_HELP + " Conversions take them too."),
    input_range: InputRanges = [],
    input_value: InputValues = [],
    precision: Optional[str] = typer.Option(None, help=PRECISION_HELP),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help=RECIPE_HELP + " Every format at it."),
    device: Device = "local-cpu",
    threads: Threads = None,
    output: Optional[str] = typer.Option(None, help="The one output judged and scored against labels "
                                                    "(default: every output judged, the first scored)."),
    task: str = typer.Option("auto", help="What the scored output is: classify (class scores: top-1 / top-5 "
                                          "agreement apply), values (embeddings, maps, states: cosine and SNR "
                                          "only) or auto (read from the output and labels)."),
    calibration: Optional[Path] = typer.Option(None, help=CALIBRATION_HELP),
    cache_dir: Optional[Path] = typer.Option(None, callback=writable_folder, help="Artifact cache directory."),
    min_snr: list[str] = typer.Option([], help="SNR in dB an output needs, [PRECISION:]DB (repeatable; "
                                               f"defaults {_defaults('min_snr_db')})."),
    min_cosine: list[str] = typer.Option([], help="Cosine an output needs, [PRECISION:]VALUE (repeatable; "
                                                  f"defaults {_defaults('min_cosine')})."),
    min_agreement: list[str] = typer.Option([], help="Top-1 agreement class scores need, [PRECISION:]VALUE "
                                                     f"(repeatable; defaults {_defaults('min_agreement')})."),
    include: Include = [],
    exclude: Exclude = [],
    all_layers: AllLayers = False,
    name: ModelName = None,
    json_out: Optional[Path] = typer.Option(None, "--json", callback=writable_file, help="Write the rows as JSON here."),
) -> None:
    """Run each format on the same data; compare every output with the fp32 ONNX reference (exit status 1
    if a format fails its precision's criteria)."""
    criteria = _criteria(min_snr, min_cosine, min_agreement)
    check_default_cache(cache_dir)
    use_lease_pool(default_location())  # $EDGEBENCH_STORE a PostgreSQL URL: lease the board from the team's pool
    with Steps(environment(ctx)) as steps:
        rows = run_compare(model, parse_formats(formats), dataset, precision, device, threads, output, calibration,
                           cache_dir, criteria=criteria, recipe=recipe, task=task, shapes=parse_shapes(shape),
                           ranges=parse_ranges(input_range), values=parse_values(input_value),
                           layers=layer_selection(include, exclude, all_layers), starting=steps.step)
    environment(ctx).console.print(compare_table(rows))
    if json_out:
        write_json(rows, json_out, model, name)
    failed = [f"{r.format}/{r.recipe}" + (f" ({r.failures[0]})" if r.failures else "") for r in rows if not r.passed]
    missing = [f"{r.format}: {r.error}" for r in rows if r.error_kind == ExitStatus.RUNTIME_MISSING.name.lower()]
    if missing:  # not a verdict on the format: it could not run here
        others = len(failed) - len(missing)
        raise EdgebenchError("; ".join(missing) + (f" ({others} other format(s) failed, table above)" if others else ""),
                             ExitStatus.RUNTIME_MISSING)
    if failed:
        raise EdgebenchError(f"{', '.join(failed)} failed the agreement check (table above): inspect the errors, or "
                             "pass --min-snr / --min-cosine / --min-agreement if the drift is acceptable",
                             ExitStatus.REGRESSION)


def _criteria_line(criteria: dict[str, Criteria]) -> str:
    return "; ".join(f"{p} SNR ≥ {c.min_snr_db:g} dB, cosine ≥ {c.min_cosine:g}, top-1 agreement ≥ {c.min_agreement * 100:g}%"
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
            missing = r.error_kind == ExitStatus.RUNTIME_MISSING.name.lower()
            table.add_row(r.format, r.recipe, "", f"[red]error: {escape(str(r.error))}[/red]", *[""] * 5,
                          "[yellow]not run[/yellow]" if missing else "[red]FAIL[/red]")
            continue
        for i, (name, m) in enumerate(r.outputs.items()):
            agree = _percent(m.get("agreement_top1"))
            if m.get("agreement_top5") is not None:
                agree += f" ({m['agreement_top5']:.1%})"
            verdict = ("[red]FAIL[/red]" if m["failures"] else "[green]pass[/green]") if m["judged"] else "not judged"
            table.add_row(r.format if i == 0 else "", r.recipe if i == 0 else "", escape(name), _percent(m.get("top1")),
                          agree, f"{m['cosine']:.5f} ({m['cosine_min']:.4f})", f"{m['snr_db']:.1f}",
                          f"{m['rel_l2']:.2e}", escape(f"[abs={m['max_abs_err']:.2e}] OR [rel={m['max_rel_err']:.2e}]"),
                          verdict)
        notes += [f"{r.format}/{r.recipe} {escape(why)}" for why in r.failures]
    criteria = {r.precision: Criteria(**r.criteria) for r in rows if r.criteria}
    table.caption = "\n".join([f"pass: {_criteria_line(criteria)}", *notes]) if criteria else None
    table.caption_justify = "left"
    return table
