"""What one benchmark job runs: an artifact in some format, its backend, and how its tensors map.

``edgebench bench`` takes any artifact (.onnx, .xml, .tflite, .engine/.plan) or an ONNX model with
``--format`` (converted through the artifact cache). For an artifact edgebench made, its ``meta.json``
says how its tensors map to the source model's; for one made elsewhere the host reads names, dtypes
and shapes with that format's runtime (``Format.describe``) and feeds it as is; its precision is read
from the file too (``Format.read_precision``), and is ``unknown`` where it cannot be. What a job carries
besides the artifact (IR weights, the precision an engine is built at, the user's checked ``--option``s)
comes from the artifact's format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from edgebench.artifacts import cache as artifacts
from edgebench.artifacts.meta import ArtifactMeta
from edgebench.compress.graph import LayerSelection
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import TensorIO, check_precision, format_of, get
from edgebench.formats.precision import UNKNOWN
from edgebench.formats.readback import costs
from edgebench.files import gzip_bytes, raw_bytes
from edgebench.data.source import require_file, sha256_file

if TYPE_CHECKING:
    from edgebench.training.finetune import Finetune


@dataclass(kw_only=True)
class Target:
    """The artifact a job runs, built by keyword (``from_cached``, ``_existing``); ``meta``: its meta.json,
    None for an artifact edgebench did not make."""

    format: str
    precision: str
    backend: str
    main: Path
    files: list[Path]
    inputs: list[TensorIO]
    outputs: list[TensorIO]
    source_sha256: str
    size_bytes: int
    gzip_bytes: int
    cache_hit: bool | None = None  # None: not converted through the cache
    meta: ArtifactMeta | None = None

    @classmethod
    def from_cached(cls, cached: artifacts.CachedArtifact) -> "Target":
        """A cache entry as a job's target: its meta.json supplies sizes and the source's hash."""
        m = cached.meta
        return cls(format=m.format, precision=m.precision, backend=get(m.format).runtime, main=cached.main,
                   files=cached.files, inputs=list(m.inputs), outputs=list(m.outputs), source_sha256=m.source_sha256,
                   size_bytes=m.size_bytes, gzip_bytes=m.gzip_bytes, cache_hit=cached.hit, meta=m)

    @property
    def recipe(self) -> str | None:
        """The recipe it was made with (None: not made by edgebench)."""
        return self.meta.recipe if self.meta is not None else None

    def job_files(self) -> dict[str, Path]:
        """Job keys → local files the runner needs (IR weights travel beside the .xml)."""
        return get(self.format).job_files(self.main, self.files)

    def backend_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The job's backend options: what the artifact contributes (an engine's precision), then ``given``
        (``--option``), checked against what the format's backend accepts."""
        fmt = get(self.format)
        return {**fmt.job_options(self.precision), **fmt.check_runner_options(given)}

    def read_costs(self) -> dict[str, Any]:
        """Cost metrics read from the artifact's own weights; none where the host cannot read them (an engine)."""
        return costs(self.format, self.main) if get(self.format).can_read_weights(self.main) else {}


def resolve(model: Path, fmt: str | None = None, precision: str | None = None, recipe: str | None = None,
            calibration: Path | None = None, cache_dir: Path | None = None,
            shapes: dict[str, tuple[int, ...]] | None = None, selection: LayerSelection | None = None,
            finetune: "Finetune | None" = None, progress: Callable[[str], None] | None = None,
            route: str | None = None) -> Target:
    model = require_file(model)
    own = format_of(model)
    if recipe is not None and own != "onnx":
        raise EdgebenchError(f"{model.name} is already a {own} artifact; --recipe compresses only an .onnx model: "
                             "pass the .onnx with --recipe (and --format), or drop --recipe", ExitStatus.USAGE)
    if own == "onnx" and recipe is not None and fmt is None:
        fmt = "onnx"  # a recipe on an .onnx without --format: the compressed ONNX
    plain = (precision or "fp32") == "fp32" and finetune is None and (
        recipe is None or artifacts.effective_recipe(recipe, None).canonical == "fp32")
    if fmt is not None and own == "onnx" and (fmt != "onnx" or not plain):
        cached = artifacts.ensure(model, fmt, precision, recipe, calibration, cache_dir, shapes=shapes,
                                  selection=selection, finetune=finetune, progress=progress, route=route)
        return Target.from_cached(cached)
    if fmt is not None and fmt != own:
        raise EdgebenchError(f"{model.name} is already a {own} artifact; --format {fmt} converts only from an "
                             ".onnx model: pass the .onnx, or drop --format", ExitStatus.USAGE)
    return _existing(model, own, precision)


def _existing(model: Path, fmt: str, precision: str | None) -> Target:
    """An artifact file as given; its meta.json (when edgebench made it) supplies the tensor mapping."""
    form = get(fmt)
    meta = _meta_beside(model)
    if meta is not None:
        files = [model.parent / f for f in meta.files]
        return Target(format=fmt, precision=meta.precision, backend=form.runtime, main=model, files=files,
                      inputs=list(meta.inputs), outputs=list(meta.outputs), source_sha256=meta.source_sha256,
                      size_bytes=raw_bytes(files), gzip_bytes=gzip_bytes(files), meta=meta)
    inputs, outputs = form.describe(model)
    files = form.artifact_files(model)
    # Without meta.json the file itself says what it holds (fp16 / int8 weights, quantized activations);
    # where it cannot be read (a TensorRT engine) the precision is "unknown", never a guessed fp32.
    # What the file says wins over a precision given with it (a sweep's "fp32" recipe for the model as it is, a
    # stray --precision): a label must say what the file holds, so fp16 weights are never labelled fp32.
    detected = form.read_precision(model)
    if detected is None:  # the file cannot say (a TensorRT engine): the precision given, checked, or unknown
        if precision is not None:
            check_precision(fmt, precision)
        prec = precision or UNKNOWN
    else:
        prec = detected if detected != UNKNOWN else (precision or detected)
    return Target(format=fmt, precision=prec, backend=form.runtime, main=model, files=files, inputs=inputs,
                  outputs=outputs, source_sha256=sha256_file(model), size_bytes=raw_bytes(files),
                  gzip_bytes=gzip_bytes(files))


def _meta_beside(model: Path) -> ArtifactMeta | None:
    path = model.parent / "meta.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except ValueError:
        return None
    return ArtifactMeta.from_dict(meta) if isinstance(meta, dict) and meta.get("main") == model.name else None
