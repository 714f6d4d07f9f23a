"""Reading an .npz without trusting it: every array's shape and dtype come from its .npy header, read from
the zip member before any data is decompressed, so a set that does not fit the model is refused at no cost
(a 1 MB zip of zeros can inflate to 1 GB). Nothing is unpickled: an object array is refused from its
header. A dataset or calibration set may declare at most ``$EDGEBENCH_MAX_DATA_MB`` MiB of arrays (default
1024): the host and the device's runner hold the whole set in memory, and a declared size is what numpy
allocates.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Mapping

import numpy as np
from numpy.lib import format as npy

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.data.source import require_file

LIMIT_VAR = "EDGEBENCH_MAX_DATA_MB"
DEFAULT_LIMIT_MB = 1024
_SAVE = "save it with numpy.savez(PATH, NAME=array, …), one array per model input"


@dataclass(frozen=True)
class ArrayHeader:
    """One array of an .npz as its .npy header declares it; ``member`` is its file inside the zip."""

    member: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0


def max_bytes() -> int:
    """The most a set's arrays may declare together: ``$EDGEBENCH_MAX_DATA_MB`` MiB, default 1024."""
    text = os.environ.get(LIMIT_VAR, "").strip()
    if not text:
        return DEFAULT_LIMIT_MB << 20
    if not text.isdigit() or int(text) == 0:
        raise EdgebenchError(f"${LIMIT_VAR}={text!r} is not a size in MiB: set a whole number above 0 (e.g. 4096), "
                             f"or unset it for the default of {DEFAULT_LIMIT_MB}", ExitStatus.CONFIG)
    return int(text) << 20


def read_headers(path: str | Path, what: str = "dataset") -> dict[str, ArrayHeader]:
    """Every array of the .npz at ``path`` by its key (numpy.savez's names), read from the headers only."""
    p = require_file(path, what)
    try:
        if not zipfile.is_zipfile(p):
            raise EdgebenchError(_not_npz(p, what), ExitStatus.DATA_MISMATCH)
        with zipfile.ZipFile(p) as archive:
            headers = {}
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if not info.filename.endswith(".npy"):
                    raise EdgebenchError(f"{what} {p} holds {info.filename!r}, which is not a .npy array: {_SAVE}",
                                         ExitStatus.DATA_MISMATCH)
                with archive.open(info) as member:
                    headers[info.filename[:-4]] = _header(member, info.filename, p, what)
            return headers
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
            RuntimeError) as exc:  # RuntimeError: an encrypted member
        raise EdgebenchError(f"{what} {p} is a damaged .npz ({exc}): {_SAVE}", ExitStatus.DATA_MISMATCH) from None


def _not_npz(p: Path, what: str) -> str:
    with open(p, "rb") as f:
        start = f.read(len(npy.MAGIC_PREFIX))
    if start == npy.MAGIC_PREFIX:
        return f"{what} {p} is a single .npy array, not an .npz archive: {_SAVE}"
    if start.startswith(b"PK\x03\x04"):  # a zip's first entry, but no directory at its end
        return f"{what} {p} is a damaged .npz (cut short: the zip has no directory at its end): {_SAVE}"
    return f"{what} {p} is not an .npz archive (no zip inside its {p.stat().st_size} bytes): {_SAVE}"


def _header(member: IO[bytes], name: str, p: Path, what: str) -> ArrayHeader:
    key = name[:-4]
    try:
        version = npy.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(member)
        else:
            raise ValueError(f".npy version {version[0]}.{version[1]}, which edgebench does not read")
    except ValueError as exc:
        raise EdgebenchError(f"{what} {p}: array {key!r} has no readable .npy header ({exc}): {_SAVE}",
                             ExitStatus.DATA_MISMATCH) from None
    if dtype.hasobject:
        raise EdgebenchError(f"{what} {p} holds object arrays ({key!r} is {dtype}, which would need unpickling, "
                             "and edgebench never unpickles data): save plain numeric arrays "
                             f"(e.g. np.asarray({key}, dtype='float32'))", ExitStatus.DATA_MISMATCH)
    if any(d < 0 for d in shape):
        raise EdgebenchError(f"{what} {p}: array {key!r} declares the shape {list(shape)}: {_SAVE}",
                             ExitStatus.DATA_MISMATCH)
    return ArrayHeader(name, tuple(int(d) for d in shape), dtype)


def load_arrays(path: str | Path, headers: Mapping[str, ArrayHeader], what: str = "dataset",
                limited: bool = True) -> dict[str, np.ndarray]:
    """The arrays ``headers`` name (keyed as there), refused before any is read if together they declare
    more than ``max_bytes()`` (``limited``; edgebench's own files, like the runner's outputs, are not)."""
    p = require_file(path, what)
    if limited:
        _check_size(p, headers, what)
    arrays = {}
    try:
        with zipfile.ZipFile(p) as archive:
            for key, header in headers.items():
                arrays[key] = _read(archive, header, f"{what} {p}: array {key!r}")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise EdgebenchError(f"{what} {p} is a damaged .npz ({exc}): {_SAVE}", ExitStatus.DATA_MISMATCH) from None
    return arrays


def _read(archive: zipfile.ZipFile, header: ArrayHeader, which: str) -> np.ndarray:
    with archive.open(header.member) as member:
        try:
            return npy.read_array(member, allow_pickle=False)
        except ValueError as exc:  # the data is shorter than its header says ("EOF: reading array data …")
            raise EdgebenchError(f"{which} is cut short ({exc}): {_SAVE}", ExitStatus.DATA_MISMATCH) from None


def _check_size(p: Path, headers: Mapping[str, ArrayHeader], what: str) -> None:
    total, limit = sum(h.nbytes for h in headers.values()), max_bytes()
    if total > limit:
        biggest, header = max(headers.items(), key=lambda kv: kv[1].nbytes)
        raise EdgebenchError(f"{what} {p} declares {_size(total)} of arrays ({biggest!r}: {list(header.shape)} "
                             f"{header.dtype}), more than the {limit >> 20} MiB a set may hold (the host and the "
                             "device hold it all in memory): save fewer samples (a few hundred is plenty), or raise "
                             f"the limit with {LIMIT_VAR}=MIB", ExitStatus.DATA_MISMATCH)


def _size(n: int) -> str:
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def load_npz(path: str | Path, what: str = "dataset", limited: bool = True) -> dict[str, np.ndarray]:
    """Every array of the .npz at ``path``, its headers checked first (``limited``: see ``load_arrays``)."""
    return load_arrays(path, read_headers(path, what), what, limited)
