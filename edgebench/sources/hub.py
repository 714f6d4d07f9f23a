"""A source model's hub ONNX, exported once into the artifact cache.

``to_hub`` keys the export by the source's content (a SavedModel folder: every file in it, by relative path), its
kind, the framework and exporter versions, the sizes an export takes as example inputs (TorchScript) and
``HUB_VERSION``: a second bench of the same ``.keras`` finds ``<root>/sources/<key[:2]>/<key>/`` and exports nothing
(no framework is even imported: the versions come from the packages' metadata). The entry holds ``<name>.onnx``
and ``hub.json`` (how it was made: ``HubModel.record``'s fields, the export's inputs and time) and, for a kind a
format converts directly (``artifacts.routes``), a copy of the source under ``source/`` (an ``nn.Module``: its
``torch.export`` program), so that route never depends on where the file is now. It is built in a
temporary folder beside it, named as the artifact cache names its build folders (so its leftover sweep removes a
killed export's), and renamed into place: two processes exporting at once never see half an entry.

``root`` is the artifact cache's root, which the caller resolves (``artifacts.cache.cache_root``).
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
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from edgebench.data.source import load_onnx_info, sha256_file
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import temp_prefix, write_error
from edgebench.sources.base import native_output_silenced
from edgebench.sources.registry import source_of

if TYPE_CHECKING:
    import torch

HUB_VERSION = 1  # part of every key: a change to how sources are exported exports them again
FOLDER = "sources"  # under the cache root
META = "hub.json"
COPY = "source"  # in an entry: the copy of the source the direct routes convert from (``Source.copied``)
CACHE = "the artifact cache (another: --cache-dir or $EDGEBENCH_CACHE)"
MODULE = "torch_module"  # the kind of an nn.Module given to the Python API


@dataclass(frozen=True)
class HubModel:
    """A source's hub ONNX: where it is, what it was made from and how (``hit``: it was in the cache already)."""

    onnx: Path
    source: str  # the source kind (sources.registry), or "torch_module"
    route: str  # how it was exported, in words
    exporter: str
    source_sha256: str
    versions: Mapping[str, str]  # the framework and exporter versions
    path: str  # the source as given (a file, a folder, or "<ClassName>" for a module)
    hit: bool = False

    def record(self) -> dict[str, Any]:
        """What results and artifact metadata record of the source (``model.source``, meta.json ``origin``)."""
        return {"kind": self.source, "path": self.path, "sha256": self.source_sha256, "exporter": self.exporter,
                "route": self.route, "versions": dict(self.versions)}


def to_hub(path: str | Path, root: Path, shapes: Mapping[str, Sequence[int]] | None = None) -> HubModel:
    """The hub ONNX of the source model ``path``, exported into cache ``root`` unless it is there already; a
    file that is not what its ending says, a framework not installed or an export that fails is one line."""
    given = Path(path).expanduser()
    source = source_of(given)
    if source is None:
        raise EdgebenchError(f"{given} is no source model to export (an .onnx or an artifact is used as it is)",
                             ExitStatus.USAGE)
    source.check(given)
    versions = source.versions(given)
    sizes = {n: [int(d) for d in dims] for n, dims in sorted((shapes or {}).items())} if source.takes_shapes else {}
    sha = content_sha256(given)
    key = _key({"source": sha, "kind": source.name, "versions": versions, "shapes": sizes})

    def build(tmp: Path) -> dict[str, Any]:
        out = tmp / f"{_stem(given)}.onnx"
        t0 = time.perf_counter()
        with native_output_silenced():
            route = source.export_onnx(given, out, {n: tuple(d) for n, d in sizes.items()})
        if source.copied:
            _copy(given, tmp / COPY / given.name)
        return _described(out, source.exporter, given, {
            "key": key, "kind": source.name, "path": str(given.resolve()), "sha256": sha, "exporter": source.exporter,
            "route": route, "versions": versions, "shapes": sizes, "export_s": round(time.perf_counter() - t0, 3)})

    meta, hit = _materialize(root / FOLDER / key[:2] / key, build)
    return _hub(root / FOLDER / key[:2] / key, meta, str(given), hit)


def module_to_hub(module: "torch.nn.Module", example_inputs: Sequence["torch.Tensor"], root: Path) -> HubModel:
    """The hub ONNX of a ``torch.nn.Module`` (the Python API): exported with torch.export and the dynamo exporter
    (``torch_onnx.export_module``), then stored in cache ``root`` by the ONNX's own content — a module has no file
    to key it by, so each call exports, and an unchanged module finds its entry and adds nothing."""
    from edgebench.sources.torch_export import TorchExportSource
    from edgebench.sources.torch_onnx import DYNAMO, export_module

    source = TorchExportSource()
    versions = source.versions(Path())
    source.require("torch", "onnxscript")
    name = type(module).__name__
    work = Path(tempfile.mkdtemp(prefix=temp_prefix("export")))
    try:
        exported = work / f"{name}.onnx"
        t0 = time.perf_counter()
        with native_output_silenced():
            route = export_module(module, example_inputs, exported, work / f"{name}.pt2")
        sha = sha256_file(exported)
        key = _key({"onnx": sha, "kind": MODULE})

        def build(tmp: Path) -> dict[str, Any]:
            out = tmp / exported.name
            shutil.move(exported, out)
            if (work / f"{name}.pt2").is_file():  # its program: what the direct routes convert
                (tmp / COPY).mkdir()
                shutil.move(work / f"{name}.pt2", tmp / COPY / f"{name}.pt2")
            return _described(out, DYNAMO, Path(f"<{name}>"), {
                "key": key, "kind": MODULE, "path": f"<{name}>", "sha256": sha, "exporter": DYNAMO, "route": route,
                "versions": versions, "shapes": {}, "export_s": round(time.perf_counter() - t0, 3)})

        entry = root / FOLDER / key[:2] / key
        meta, hit = _materialize(entry, build)
        return _hub(entry, meta, f"<{name}>", hit)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def origin(onnx: Path) -> dict[str, Any] | None:
    """The source record of a hub ONNX (from the ``hub.json`` beside it), None for any other ONNX: what an
    artifact made from it records as its ``origin``."""
    meta_path = onnx.parent / META
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("onnx") != onnx.name:
        return None
    return _hub(onnx.parent, meta, str(meta.get("path")), True).record()


def kept_copy(onnx: Path) -> Path | None:
    """The copy of the source kept beside a hub ONNX (``Source.copied``; a module's ``torch.export`` program), which
    a direct route converts from; None for any other ONNX, or a kind that keeps none."""
    folder = onnx.parent / COPY
    kept = list(folder.iterdir()) if origin(onnx) is not None and folder.is_dir() else []
    return kept[0] if len(kept) == 1 else None


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
    except OSError as exc:
        raise write_error(target, CACHE, exc) from None


def content_sha256(path: Path) -> str:
    """A file's sha256; a folder's: over each file's relative path and sha256, in path order."""
    if not path.is_dir():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def _key(material: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps({**material, "hub": HUB_VERSION}, sort_keys=True).encode()).hexdigest()


def _stem(path: Path) -> str:
    return (path.name if path.is_dir() else path.stem) or "model"


def _described(out: Path, exporter: str, source: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with the exported file's name, hash and inputs; an export that wrote no valid ONNX is exit 10."""
    if not out.is_file():
        raise EdgebenchError(f"{exporter} wrote no ONNX for {source.name}: export the ONNX yourself and pass the .onnx",
                             ExitStatus.CONVERSION_FAILED)
    try:
        info = load_onnx_info(out)
    except EdgebenchError as exc:
        raise EdgebenchError(f"{exporter} exported {source.name} to an ONNX that cannot be used ({exc})",
                             ExitStatus.CONVERSION_FAILED) from None
    return {**meta, "onnx": out.name, "onnx_sha256": info.sha256, "inputs": [s.to_dict() for s in info.inputs],
            "outputs": [s.to_dict() for s in info.outputs], "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                         time.gmtime())}


def _hub(entry: Path, meta: Mapping[str, Any], given: str, hit: bool) -> HubModel:
    return HubModel(onnx=entry / meta["onnx"], source=meta["kind"], route=meta["route"], exporter=meta["exporter"],
                    source_sha256=meta["sha256"], versions=meta["versions"], path=given, hit=hit)


def _materialize(entry: Path, build: Callable[[Path], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """``entry``'s hub.json, building the entry first (in a temporary folder, renamed into place) when it is
    missing; (meta, True) when it existed or another process won the race. A failed build leaves nothing."""
    if (entry / META).is_file():
        return json.loads((entry / META).read_text()), True
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name[:12]}-{os.getpid()}-", dir=entry.parent))
    except OSError as exc:
        raise write_error(entry.parent, CACHE, exc) from None
    try:
        meta = build(tmp)
        try:
            (tmp / META).write_text(json.dumps(meta, indent=1))
        except OSError as exc:
            raise write_error(tmp / META, CACHE, exc) from None
        try:
            os.rename(tmp, entry)
        except OSError:  # another process won the race: its entry is as good as ours
            if not (entry / META).is_file():
                raise
            return json.loads((entry / META).read_text()), True
        return meta, False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
