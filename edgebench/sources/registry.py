"""The source kinds edgebench exports to ONNX, by name: one line per kind, ``name → "module:Class"``.

``source_of`` tells a path's kind from its ending (or, for a SavedModel, from being a folder); an ONNX file and the
ready artifacts (.xml, .tflite, .engine) are no source: they go to the formats as they are.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

from edgebench.sources.base import Source

REGISTRY: dict[str, str] = {
    "keras": "edgebench.sources.keras:KerasSource",
    "savedmodel": "edgebench.sources.savedmodel:SavedModelSource",
    "torch_export": "edgebench.sources.torch_export:TorchExportSource",
    "torchscript": "edgebench.sources.torchscript:TorchScriptSource",
}


@cache
def get(name: str) -> Source:
    module, _, cls = REGISTRY[name].partition(":")
    source = getattr(importlib.import_module(module), cls)()
    if not isinstance(source, Source):
        raise TypeError(f"{REGISTRY[name]} is not an edgebench Source")
    return source


def names() -> list[str]:
    return list(REGISTRY)


def source_of(path: str | Path) -> Source | None:
    """The source kind ``path`` is meant to be (its ending, or a folder), or None: an .onnx, an artifact, a path
    that does not exist. Whether the content is that kind is ``Source.check``'s to say."""
    p = Path(path).expanduser()
    return next((get(name) for name in REGISTRY if get(name).claims(p)), None)
