"""Converters from the hub form (ONNX) to each deployment format, one module per format, by name.

A converter module declares ``PRECISIONS`` (what it can emit), ``BACKEND`` (the runner backend that
executes its artifacts), ``EXTRA`` (the pip extra that installs its tools), ``SUFFIXES`` (artifact
file endings it recognises), and provides ``tool_versions()``, ``convert(...)`` and ``describe(path)``.
Modules are imported only when their format is chosen, so a missing toolchain costs nothing until used.
int8 precisions belong to the compression layer; a converter lists them in ``PRECISIONS`` once it
can emit them, and until then asking for one is refused naming what is supported.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from edgebench.convert.tensors import Artifact, TensorIO
from edgebench.errors import EdgebenchError, ExitStatus

CONVERTERS = {"onnx": "onnx", "openvino": "openvino", "tflite": "tflite", "tensorrt": "tensorrt"}

__all__ = ["Artifact", "TensorIO", "CONVERTERS", "converter", "convert", "format_of", "parse_formats"]


def converter(fmt: str) -> ModuleType:
    """The converter module registered for ``fmt``."""
    name = CONVERTERS.get(fmt.lower().strip())
    if name is None:
        raise EdgebenchError(f"unknown format {fmt!r}: choose one of {', '.join(CONVERTERS)}", ExitStatus.USAGE)
    return importlib.import_module(f"edgebench.convert.{name}")


def parse_formats(text: str) -> list[str]:
    """``onnx,openvino`` → a checked list, in the order given, without repeats."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    if not formats:
        raise EdgebenchError("no format given: pass e.g. --to onnx,openvino,tflite", ExitStatus.USAGE)
    for fmt in formats:
        converter(fmt)
    return list(dict.fromkeys(formats))


def format_of(path: Path) -> str:
    """The format an artifact file is in, from its ending (.onnx, .xml, .tflite, .engine/.plan)."""
    suffix = path.suffix.lower()
    for fmt in CONVERTERS:
        if suffix in converter(fmt).SUFFIXES:
            return fmt
    known = sorted(s for fmt in CONVERTERS for s in converter(fmt).SUFFIXES)
    raise EdgebenchError(f"cannot tell the format of {path.name}: pass a file ending in {', '.join(known)} "
                         "or a .onnx with --format", ExitStatus.USAGE)


def check_precision(fmt: str, precision: str) -> ModuleType:
    module = converter(fmt)
    if precision not in module.PRECISIONS:
        raise EdgebenchError(f"format {fmt} does not support precision {precision!r}: choose one of "
                             f"{', '.join(module.PRECISIONS)}", ExitStatus.USAGE)
    return module


def convert(source: Path, fmt: str, precision: str, out_dir: Path, calibration: Path | None = None,
            **options: Any) -> Artifact:
    """Convert the ONNX ``source`` into ``out_dir``; the artifact's meta records how, with what, and its I/O."""
    module = check_precision(fmt, precision)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    artifact: Artifact = module.convert(Path(source), precision, out_dir, calibration, **options)
    artifact.meta.setdefault("convert_s", round(time.perf_counter() - t0, 3))
    artifact.meta.setdefault("tool_versions", module.tool_versions())
    return artifact
