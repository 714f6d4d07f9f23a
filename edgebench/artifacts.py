"""Content-addressed artifact cache: a conversion runs once per (source, recipe, format, precision, tools).

Key = sha256 over the source bytes' hash, the recipe, format, precision, calibration hash, converter
options and the converter's tool versions. An entry is a folder ``<root>/<key[:2]>/<key>/`` holding the
model file(s) and ``meta.json``. It is built in a temporary folder beside it and renamed into place,
so two processes converting the same key never see a half-written entry (the loser discards its copy).
``STATS`` counts hits and conversions so tests and benchmarks can tell which happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgebench import __version__
from edgebench.convert import Artifact, TensorIO, check_precision, convert
from edgebench.sizes import gzip_bytes, raw_bytes
from edgebench.source import require_file, sha256_file

DEFAULT_ROOT = Path(".edgebench/cache")
META_VERSION = 1
STATS = {"hits": 0, "conversions": 0}


@dataclass
class CachedArtifact:
    artifact: Artifact
    hit: bool
    seconds: float  # conversion time (on a hit: the original conversion's)
    path: Path  # the cache entry folder


def cache_root(root: Path | None = None) -> Path:
    return Path(root or os.environ.get("EDGEBENCH_CACHE") or DEFAULT_ROOT).expanduser()


def cache_key(source_sha256: str, recipe: str, fmt: str, precision: str, versions: dict[str, str],
              calibration_sha256: str | None = None, options: dict[str, Any] | None = None) -> str:
    material = json.dumps({"source": source_sha256, "recipe": recipe, "format": fmt, "precision": precision,
                           "calibration": calibration_sha256, "options": options or {}, "tools": versions,
                           "edgebench_meta": META_VERSION}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def ensure(source: Path, fmt: str, precision: str = "fp32", recipe: str | None = None,
           calibration: Path | None = None, root: Path | None = None, **options: Any) -> CachedArtifact:
    """The cached artifact for these inputs, converting only when no entry exists yet."""
    source = require_file(source)
    module = check_precision(fmt, precision)
    recipe = recipe or precision
    source_sha = sha256_file(source)
    calib_sha = sha256_file(require_file(calibration, "calibration")) if calibration else None
    key = cache_key(source_sha, recipe, fmt, precision, module.tool_versions(), calib_sha, options)
    entry = cache_root(root) / key[:2] / key
    if (entry / "meta.json").is_file():
        STATS["hits"] += 1
        return _load(entry, hit=True)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=entry.parent))
    try:
        artifact = convert(source, fmt, precision, tmp, calibration, **options)
        meta = build_meta(artifact, source, source_sha, recipe, key, calib_sha, options)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(tmp, entry)
        except OSError:  # another process won the race: its entry is as good as ours
            if not (entry / "meta.json").is_file():
                raise
        else:
            STATS["conversions"] += 1
            return _load(entry, hit=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    STATS["hits"] += 1
    return _load(entry, hit=True)


def _load(entry: Path, hit: bool) -> CachedArtifact:
    meta = json.loads((entry / "meta.json").read_text())
    files = [entry / f for f in meta["files"]]
    artifact = Artifact(meta["format"], meta["precision"], files, entry / meta["main"],
                        [TensorIO.from_dict(t) for t in meta["inputs"]],
                        [TensorIO.from_dict(t) for t in meta["outputs"]], meta)
    return CachedArtifact(artifact, hit, float(meta.get("convert_s", 0.0)), entry)


def build_meta(artifact: Artifact, source: Path, source_sha: str, recipe: str, key: str,
               calib_sha: str | None, options: dict[str, Any]) -> dict[str, Any]:
    root = artifact.main.parent
    files = [p.relative_to(root).as_posix() for p in artifact.files]
    return {
        "meta_version": META_VERSION, "key": key, "edgebench_version": __version__,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "format": artifact.format, "precision": artifact.precision, "recipe": recipe,
        "source": str(source), "source_sha256": source_sha, "calibration_sha256": calib_sha, "options": options,
        "files": files, "main": artifact.main.relative_to(root).as_posix(),
        "size_bytes": raw_bytes(artifact.files), "gzip_bytes": gzip_bytes(artifact.files),
        **weight_stats(source),
        "inputs": [t.to_dict() for t in artifact.inputs], "outputs": [t.to_dict() for t in artifact.outputs],
        **{k: v for k, v in artifact.meta.items() if k not in ("files", "main")},
    }


def weight_stats(onnx_path: Path) -> dict[str, Any]:
    """Parameter counts, sparsity and the largest count of distinct values in any weight tensor.

    Read from the (possibly compressed) ONNX the artifact was made from: the converters here change
    number formats, not which weights are zero or shared.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    params = nonzero = max_unique = 0
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind not in "fc" or arr.size == 0:
            continue
        params += int(arr.size)
        nonzero += int(np.count_nonzero(arr))
        max_unique = max(max_unique, int(np.unique(arr).size))
    return {"params": params, "nonzero_params": nonzero,
            "sparsity": round(1 - nonzero / params, 6) if params else 0.0, "max_unique_values": max_unique,
            "weights_from": "source onnx"}
