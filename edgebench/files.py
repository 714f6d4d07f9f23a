"""Files written so that no reader ever sees half of one: a temporary file beside the target, renamed
over it once complete (a rename within one folder is atomic on POSIX and Windows)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: Path, write: Callable[[Path], None], suffix: str = ".tmp", mode: int = 0o644) -> Path:
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
