"""Files: written so that no reader ever sees half of one (a temporary file beside the target, renamed
over it once complete: a rename within one folder is atomic on POSIX and Windows), checked before any work
that would end in writing them (:func:`check_writable`), and measured as a deployment sees them (raw bytes,
and gzip bytes: what compression really saves). A file that cannot be written is one line naming the disk and
the fix (:class:`~edgebench.errors.ExitStatus` ``OUTPUT``), never a traceback."""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable, Iterable

from edgebench.errors import EdgebenchError, ExitStatus

# Errors that mean "this disk cannot take a file", whatever file the writer was at; and those that mean "this
# place cannot", when met at the file being written (met at another, an input, say, they are the writer's own).
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
PLACE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENOENT})


def atomic_write(path: Path, write: Callable[[Path], object], suffix: str = ".tmp", mode: int = 0o644) -> Path:
    """Run ``write(tmp)`` on a temporary path in ``path``'s folder, then rename it over ``path``. A failure
    leaves ``path`` as it was and no temporary file behind. ``suffix`` is for writers that need a file
    ending (onnxruntime's quantizer wants ``.onnx``). A disk that is full, read-only or not ours to write
    is an :class:`EdgebenchError` naming ``path`` and the disk."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise write_error(path, "output", exc) from None
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        at_output = exc.filename in (None, str(tmp), str(path))
        if exc.errno not in DISK_ERRNOS and not (exc.errno in PLACE_ERRNOS and at_output):
            raise  # not the disk's doing (say, an input the writer reads): the writer's own error
        raise write_error(path, "output", exc) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """``path.write_text(text)``, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def copy_folder(source: Path, dest: Path, what: str) -> Path:
    """``source``'s files copied to ``dest`` (what was there first is removed). A disk that cannot take
    them is one :class:`EdgebenchError` naming ``dest`` and the disk, and no half copy is left."""
    shutil.rmtree(dest, ignore_errors=True)
    try:
        dest.mkdir(parents=True)
        for item in sorted(source.rglob("*")):
            target = dest / item.relative_to(source)
            if item.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                shutil.copy2(item, target)
    except OSError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise write_error(dest, what, exc) from None
    return dest


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


def mount_point(path: Path) -> Path:
    """The mount point of the disk that holds ``path`` (or would hold it: its nearest existing folder)."""
    here = Path(os.path.abspath(path))
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return here


def write_error(path: Path, what: str, exc: OSError) -> EdgebenchError:
    """The one line for ``exc``, met while writing ``what`` at ``path``: what is wrong and the fix."""
    disk = mount_point(Path(exc.filename) if isinstance(exc.filename, str) else path)
    why, fix = {
        errno.ENOSPC: (f"the disk mounted at {disk} is full", "free space there or write to another disk"),
        errno.EDQUOT: (f"your disk quota on {disk} is used up", "free space there or write to another disk"),
        errno.EFBIG: ("the file is larger than that disk allows", "write to another disk"),
        errno.EROFS: (f"the disk mounted at {disk} is read-only", "pass a path on a writable disk"),
        errno.EACCES: ("permission denied", "pass a path in a folder you can write to"),
        errno.EPERM: ("permission denied", "pass a path in a folder you can write to"),
        errno.ELOOP: ("a symbolic link in it points back to itself", "remove the link or pass another path"),
        errno.ENOENT: (f"{path.parent} cannot hold new files (a virtual file system, like /proc)",
                       "pass a path on a disk"),
        errno.EEXIST: ("one of its folders is a file", "pass a path inside a folder"),
        errno.ENOTDIR: ("one of its folders is a file", "pass a path inside a folder"),
    }.get(exc.errno or 0, (exc.strerror or str(exc), "pass a path in a folder you can write to"))
    return EdgebenchError(f"cannot write {what} {path}: {why}: {fix}", ExitStatus.OUTPUT)


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def check_writable(path: Path, what: str, directory: bool = False) -> Path:
    """Check, before any work, that ``path`` — a file, or with ``directory`` a folder — can be written, by
    creating (and removing) a small file where it would go; one :class:`EdgebenchError` (``OUTPUT``) that
    names the problem and the fix otherwise: a read-only disk, a full one, no permission, a parent that is a
    file, a file where a folder belongs or the other way round, a device or ``/proc`` entry, a symbolic link
    loop. Nothing is left behind; a missing folder is not created. Returns ``path``."""
    path = Path(path).expanduser()

    def refuse(why: str, fix: str) -> EdgebenchError:
        return EdgebenchError(f"cannot write {what} {path}: {why}: {fix}", ExitStatus.OUTPUT)

    try:
        info: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
            kind = "a file" if blocker.is_file() else "a device or other special file"
            raise refuse(f"{blocker} is {kind}, not a folder", "pass a path inside a folder") from None
        raise write_error(path, what, exc) from None
    if info is None and os.path.islink(path):
        raise refuse("it is a symbolic link to nothing", "remove the link or pass another path")
    if info is not None and directory and not stat.S_ISDIR(info.st_mode):
        raise refuse("it is a file, not a folder", "pass a folder")
    if info is not None and not directory and stat.S_ISDIR(info.st_mode):
        raise refuse("it is a folder", f"pass a file path, e.g. {path / ('out' + (path.suffix or '.json'))}")
    if info is not None and not directory and not stat.S_ISREG(info.st_mode):
        raise refuse("it is not a regular file (a device, pipe or socket)", "pass a file path")
    folder = _nearest_existing(path if directory else path.parent)
    if not folder.is_dir():
        raise refuse(f"{folder} is a file, not a folder", "pass a path inside a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgebench-probe-", dir=folder)
        try:
            os.write(fd, b"\0")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise write_error(path, what, exc) from None
    if info is not None and not os.access(path, os.W_OK):
        raise refuse("it is read-only", "make it writable or pass another path")
    return path


STALE_S = 600.0  # a work folder untouched this long, its process gone, is a killed process's leftover
_TEMP = re.compile(r"edgebench-[a-z0-9]+-(\d+)-[^/]+")  # temp_prefix(what) + mkdtemp's random part
_swept_temp = False  # whether this process has rid the temp folder of leftovers


def temp_prefix(what: str) -> str:
    """The name prefix of this process's temp folder for ``what`` (``edgebench-<what>-<pid>-``): the pid lets a
    later start tell the leftover of a killed process. The first one a process asks for first removes such
    leftovers (:func:`remove_stale_temp`)."""
    remove_stale_temp()
    return f"edgebench-{what}-{os.getpid()}-"


def remove_stale_temp() -> list[Path]:
    """Remove (once per process) the folders (:func:`temp_prefix`) in the system temp folder that an edgebench
    killed with ``kill -9`` left: untouched for STALE_S, their process gone. Returns those removed."""
    global _swept_temp
    if _swept_temp:
        return []
    _swept_temp = True
    return remove_stale(Path(tempfile.gettempdir()).glob("edgebench-*"), _TEMP)


def remove_stale(candidates: Iterable[Path], name: re.Pattern[str]) -> list[Path]:
    """Remove the folders among ``candidates`` whose name fits ``name`` (its group 1: the pid of the process that
    made it), untouched for STALE_S, their process gone. Returns those removed."""
    removed = []
    for folder in candidates:
        match = name.fullmatch(folder.name)
        try:
            if not match or not folder.is_dir() or time.time() - folder.stat().st_mtime < STALE_S:
                continue
        except OSError:
            continue
        if not process_alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (on Windows always True: ``os.kill(pid, 0)`` would end it there)."""
    if sys.platform == "win32":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True
