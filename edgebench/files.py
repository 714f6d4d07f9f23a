"""Files: written so that no reader ever sees half of one (a temporary file beside the target, renamed
over it once complete: a rename within one folder is atomic on POSIX and Windows), and measured as a
deployment sees them (raw bytes, and gzip bytes: what compression really saves)."""

from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path
from typing import Callable, Iterable


def atomic_write(path: Path, write: Callable[[Path], object], suffix: str = ".tmp", mode: int = 0o644) -> Path:
    """Run ``write(tmp)`` on a temporary path in ``path``'s folder, then rename it over ``path``. A failure
    leaves ``path`` as it was and no temporary file behind. ``suffix`` is for writers that need a file
    ending (onnxruntime's quantizer wants ``.onnx``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """``path.write_text(text)``, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def gzip_bytes(paths: Iterable[Path], level: int = 9) -> int:
    """Size of the files' bytes deflated at ``level``, streamed so large models stay cheap on memory."""
    total = 0
    for path in paths:
        comp = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip container, as `gzip -9` writes
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                total += len(comp.compress(chunk))
        total += len(comp.flush())
    return total


def raw_bytes(paths: Iterable[Path]) -> int:
    return sum(Path(p).stat().st_size for p in paths)
