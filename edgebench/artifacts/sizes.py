"""File sizes as a deployment sees them: raw bytes and gzip bytes (what compression really saves)."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Iterable


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
