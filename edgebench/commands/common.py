"""What the command modules share: the environment they run in, the options several commands take, and
the parsing of those options. Command modules import this module, never each other."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

from edgebench.config import MAX_THREADS, TimingSpec
from edgebench.data.inputs import parse_shape
from edgebench.environment import Environment
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import check_writable
from edgebench.postgres import is_url
from edgebench.store.db import DEFAULT_PATH
from edgebench.store.locate import ENV as STORE_ENV

if TYPE_CHECKING:
    from edgebench.training.finetune import Finetune

# The layer options of every command that takes a recipe, and the model name of those that make results.
INCLUDE_HELP = "Prune/cluster only layers whose node or weight name matches (fnmatch; repeatable)."
EXCLUDE_HELP = "Leave layers whose node or weight name matches (fnmatch; repeatable)."
ALL_LAYERS_HELP = ("Also prune/cluster the first and last layers when they hold few weights (left alone by "
                   "default; see docs/compression.md).")
NAME_HELP = "The model's name in results (default: the file's stem; for model.onnx, inference.tflite …, its folder)."
SHAPE_HELP = "Sizes for dynamic dims: NAME:1x3x224x224 (repeatable; default: from --dataset)."
RANGE_HELP = ("Random-input range [LOW, HIGH): NAME:LOW:HIGH (repeatable; an integer input defaults to the "
              "values its graph shows as valid).")
VALUE_HELP = "Fixed input value: NAME=VALUE (repeatable), e.g. sr=16000."
# The artifact options of convert, compare and compress.
PRECISION_HELP = "fp32, fp16, int8 (needs --calibration) or int8-dynamic; with --recipe, added as its last step."
RECIPE_HELP = "Compression recipe, e.g. prune:0.8+cluster:16+int8 (see docs/compression.md)."
CALIBRATION_HELP = ".npz of calibration inputs (int8 needs it; converters also take a sample from it)."
CONVERT_SHAPE_HELP = ("Sizes for dynamic dims, NAME:1x3x224x224 (repeatable), for converters that need them "
                      "static and for calibration; part of the cache key.")

Device = Annotated[str, typer.Option("--device", "-d", help="Device profile name or YAML path.")]
Dataset = Annotated[Optional[Path], typer.Option(help=".npz with one array per input (+ optional labels).")]
Batch = Annotated[Optional[int], typer.Option(min=1, help="Batch size for a dynamic first dimension.")]


def _threads_in_range(threads: Optional[int]) -> Optional[int]:
    """--threads up to MAX_THREADS: a count past any device's cores is a typo, refused before any work."""
    if threads is not None and threads > MAX_THREADS:
        raise EdgebenchError(f"--threads {threads} is more than edgebench's limit of {MAX_THREADS}: pick at most the "
                             "device's CPU count (0: the runtime's default)", ExitStatus.USAGE)
    return threads


Threads = Annotated[Optional[int], typer.Option(min=0, callback=_threads_in_range,
                                                help="Runtime threads (0: runtime default).")]
Shapes = Annotated[list[str], typer.Option(help=SHAPE_HELP)]
InputRanges = Annotated[list[str], typer.Option(help=RANGE_HELP)]
InputValues = Annotated[list[str], typer.Option(help=VALUE_HELP)]
Include = Annotated[list[str], typer.Option(help=INCLUDE_HELP)]
Exclude = Annotated[list[str], typer.Option(help=EXCLUDE_HELP)]
AllLayers = Annotated[bool, typer.Option("--all-layers", help=ALL_LAYERS_HELP)]
ModelName = Annotated[Optional[str], typer.Option(help=NAME_HELP)]
Route = Annotated[str, typer.Option("--route", help="For a Keras, SavedModel or PyTorch model: auto converts straight "
                                    "from it where the format has a direct route (Keras/SavedModel → TFLite, "
                                    "SavedModel/PyTorch → OpenVINO; plain precisions), hub always through its ONNX "
                                    "(docs/sources.md).")]
FinetuneData = Annotated[Optional[Path], typer.Option(
    "--finetune", help="Fine-tune the recipe's steps on this labelled .npz (one array per input + integer labels): "
    "gradual pruning, trained centroids, QAT for int8 (needs edgebench[train]; see docs/compression.md).")]
Teacher = Annotated[Optional[Path], typer.Option(help="With a distill step: the teacher ONNX (default: the model "
                                                 "itself, before compression).")]
TrainConfig = Annotated[Optional[Path], typer.Option(help="YAML of fine-tuning settings (epochs, lr, batch_size …); "
                                                     "the recipe's finetune:KEY=VALUE win.")]


def environment(ctx: typer.Context) -> Environment:
    """The environment ``edgebench.cli.main`` runs the command in."""
    return ctx.ensure_object(Environment)


STORE_HELP = ("Results store: an SQLite file, or a PostgreSQL URL postgresql://USER@HOST:PORT/DB for a team "
              "(password in PGPASSWORD or ~/.pgpass).")


def store_option(write: bool = False) -> str:
    """``--store`` (default ``$EDGEBENCH_STORE``, else the SQLite file in this folder); a command that writes to
    it (``write``) checks it can before any work."""
    return typer.Option(str(DEFAULT_PATH), "--store", envvar=STORE_ENV, callback=writable_store if write else None,
                        help=STORE_HELP)


def writable_store(ctx: typer.Context, param: typer.CallbackParam, value: Optional[str]) -> Optional[str]:
    """Typer callback of a ``--store`` the command writes to: an SQLite file checked like any output, a
    PostgreSQL store opened once (reachable, credentials, schema not newer than this edgebench) before any work."""
    if ctx.resilient_parsing or value is None:
        return value
    if not is_url(value):
        check_output(Path(value).expanduser(), _option_name(param))
        return value
    from edgebench.store.locate import open_store

    open_store(value).close()
    return value


def check_output(path: Optional[Path], what: str, directory: bool = False) -> Optional[Path]:
    """``path`` (None: nothing asked for) checked to be writable as a file, or a folder, before any converting
    or measuring: a read-only disk, a full one, no permission, a parent that is a file, a file where a folder
    belongs, a device or /proc entry, a symbolic link loop is one line (exit status 12), nothing left behind."""
    return None if path is None else check_writable(path, what, directory)


def _option_name(param: typer.CallbackParam) -> str:
    return max(param.opts, key=len) if param.opts else str(param.name)


def writable_file(ctx: typer.Context, param: typer.CallbackParam, value: Optional[Path]) -> Optional[Path]:
    """Typer callback of an option naming a file the command writes (``--json``, ``--md`` …): checked as the
    command line is read."""
    return value if ctx.resilient_parsing else check_output(value, _option_name(param))


def writable_folder(ctx: typer.Context, param: typer.CallbackParam, value: Optional[Path]) -> Optional[Path]:
    """Typer callback of an option naming a folder the command writes into (``--out``, ``--cache-dir``)."""
    return value if ctx.resilient_parsing else check_output(value, _option_name(param), directory=True)


def check_default_cache(cache_dir: Optional[Path]) -> None:
    """Without ``--cache-dir`` (its callback checks that one), the default artifact cache ($EDGEBENCH_CACHE, else
    .edgebench/cache) checked like any output before a command that converts does any work."""
    if cache_dir is None:
        from edgebench.artifacts.cache import cache_root  # the cache's modules load only when a command converts

        check_output(cache_root(), "the artifact cache (another: --cache-dir or $EDGEBENCH_CACHE)", directory=True)


def finetune_from(data: Optional[Path], teacher: Optional[Path], config: Optional[Path],
                  output: Optional[str] = None) -> "Finetune | None":
    """The fine-tuning inputs of --finetune/--teacher/--train-config (None without --finetune)."""
    from edgebench.training.finetune import Finetune

    if data is None:
        if teacher is not None or config is not None:
            given = "--teacher" if teacher is not None else "--train-config"
            raise EdgebenchError(f"{given} applies to fine-tuning: pass --finetune TRAIN.npz too", ExitStatus.USAGE)
        return None
    return Finetune(data, teacher, config, output)


def training_progress(console: Console) -> Callable[[str], None]:
    """Fine-tuning's epoch lines, printed as they come (on the console's stream: stderr for --json runs)."""
    return lambda line: console.print(f"[dim]fine-tuning[/dim] {escape(line)}")


def print_warnings(console: Console, lines: list[str]) -> None:
    """Warnings (a recipe that got less than it asked …), one line each, after the table."""
    for line in lines:
        console.print(f"[yellow]warning:[/yellow] {escape(line)}")


def onnx_of(model: Path, cache_dir: Optional[Path], shapes: dict[str, tuple[int, ...]], console: Console) -> Path:
    """The ONNX a command works on: ``model`` itself, or a source model's hub ONNX (Keras, SavedModel, PyTorch:
    exported once into the artifact cache; docs/sources.md), said on one line."""
    from edgebench.artifacts.cache import cache_root
    from edgebench.sources.hub import to_hub
    from edgebench.sources.registry import source_of

    if source_of(model) is None:
        return model
    check_default_cache(cache_dir)
    with console.status(f"exporting {escape(model.name)} to ONNX…"):
        hub = to_hub(model, cache_root(cache_dir), shapes)
    console.print(f"{escape(model.name)}: {'its ONNX from the cache' if hub.hit else 'exported to ONNX'} "
                  f"({escape(hub.route)})")
    return hub.onnx


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
        if not name or not ranges[name][0] < ranges[name][1] or not all(map(math.isfinite, ranges[name])):
            raise EdgebenchError(f"bad --input-range {item!r}: write NAME:LOW:HIGH with LOW < HIGH (e.g. "
                                 "ids:0:30522), both finite", ExitStatus.DATA_MISMATCH)
    return ranges


def parse_values(items: list[str]) -> dict[str, float]:
    values = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            values[name] = float(value)
        except ValueError:
            values[name] = math.nan
        if not name or not math.isfinite(values[name]):
            raise EdgebenchError(f"bad --input-value {item!r}: write NAME=VALUE with a finite number (e.g. sr=16000)",
                                 ExitStatus.DATA_MISMATCH)
    return values


def parse_options(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` runtime options; integers stay integers, commas make lists."""
    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EdgebenchError(f"bad --option {item!r}: write KEY=VALUE (e.g. graph_optimization_level=basic)",
                                 ExitStatus.USAGE)
        if key in options:
            raise EdgebenchError(f"--option {key} is given twice: keep one", ExitStatus.USAGE)
        parts = [int(v) if v.lstrip("-").isdigit() else v for v in value.split(",")]
        options[key] = parts if "," in value or key.endswith("providers") else parts[0]
    return options


def timing_options(warmup_s: float, warmup_iterations: int, min_iterations: int, min_duration_s: float,
                   max_duration_s: float) -> TimingSpec:
    """The timing rules from command-line options; a maximum below the minimum is one line, exit 2."""
    if max_duration_s < min_duration_s:
        raise EdgebenchError(f"--max-duration-s {max_duration_s} is below --min-duration-s {min_duration_s}: "
                             "raise it", ExitStatus.USAGE)
    return TimingSpec(warmup_s=warmup_s, warmup_iterations=warmup_iterations, min_iterations=min_iterations,
                      min_duration_s=min_duration_s, max_duration_s=max_duration_s)
