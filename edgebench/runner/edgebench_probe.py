#!/usr/bin/env python3
"""What a device offers, as one JSON object: ``python3 edgebench_probe.py [WORKDIR]``.

Standard library only, so it answers even where numpy or a runtime is missing. Each runtime is imported
in its own subprocess, so a broken install (a segfaulting CUDA library, a slow import) cannot take the
probe down with it.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import platform
import shutil
import subprocess
import sys
import types
from pathlib import Path

if not __package__:  # run as a plain file (on a device, without edgebench): this folder is the package
    __package__ = "edgebench_runner_files"
    sys.modules[__package__] = types.ModuleType(__package__)
    sys.modules[__package__].__path__ = [str(Path(__file__).resolve().parent)]

from .lifeline import die_with_parent  # noqa: E402
from .runner_env import cpu_model, frequency_mhz, temperatures_c  # noqa: E402

# name: (pip package, code printing a JSON object with at least "version")
RUNTIMES = {
    "numpy": ("numpy", "import numpy as m; r = {'version': m.__version__}"),
    "onnxruntime": ("onnxruntime", "import onnxruntime as m; r = {'version': m.__version__, "
                                   "'providers': m.get_available_providers()}"),
    "openvino": ("openvino", "import openvino as ov; r = {'version': ov.get_version(), "
                             "'devices': ov.Core().available_devices}"),
    "tflite": ("ai-edge-litert", "try:\n from ai_edge_litert import interpreter as m\n p = 'ai-edge-litert'\n"
                                 "except ImportError:\n import tflite_runtime.interpreter as m\n"
                                 " p = 'tflite-runtime'\nr = {'version': _md.version(p), 'package': p}"),
    "tensorrt": ("tensorrt", "import tensorrt as m; r = {'version': m.__version__}"),
}
PRELUDE = "import json, importlib.metadata as _md\n"


def probe_runtime(name: str, timeout_s: float = 120.0) -> dict[str, object]:
    package, code = RUNTIMES[name]
    try:
        proc = subprocess.run([sys.executable, "-c", PRELUDE + code + "\nprint(json.dumps(r))"],
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"import took over {timeout_s:.0f} s", "pip": package}
    if proc.returncode == 0:
        try:
            return {"ok": True, **json.loads(proc.stdout.strip().splitlines()[-1])}
        except (ValueError, IndexError):
            pass
    last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    return {"ok": False, "error": last[:300], "pip": package}


def memory_mb() -> dict[str, float | None]:
    found = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                found[key] = int(value.split()[0]) / 1024.0
    except (OSError, ValueError):
        pass
    return {"total": found.get("MemTotal"), "available": found.get("MemAvailable")}


def cuda() -> dict[str, object]:
    return {"nvidia_smi": shutil.which("nvidia-smi") is not None,
            "dev_nvidia0": os.path.exists("/dev/nvidia0"),
            "libcudart": ctypes.util.find_library("cudart"),
            "tegra": _read("/etc/nv_tegra_release")}


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()[:200]
    except OSError:
        return None


def disk_free_mb(path: str) -> float | None:
    target = Path(os.path.expanduser(path))
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        return shutil.disk_usage(target).free / 2**20
    except OSError:
        return None


def main(argv: list[str]) -> int:
    die_with_parent()
    workdir = argv[0] if argv else "~"
    report = {
        "python": platform.python_version(), "executable": sys.executable, "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}", "machine": platform.machine(),
        "cpu": cpu_model(), "cores": os.cpu_count(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "frequency_mhz": frequency_mhz(), "temperatures_c": temperatures_c(),
        "memory_mb": memory_mb(), "disk_free_mb": disk_free_mb(workdir), "workdir": workdir,
        "runtimes": {name: probe_runtime(name) for name in RUNTIMES}, "cuda": cuda(),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
