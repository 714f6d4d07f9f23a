"""What the runner reads about the machine it runs on: peak memory, CPU, governor, temperatures."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def peak_rss_mb() -> float:
    """The process's peak resident set (VmHWM); ru_maxrss where there is no /proc."""
    status = _read("/proc/self/status")
    if status:
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def reset_peak_rss() -> bool:
    """Lower VmHWM to the current RSS (Linux ≥ 4.0: write ``5`` to /proc/self/clear_refs).

    Memory freed before this point (an import's or the inputs' transient buffers) no longer hides the
    model's own allocations under an old high-water mark. False where it cannot be reset (no /proc,
    clear_refs not writable): the peak is then the whole process's, as before."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_model() -> str:
    info = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in info.splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def physical_cores() -> int | None:
    """Distinct (package, core) pairs of the CPUs sysfs lists (Linux, x86 and Arm alike); None elsewhere."""
    cores = {(_read(t / "physical_package_id"), _read(t / "core_id"))
             for t in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology")}
    return len(cores) or None


def thread_limit() -> int:
    """The most threads a job may ask of a runtime here: 4 per CPU this process may run on. More is a typo
    (``--threads 100000`` had a runtime start threads for minutes while its memory grew by gigabytes)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return 4 * cpus


def temperatures_c() -> dict[str, float]:
    temps: dict[str, float] = {}
    for zone in sorted(Path("/sys/class/thermal").glob("thermal_zone*")):
        raw = _read(zone / "temp")
        if raw and raw.lstrip("-").isdigit():
            name = _read(zone / "type") or zone.name
            temps[f"{zone.name}:{name}"] = int(raw) / 1000.0
    return temps


def frequency_mhz() -> dict[str, float]:
    cpu0 = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    freqs = {}
    for key in ("scaling_cur_freq", "scaling_max_freq", "cpuinfo_max_freq"):
        raw = _read(cpu0 / key)
        if raw and raw.isdigit():
            freqs[key] = int(raw) / 1000.0
    return freqs


def environment() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "frequency_mhz": frequency_mhz(),
        "temperatures_c": temperatures_c(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "hostname": platform.node(),
    }
