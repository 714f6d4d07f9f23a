"""The formats edgebench knows, by name: one line per format, ``name → "module:Class"``.

Everything that lists formats or runtimes (``--to``, ``--format``, sweep planning, device profiles'
``runtimes``, the artifact cache, the readback) asks this registry. A format's module is imported the
first time it is looked up, and holds no toolchain import of its own, so a missing toolchain costs
nothing until its format is chosen.
"""

from __future__ import annotations

import importlib
import time
from functools import cache
from pathlib import Path
from typing import Any

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.base import Format
from edgebench.formats.tensors import Artifact

REGISTRY: dict[str, str] = {
    "onnx": "edgebench.formats.onnx:OnnxFormat",
    "openvino": "edgebench.formats.openvino:OpenVinoFormat",
    "tflite": "edgebench.formats.tflite:TfliteFormat",
    "tensorrt": "edgebench.formats.tensorrt:TensorRtFormat",
}


def register(name: str, target: str) -> None:
    """Add (or replace) a format: ``target`` is ``"package.module:FormatClass"``, imported when first used."""
    REGISTRY[name] = target


def names() -> list[str]:
    return list(REGISTRY)


@cache
def _load(target: str) -> Format:
    module, _, cls = target.partition(":")
    fmt = getattr(importlib.import_module(module), cls)()
    if not isinstance(fmt, Format):
        raise TypeError(f"{target} is not an edgebench Format")
    return fmt


def get(name: str) -> Format:
    """The format registered as ``name`` (case and spaces ignored)."""
    target = REGISTRY.get(name.lower().strip())
    if target is None:
        raise EdgebenchError(f"unknown format {name!r}: choose one of {', '.join(REGISTRY)}", ExitStatus.USAGE)
    return _load(target)


def runtimes() -> list[str]:
    """The runner backends of the registered formats, each once, in registry order."""
    return list(dict.fromkeys(get(name).runtime for name in REGISTRY))


def parse_formats(text: str) -> list[str]:
    """``onnx,openvino`` → a checked list, in the order given, without repeats."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    if not formats:
        raise EdgebenchError("no format given: pass e.g. --to onnx,openvino,tflite", ExitStatus.USAGE)
    for fmt in formats:
        get(fmt)
    return list(dict.fromkeys(formats))


def format_of(path: Path) -> str:
    """The format an artifact file is in, from its ending (.onnx, .xml, .tflite, .engine/.plan)."""
    suffix = path.suffix.lower()
    for name in REGISTRY:
        if suffix in get(name).suffixes:
            return name
    known = sorted(s for name in REGISTRY for s in get(name).suffixes)
    raise EdgebenchError(f"cannot tell the format of {path.name}: pass a file ending in {', '.join(known)} "
                         "or a .onnx with --format, or a PyTorch or Keras model (.pt2, .pt, .keras, .h5, a SavedModel "
                         "folder: docs/sources.md)", ExitStatus.USAGE)


def check_precision(name: str, precision: str) -> Format:
    fmt = get(name)
    if precision not in fmt.precisions:
        raise EdgebenchError(f"format {name} does not support precision {precision!r}: choose one of "
                             f"{', '.join(fmt.precisions)}", ExitStatus.USAGE)
    return fmt


def convert(source: Path, name: str, precision: str, out_dir: Path, calibration: Path | None = None,
            **options: Any) -> Artifact:
    """Convert the ONNX ``source`` into ``out_dir``; the artifact's meta records how, with what, and its I/O."""
    fmt = check_precision(name, precision)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    artifact = fmt.convert(Path(source), precision, out_dir, calibration, **options)
    artifact.meta.setdefault("convert_s", round(time.perf_counter() - t0, 3))
    artifact.meta.setdefault("tool_versions", fmt.tool_versions())
    return artifact
