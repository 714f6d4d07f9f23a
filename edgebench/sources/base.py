"""What a source model is to edgebench: one ``Source`` subclass per kind of file a framework saves.

A source is a model as its framework wrote it (a Keras ``.keras``/``.h5``, a TensorFlow SavedModel folder, a
``torch.export`` program ``.pt2``, a TorchScript ``.pt``). edgebench exports it once into the hub form (ONNX,
``sources.hub.to_hub``), and recipes, formats, datasets and accuracy work on that ONNX as on any other.

A ``Source`` says which paths are its kind (``claims``: the ending, or a folder), whether the content is what
the ending says (``sniff``: read from the file's first bytes or its zip listing, never by loading it), which
framework it needs (``require``: imported only then, a missing one named with its pip extra) and how it is
exported (``export_onnx``). Each module imports its framework inside its methods, so a source costs nothing
until a file of its kind is given.
"""

from __future__ import annotations

import importlib
import os
import sys
import zipfile
from contextlib import contextmanager
from importlib import metadata
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Iterator, Mapping

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.text import one_line

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class Source(ABC):
    name: ClassVar[str]  # as results record it (``model.source.kind``)
    label: ClassVar[str]  # what the file is, in messages: "Keras model", "TorchScript module" …
    extra: ClassVar[str]  # the pip extra that installs its framework and exporter
    exporter: ClassVar[str]  # the exporter it goes through, in messages and results
    suffixes: ClassVar[tuple[str, ...]] = ()
    folder: ClassVar[bool] = False  # a folder, not a file (a SavedModel)
    save_hint: ClassVar[str]  # how the framework writes this kind: the fix for a file that is not it
    takes_shapes: ClassVar[bool] = False  # the export takes --shape (example inputs): part of the hub key
    # the hub entry keeps a copy of the source: a format with a direct route converts from it (artifacts.routes)
    copied: ClassVar[bool] = False

    def claims(self, path: Path) -> bool:
        """Whether ``path`` is meant to be this kind: its ending, or (``folder``) any folder."""
        return path.is_dir() if self.folder else path.is_file() and path.suffix.lower() in self.suffixes

    @abstractmethod
    def sniff(self, path: Path) -> str | None:
        """None when the content is this kind; else what it is instead (``a text file``), for the refusal."""

    def check(self, path: Path) -> None:
        """Refuse, in one line, a file whose content is not what its ending says."""
        found = self.sniff(path)
        if found is not None:
            raise EdgebenchError(f"{path} is not a {self.label} ({found}): {self.save_hint}",
                                 ExitStatus.INVALID_MODEL)

    @abstractmethod
    def packages(self, path: Path) -> dict[str, tuple[str, ...]]:
        """The modules this file's export imports, each with the distributions that may install it."""

    def versions(self, path: Path) -> dict[str, str]:
        """The installed versions of the framework and exporter this file's export goes through (part of the hub
        key), read from the packages' metadata without importing them, so a cache hit costs no framework import.
        A missing one is exit 7, naming the extra that installs it."""
        found = {}
        for module, dists in self.packages(path).items():
            version = next((v for d in dists if (v := _installed(d)) is not None), None)
            if version is None:
                raise self.missing(module, "not installed")
            found[module] = version
        return found

    def require(self, *modules: str) -> None:
        """Import the framework's ``modules`` (a broken install is named like a missing one)."""
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise self.missing(module, one_line(str(exc), 200)) from None

    def missing(self, module: str, why: str) -> EdgebenchError:
        return EdgebenchError(f"exporting a {self.label} to ONNX needs {module} ({why}): pip install "
                              f"'edgebench[{self.extra}]'", ExitStatus.RUNTIME_MISSING)

    @abstractmethod
    def export_onnx(self, path: Path, out: Path, shapes: Mapping[str, tuple[int, ...]]) -> str:
        """Write ``path`` as ONNX to ``out`` (input names and dynamic dimensions kept); returns the route taken,
        in words. ``shapes``: sizes of the inputs, for an export that needs example inputs (``takes_shapes``)."""


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def export_failed(exporter: str, path: Path, op: str | None, exc: BaseException | None) -> EdgebenchError:
    """An export that failed, in one line: the op it could not take (when the exporter named one) or its error."""
    if op is not None:
        return EdgebenchError(f"{exporter} cannot export {path.name}: it cannot convert op {op} to ONNX: replace that "
                              "op in the model (or export the ONNX yourself and pass the .onnx)",
                              ExitStatus.CONVERSION_FAILED)
    why = f"{type(exc).__name__}: {one_line(str(exc), 300) or 'no message'}" if exc is not None else "no message"
    return EdgebenchError(f"{exporter} could not export {path.name} ({why}): export the ONNX "
                          "yourself and pass the .onnx", ExitStatus.CONVERSION_FAILED)


@contextmanager
def native_output_silenced() -> Iterator[None]:
    """File descriptors 1 and 2 sent to /dev/null: what TensorFlow's and torch's C++ code writes there, past
    Python's streams (CPU-feature notices at import, torch's IR dump on a failed export), kept off the terminal
    while a framework imports and exports, so that a failure is the one line edgebench prints."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # a process started without those descriptors: nothing reaches a terminal anyway
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def zip_names(path: Path) -> list[str] | None:
    """The member names of a zip file, or None when ``path`` is not one."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None


def what_it_is(path: Path) -> str:
    """A file's kind from its first bytes, for messages about a file that is not what its ending says."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "an empty file"
    if head.startswith(HDF5_MAGIC):
        return "an HDF5 file"
    if head.startswith(b"PK"):
        return "a zip of another kind"
    if head[:1] == b"\x80":
        return "a Python pickle (torch.save's legacy format)"
    return "a binary file of another kind" if b"\x00" in head else "a text file"
