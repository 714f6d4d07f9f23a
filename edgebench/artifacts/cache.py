"""Content-addressed artifact cache: a conversion runs once per (source, recipe, format, precision, tools).

Key = sha256 over the source bytes' hash, the canonical recipe, format, precision, calibration hash,
converter options (sizes for dynamic dimensions included), the converter's tool versions and what else
its output depends on (a converter's ``key_material``: the int8 scheme chosen for the host's ISA). An
entry is a folder ``<root>/<key[:2]>/<key>/`` holding the model file(s) and ``meta.json``. It is built
in a temporary folder beside it and renamed
into place, so two processes converting the same key never see a half-written entry (the loser
discards its copy) and a failed build leaves nothing. A build folder whose process was killed (``kill -9``)
is removed by the next conversion in that cache, once untouched for STALE_S (files.py) with its process gone. A recipe's weight steps (prune, cluster) produce
a float ONNX cached under ``<root>/weights/`` and shared by every format. ``meta.json`` records the
original source's sha256, the canonical recipe, and cost metrics read back from the produced files,
with ratios against the fp32 artifact of the same format. ``STATS`` counts hits and conversions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from edgebench import __version__
from edgebench.artifacts.meta import META_VERSION, ArtifactMeta, ArtifactWeights
from edgebench.artifacts.routes import Direct, choose, record
from edgebench.compress.graph import LayerSelection, constant_weights
from edgebench.compress.metrics import onnx_weights, ratios
from edgebench.compress.prior import Prior, prior_compression
from edgebench.compress.weights import apply_weight_steps
from edgebench.compress.recipe import Recipe, parse_recipe
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats import Artifact, check_precision, convert, get, names
from edgebench.formats.calibration import check_calibration, require_calibration
from edgebench.formats.prequantized import prequantized, with_int8_weights
from edgebench.formats.readback import Preservation, costs, verify
from edgebench.files import gzip_bytes, raw_bytes, remove_stale, temp_prefix
from edgebench.data.source import require_file, sha256_file
from edgebench.sources.hub import origin

if TYPE_CHECKING:
    from edgebench.training.finetune import Finetune

DEFAULT_ROOT = Path(".edgebench/cache")
STATS = {"hits": 0, "conversions": 0}
_BUILD = re.compile(r"\.[0-9a-f]{12}-(\d+)-[^/]+")  # ".<key[:12]>-<pid>-<random>", as _materialize names them
_swept: set[Path] = set()  # the cache roots already rid of leftovers by this process


@dataclass(frozen=True)
class CachedArtifact:
    """A cache entry: its folder and its meta.json (``meta.convert_s``: the conversion's time, on a hit the
    original conversion's)."""

    meta: ArtifactMeta
    path: Path  # the cache entry folder
    hit: bool

    @property
    def main(self) -> Path:
        return self.path / self.meta.main

    @property
    def files(self) -> list[Path]:
        return [self.path / f for f in self.meta.files]


def cache_root(root: Path | None = None) -> Path:
    return Path(root or os.environ.get("EDGEBENCH_CACHE") or DEFAULT_ROOT).expanduser()


def cache_key(source_sha256: str, recipe: str, fmt: str, precision: str, versions: dict[str, str],
              calibration_sha256: str | None = None, options: dict[str, Any] | None = None) -> str:
    material = json.dumps({"source": source_sha256, "recipe": recipe, "format": fmt, "precision": precision,
                           "calibration": calibration_sha256, "options": options or {}, "tools": versions,
                           "edgebench_meta": META_VERSION}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass
class _Conversion:
    """One conversion's inputs, checked, and the cache entry they key."""
    source: Path
    fmt: str
    recipe: Recipe
    calibration: Path | None
    root: Path | None
    selection: LayerSelection
    seed: int
    options: dict[str, Any]  # the converter's (sizes for dynamic dimensions included)
    layers: dict[str, Any]  # the weight steps' layer selection and seed, where not the defaults
    finetune: "Finetune | None"
    training: dict[str, Any]  # what a trained model depends on besides the recipe: data, teacher, torch
    source_sha: str
    calib_sha: str | None
    key: str
    direct: Direct | None = None  # the direct route from the source itself (artifacts.routes); None: the hub ONNX
    route: str | None = None  # the route asked for ("hub" forces the hub ONNX)

    @property
    def entry(self) -> Path:
        return cache_root(self.root) / self.key[:2] / self.key


def _conversion(source: Path, fmt: str, precision: str | None, recipe: str | None, calibration: Path | None,
                root: Path | None, selection: LayerSelection | None, seed: int,
                shapes: dict[str, tuple[int, ...]] | None, options: dict[str, Any],
                finetune: "Finetune | None" = None, route: str | None = None) -> _Conversion:
    source = require_file(source)
    if shapes:  # sizes for dynamic dimensions (--shape), for converters and calibration: part of the key
        options["shapes"] = {name: [int(d) for d in dims] for name, dims in sorted(shapes.items())}
    parsed = effective_recipe(recipe, precision)
    training: dict[str, Any] = {}
    if finetune is not None or parsed.needs_torch:
        from edgebench.training.prepare import check_training

        parsed, training = check_training(source, parsed, finetune)
    converter = check_precision(fmt, parsed.precision)
    direct = choose(source, fmt, parsed, route)
    selection = selection or LayerSelection()
    source_sha = sha256_file(source)
    calib_sha = sha256_file(require_file(calibration, "calibration")) if calibration else None
    # quantization-aware training, here or before the source was exported, needs no calibration
    qat = parsed.trains or (parsed.precision == "int8" and not parsed.weight_steps and prequantized(source))
    if parsed.precision == "int8" and not (qat and (converter.takes_qdq or direct is not None)):
        if qat and calibration is None:
            takers = ", ".join(name for name in names() if get(name).takes_qdq)
            raise EdgebenchError(f"{fmt} int8 of a quantization-aware-trained model calibrates its activation ranges "
                                 f"again ({fmt}'s converter cannot take Q/DQ ranges): pass --calibration NPZ, or use "
                                 f"a format that takes them ({takers})", ExitStatus.USAGE)
        require_calibration(calibration)
    if calibration is not None:  # a misfit set, or NaN in it (a TFLite conversion's sample too), named before work
        check_calibration(source, calibration, parsed.precision == "int8", shapes)
    layers: dict[str, Any] = {} if selection == LayerSelection() else {"layers": asdict(selection)}
    if seed and (parsed.find("cluster") or parsed.trains):  # training: the seed splits, shuffles and inits
        layers["seed"] = seed
    scheme = converter.key_material(parsed.precision) if direct is None else direct.key_material()
    key = cache_key(source_sha, parsed.canonical, fmt, parsed.precision,
                    converter.tool_versions() if direct is None else direct.versions(), calib_sha,
                    {**options, **layers, **scheme, **training})
    return _Conversion(source, fmt, parsed, calibration, root, selection, seed, options, layers, finetune, training,
                       source_sha, calib_sha, key, direct, route)


def ensure(source: Path, fmt: str, precision: str | None = None, recipe: str | None = None,
           calibration: Path | None = None, root: Path | None = None,
           selection: LayerSelection | None = None, seed: int = 0,
           shapes: dict[str, tuple[int, ...]] | None = None, finetune: "Finetune | None" = None,
           progress: Callable[[str], None] | None = None, route: str | None = None,
           **options: Any) -> CachedArtifact:
    """The cached artifact for these inputs, converting only when no entry exists yet.

    ``recipe`` (e.g. ``prune:0.8+cluster:16+int8``) sets the precision; ``precision`` alone is the
    recipe of one step, and both together must agree. The weight steps run once per (source, steps)
    into a cached float ONNX shared by every format; the format's converter then applies its own
    precision step. Cost metrics and the preservation check are taken on the produced files.

    ``finetune`` (training data, teacher, settings) trains the recipe's steps (edgebench.training): the trained
    float model (or, for int8, the QAT model as QDQ ONNX) is cached once for every format like the weight
    steps' model, keyed by the training data and settings too; ``progress`` gets its epoch lines.

    A source model's artifact goes straight from the source where the format has a direct route for the recipe
    (``artifacts.routes``; ``route="hub"`` forces its hub ONNX), and its meta.json records the route taken.
    """
    c = _conversion(source, fmt, precision, recipe, calibration, root, selection, seed, shapes, options, finetune,
                    route)
    parsed = c.recipe
    remove_leftovers(cache_root(c.root))

    def build(tmp: Path) -> dict[str, Any]:
        float_path, weights = c.source, None
        if parsed.needs_torch:
            float_path, weights = trained_model(c, progress)
        elif parsed.weight_steps or constant_weights(c.source):  # Constant-node weights: lifted into initializers
            float_path, weights = float_model(c.source, c.source_sha, Recipe(parsed.weight_steps), c.selection,
                                              c.seed, c.root)
        step = parsed.find("int8")
        with tempfile.TemporaryDirectory(prefix=temp_prefix("source")) as work:
            prior, qdq = Prior(), (weights or {}).get("qdq")
            if qdq:
                qdq = str(float_path.parent / qdq)
            if not (parsed.weight_steps or parsed.needs_torch):  # the compression the source arrived with
                if parsed.precision == "int8" and prequantized(float_path):  # QAT elsewhere: its own Q/DQ
                    float_path = qdq = with_int8_weights(float_path, Path(work) / "qdq.onnx")
                prior = prior_compression(float_path)
            clustered = (weights or {}).get("clustered") or prior.clustered
            quantization = {"method": step.option if step else "minmax", "per_channel": not clustered}
            if qdq and parsed.precision == "int8":  # QAT: the formats take its Q/DQ scales (quantizer: qat)
                quantization["qdq"] = str(qdq)
            if c.direct is not None:
                artifact = c.direct.convert(parsed.precision, tmp, c.calibration, quantization, c.options)
            else:
                artifact = convert(float_path, fmt, parsed.precision, tmp, c.calibration, quantization=quantization,
                                   **c.options)
                if origin(c.source) is not None:
                    artifact.meta["route"] = record(fmt, artifact)
            status, note = Preservation.NOTHING, "nothing to preserve: the recipe has no prune/cluster step"
            made = None
            if weights is not None:
                made = ArtifactWeights(weights["sha256"], weights["steps"], weights["clustered"],
                                       weights.get("training"))
            if prior:  # checked on the produced file as edgebench's own steps are
                status, note = verify(fmt, artifact.main, onnx_weights(float_path)[1], prior.clustered)
                note = f"{note}; the source arrived compressed: {prior.describe()}"
            elif weights is not None:
                status, note = verify(fmt, artifact.main, onnx_weights(float_path)[1], weights["clustered"])
        meta = build_meta(artifact, c.source, c.source_sha, parsed.canonical, c.key, c.calib_sha,
                          {**c.options, **c.layers}, status, note, made)
        if parsed.canonical != "fp32":
            ref = ensure(c.source, fmt, "fp32", calibration=c.calibration, root=c.root, route=c.route,
                         **c.options).meta
            r = ratios(meta.to_dict(), ref.to_dict())
            meta = replace(meta, size_ratio=r["size_ratio"], gzip_ratio=r["gzip_ratio"], dc_ratio=r.get("dc_ratio"),
                           reference_key=ref.key)
        return meta.to_dict()

    path, hit = _materialize(c.entry, build)
    STATS["hits" if hit else "conversions"] += 1
    return _load(path, hit=hit)


def lookup(source: Path, fmt: str, precision: str | None = None, recipe: str | None = None,
           calibration: Path | None = None, root: Path | None = None,
           selection: LayerSelection | None = None, seed: int = 0,
           shapes: dict[str, tuple[int, ...]] | None = None, finetune: "Finetune | None" = None,
           route: str | None = None, **options: Any) -> CachedArtifact | None:
    """The artifact ``ensure`` would return when it is already cached, else None, converting nothing (so a
    plan can say what is already there); the inputs are checked as ``ensure`` checks them."""
    entry = _conversion(source, fmt, precision, recipe, calibration, root, selection, seed, shapes, options,
                        finetune, route).entry
    return _load(entry, hit=True) if (entry / "meta.json").is_file() else None


def effective_recipe(recipe: str | None, precision: str | None) -> Recipe:
    """The recipe to build: ``recipe`` with ``precision`` appended when it has no precision step."""
    parsed = parse_recipe(recipe if recipe is not None else precision or "fp32")  # "" is refused, not fp32
    if precision is None or precision == parsed.precision or recipe is None:
        return parsed
    if parsed.precision == "fp32":
        return parse_recipe(f"{parsed.canonical}+{precision}" if parsed.steps else precision)
    raise EdgebenchError(f"--precision {precision} conflicts with recipe {parsed.canonical} (precision "
                         f"{parsed.precision}): drop --precision or change the recipe's last step",
                         ExitStatus.USAGE)


def float_model(source: Path, source_sha: str, weights: Recipe, selection: LayerSelection, seed: int,
                root: Path | None) -> tuple[Path, dict[str, Any]]:
    """The float ONNX after the weight steps, cached once per (source, steps, layers, seed) for all formats."""
    import onnx

    material = json.dumps({"source": source_sha, "weights": weights.canonical, "layers": asdict(selection),
                           "seed": seed, "onnx": onnx.__version__, "edgebench_meta": META_VERSION}, sort_keys=True)
    key = hashlib.sha256(material.encode()).hexdigest()

    def build(tmp: Path) -> dict[str, Any]:
        steps, clustered = apply_weight_steps(source, weights, tmp / "model.onnx", selection, seed)
        return {"key": key, "source_sha256": source_sha, "recipe": weights.canonical, "steps": steps,
                "clustered": clustered, "sha256": sha256_file(tmp / "model.onnx")}

    entry, _ = _materialize(cache_root(root) / "weights" / key[:2] / key, build)
    return entry / "model.onnx", json.loads((entry / "meta.json").read_text())


def trained_model(c: _Conversion, progress: Callable[[str], None] | None) -> tuple[Path, dict[str, Any]]:
    """The recipe trained (edgebench.training.finetune), cached once per (source, recipe, selection, seed,
    training data, teacher, torch versions) for every format: ``model.onnx`` (float) and, after QAT,
    ``qdq.onnx``."""
    import onnx

    material = json.dumps({"source": c.source_sha, "recipe": Recipe(tuple(s for s in c.recipe.steps
                                                                          if s.kind not in ("fp16", "int8-dynamic")
                                                                          and (s.kind != "int8" or c.recipe.trains)
                                                                          )).canonical,
                           "layers": c.layers, "training": c.training, "onnx": onnx.__version__,
                           "edgebench_meta": META_VERSION}, sort_keys=True)
    key = hashlib.sha256(material.encode()).hexdigest()

    def build(tmp: Path) -> dict[str, Any]:
        from edgebench.training.finetune import train_model

        float_onnx = c.source
        if constant_weights(c.source):  # weights in Constant nodes: lifted first, as for the weight steps
            float_onnx, _ = float_model(c.source, c.source_sha, Recipe(()), c.selection, c.seed, c.root)
        made = train_model(float_onnx, c.recipe, c.finetune, tmp, c.selection, c.seed, progress or (lambda _: None))
        training = {k: made[k] for k in ("settings", "history", "top1_before", "top1_after", "qat")}
        return {"key": key, "source_sha256": c.source_sha, "recipe": c.recipe.canonical, "steps": made["steps"],
                "clustered": made["clustered"], "sha256": sha256_file(tmp / "model.onnx"),
                "qdq": "qdq.onnx" if made["qat"] else None, "training": training}

    entry, _ = _materialize(cache_root(c.root) / "trained" / key[:2] / key, build)
    meta = json.loads((entry / "meta.json").read_text())
    return entry / "model.onnx", meta


def _materialize(entry: Path, build: Any) -> tuple[Path, bool]:
    """``entry`` holding ``build(tmp)``'s files and meta.json, built in a temporary folder and renamed
    into place; (entry, True) when it already existed or another process won the race. A failed build
    leaves nothing behind."""
    if (entry / "meta.json").is_file():
        return entry, True
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name[:12]}-{os.getpid()}-", dir=entry.parent))
    try:
        meta = build(tmp)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(tmp, entry)
        except OSError:  # another process won the race: its entry is as good as ours
            if not (entry / "meta.json").is_file():
                raise
            return entry, True
        return entry, False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_leftovers(root: Path) -> list[Path]:
    """Remove (once per process) the build folders in cache ``root`` (``<shard>/.<key>-<pid>-*``, under
    ``weights/``, ``trained/`` and ``sources/`` too) that a killed conversion or export left: untouched for STALE_S, their process gone. Returns
    those removed."""
    if root in _swept:
        return []
    _swept.add(root)
    return remove_stale([*root.glob("*/.*"), *root.glob("weights/*/.*"), *root.glob("trained/*/.*"),
                         *root.glob("sources/*/.*")], _BUILD)


def _load(entry: Path, hit: bool) -> CachedArtifact:
    return CachedArtifact(ArtifactMeta.from_dict(json.loads((entry / "meta.json").read_text())), entry, hit)


def build_meta(artifact: Artifact, source: Path, source_sha: str, recipe: str, key: str, calib_sha: str | None,
               options: dict[str, Any], preservation: Preservation, preservation_note: str,
               weights: ArtifactWeights | None) -> ArtifactMeta:
    root = artifact.main.parent
    details = {k: v for k, v in artifact.meta.items()
               if k not in ("files", "main", "convert_s", "tool_versions", "route")}
    return ArtifactMeta(
        meta_version=META_VERSION, key=key, edgebench_version=__version__,
        created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        format=artifact.format, precision=artifact.precision, recipe=recipe,
        source=str(source), source_sha256=source_sha, calibration_sha256=calib_sha, options=options,
        files=tuple(p.relative_to(root).as_posix() for p in artifact.files),
        main=artifact.main.relative_to(root).as_posix(),
        size_bytes=raw_bytes(artifact.files), gzip_bytes=gzip_bytes(artifact.files),
        **costs(artifact.format, artifact.main),
        inputs=tuple(artifact.inputs), outputs=tuple(artifact.outputs), details=details,
        convert_s=artifact.meta["convert_s"], tool_versions=artifact.meta["tool_versions"],
        preservation=preservation, preservation_note=preservation_note, weights=weights, origin=origin(source),
        route=artifact.meta.get("route"),
    )
