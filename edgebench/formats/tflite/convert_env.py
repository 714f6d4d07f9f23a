"""Which Python runs the ONNX → TFLite converter (onnx2tf + TensorFlow), and the environment edgebench
prepares for it on first use.

onnx2tf hard-pins numpy 1 and an older TensorFlow, so it cannot sit in an extra beside edgebench's own
dependencies. The conversion runs in a child process (``_onnx2tf_worker.py``, a self-contained script run by
path), under the first of:

1. ``$EDGEBENCH_TFLITE_PYTHON``: a Python the user prepared with onnx2tf;
2. this interpreter, when the converter's modules are installed here (the dev venv: ``make install``);
3. a virtual environment under the user cache dir (``$EDGEBENCH_TOOLS_CACHE``, default platformdirs'
   ``user_cache_dir("edgebench")``), made with pip from the package's own requirement files
   (``converter-requirements.txt``, then ``converter-nodeps.txt`` with ``--no-deps``) the first time a
   conversion needs it. Its folder is named for the requirement set and this Python; a marker file written
   last holds the versions installed, so a half-made environment is rebuilt, and a file lock keeps two
   processes from preparing it at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Callable

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import atomic_write_text

PYTHON_VAR = "EDGEBENCH_TFLITE_PYTHON"
CACHE_VAR = "EDGEBENCH_TOOLS_CACHE"
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "converter-requirements.txt"
NODEPS = HERE / "converter-nodeps.txt"
WORKER = HERE / "_onnx2tf_worker.py"
# What the worker imports, and the distributions whose versions key the artifact cache.
MODULES = ("onnx2tf", "onnxsim", "tensorflow", "ai_edge_litert", "onnxruntime", "onnx")
DISTS = ("onnx2tf", "onnxsim", "tensorflow-cpu", "tensorflow", "tf-keras", "ai-edge-litert")
MARKER = "edgebench-env.json"
# TensorFlow 2.21 (converter-requirements.txt) has wheels for CPython 3.10-3.13.
PYTHONS = ((3, 10), (3, 13))
DOWNLOAD_MB = 410  # the wheels pip fetches for Linux x86_64, CPython 3.11 (tensorflow-cpu alone: 273 MB)
_PROBE = ("import json, sys\nfrom importlib.metadata import version, PackageNotFoundError\n"
          "from importlib.util import find_spec\ndef v(d):\n    try:\n        return version(d)\n"
          "    except PackageNotFoundError:\n        return None\n"
          "print(json.dumps({'missing': [m for m in sys.argv[1].split(',') if find_spec(m) is None],\n"
          "                  'versions': {d: v(d) for d in sys.argv[2].split(',')}}))")

Announce = Callable[[str], None]


@dataclass(frozen=True)
class ConverterEnv:
    """The interpreter that converts, where it came from, and its tools' versions."""

    python: Path
    source: str  # "EDGEBENCH_TFLITE_PYTHON", "this interpreter" or "prepared"
    versions: dict[str, str]
    folder: Path | None = None  # the prepared environment's folder


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def tools_cache() -> Path:
    """Where prepared converter environments live: ``$EDGEBENCH_TOOLS_CACHE``, else the user cache dir."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get(CACHE_VAR) or user_cache_dir("edgebench", appauthor=False)).expanduser()


def env_dir() -> Path:
    """This Python's converter environment: named for the requirement set, the Python version and platform."""
    digest = hashlib.sha256()
    for part in (REQUIREMENTS.read_bytes(), NODEPS.read_bytes(), sys.implementation.name.encode(),
                 f"{sys.version_info[:2]}".encode(), sysconfig.get_platform().encode()):
        digest.update(part + b"\0")
    return tools_cache() / f"tflite-convert-py{sys.version_info[0]}{sys.version_info[1]}-{digest.hexdigest()[:12]}"


def env_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def resolve(announce: Announce = _stderr) -> ConverterEnv:
    """The converter's interpreter (``current()``), its environment prepared now when there is none."""
    return current() or prepare_env(env_dir(), announce)


def current() -> ConverterEnv | None:
    """The converter's interpreter without preparing anything, in order: ``$EDGEBENCH_TFLITE_PYTHON``, this
    interpreter when it holds the converter's modules, the prepared environment; None when none is ready."""
    given = os.environ.get(PYTHON_VAR)
    if given:
        return _given(Path(given).expanduser())
    if all(find_spec(m) is not None for m in MODULES):
        return ConverterEnv(Path(sys.executable), "this interpreter", _own_versions())
    return _read_marker(env_dir())


def _own_versions() -> dict[str, str]:
    found = {}
    for dist in DISTS:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return found


def probe(python: Path) -> tuple[list[str], dict[str, str]]:
    """The converter's modules ``python`` lacks, and the versions of its distributions."""
    try:
        proc = subprocess.run([str(python), "-c", _PROBE, ",".join(MODULES), ",".join(DISTS)],
                              capture_output=True, text=True, timeout=120)
    except OSError as exc:
        raise EdgebenchError(f"cannot run {python} ({exc.strerror or exc}): set {PYTHON_VAR} to a Python "
                             "interpreter, or unset it", ExitStatus.RUNTIME_MISSING) from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgebenchError(f"{python} fails to start ({last}): set {PYTHON_VAR} to a working Python, or unset "
                             "it", ExitStatus.RUNTIME_MISSING)
    reply = json.loads(proc.stdout.strip().splitlines()[-1])
    return reply["missing"], {k: v for k, v in reply["versions"].items() if v}


def _given(python: Path) -> ConverterEnv:
    missing, versions = probe(python)
    if missing:
        raise EdgebenchError(
            f"{PYTHON_VAR}={python} lacks {', '.join(missing)}: install the converter there "
            f"({python} -m pip install -r {REQUIREMENTS} && {python} -m pip install --no-deps -r {NODEPS}), "
            f"or unset {PYTHON_VAR} to let edgebench prepare its own", ExitStatus.RUNTIME_MISSING)
    return ConverterEnv(python, PYTHON_VAR, versions)


def _read_marker(folder: Path) -> ConverterEnv | None:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    python = env_python(folder)
    return ConverterEnv(python, "prepared", marker["versions"], folder) if python.exists() else None


def prepare_env(folder: Path, announce: Announce = _stderr) -> ConverterEnv:
    """Make the converter environment in ``folder`` (under a file lock; whatever a failed attempt left is
    removed first), install the requirement files with pip, and write the marker last."""
    from filelock import FileLock

    if not PYTHONS[0] <= sys.version_info[:2] <= PYTHONS[1]:
        raise EdgebenchError(
            f"the ONNX → TFLite converter needs TensorFlow 2.21, which has no wheels for Python "
            f"{sys.version_info[0]}.{sys.version_info[1]} (only 3.10-3.13): set {PYTHON_VAR} to a Python "
            "3.10-3.13 with onnx2tf installed (docs/install.md), or run edgebench under one",
            ExitStatus.RUNTIME_MISSING)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.parent / f"{folder.name}.lock")):
        ready = _read_marker(folder)  # another process may have finished it while this one waited
        if ready is not None:
            return ready
        shutil.rmtree(folder, ignore_errors=True)
        announce(f"preparing the ONNX → TFLite converter environment once (~{DOWNLOAD_MB} MB from PyPI, "
                 f"~1.8 GB on disk) in {folder} …")
        started = time.monotonic()
        try:
            _install(folder)
            missing, versions = probe(env_python(folder))
            if missing:
                raise EdgebenchError(
                    f"the converter environment in {folder} lacks {', '.join(missing)} after pip installed it "
                    f"(TensorFlow 2.21 has wheels for Linux x86_64/aarch64, macOS arm64 and Windows x86_64 "
                    f"only): set {PYTHON_VAR} to a Python with onnx2tf", ExitStatus.RUNTIME_MISSING)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        atomic_write_text(folder / MARKER, json.dumps({"versions": versions, "python": sys.version.split()[0],
                                                       "prepared_s": round(time.monotonic() - started, 1)}))
        announce(f"converter environment ready in {time.monotonic() - started:.0f} s: "
                 + ", ".join(f"{k} {v}" for k, v in versions.items()))
        return ConverterEnv(env_python(folder), "prepared", versions, folder)


def _install(folder: Path) -> None:
    steps = [([sys.executable, "-m", "venv", str(folder)], "python -m venv"),
             ([str(env_python(folder)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
               "-r", str(REQUIREMENTS)], "pip"),
             ([str(env_python(folder)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
               "--no-deps", "-r", str(NODEPS)], "pip")]
    for command, tool in steps:
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise EdgebenchError(
                f"could not prepare the ONNX → TFLite converter environment in {folder} ({tool}: "
                f"{_last_error(proc.stdout + proc.stderr)}): run 'edgebench setup tflite' where PyPI is "
                f"reachable, or set {PYTHON_VAR} to a Python with onnx2tf (docs/install.md)",
                ExitStatus.RUNTIME_MISSING)


def _last_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors or lines or ["no output"])[-1].removeprefix("ERROR: ")[:240]
