"""Energy per inference from the device's own power sensors: an idle baseline, then the timed window.

A device profile declares its source (``power: {source: rapl}``); the runner opens it, samples ``idle_s`` of
idle before the timed loop and the whole timed loop, and reports the average power of each and
(avg − idle) × window / iterations in mJ. Where the source cannot be read, the result says why instead.

Sources, each written to its documented interface (docs/devices.md, "Energy per inference"):

- ``rapl``: Intel/AMD RAPL through the Linux powercap framework (Documentation/power/powercap/powercap.rst):
  ``<root>/intel-rapl:N/energy_uj`` (µJ, wraps at ``max_energy_range_uj``), the package zones by default.
- ``ina3221``: the Jetson INA3221 power monitor: the hwmon driver (Documentation/hwmon/ina3221.rst:
  ``inN_label``, ``inN_input`` mV, ``currN_input`` mA; JetPack 5 and later) or the older L4T iio driver
  (``rail_name_N``, ``in_powerN_input`` mW; JetPack 4).
- ``pmic``: the Raspberry Pi 5 PMIC ADC, ``vcgencmd pmic_read_adc``: the sum of V × A over its rails.
- ``nvml``: NVIDIA NVML through ctypes: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ, Volta and later), else
  ``nvmlDeviceGetPowerUsage`` (mW).

Counter sources (rapl, nvml energy) are read at the window's edges and polled in between (to catch a wrap);
instantaneous ones (ina3221, pmic, nvml power) are polled every ``interval_s`` and averaged over time.
Standard library only (the runner's rule).
"""

from __future__ import annotations

import ctypes
import functools
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

SOURCES = ("rapl", "ina3221", "pmic", "nvml")
RAPL_ROOT = "/sys/class/powercap"
INA3221_GLOBS = ("/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*", "/sys/bus/i2c/drivers/ina3221x/*/iio:device*")
INA3221_INPUT_RAILS = ("VDD_IN", "POM_5V_IN")  # the board's input rail on Orin / Xavier NX, and on Nano / TX2


class PowerUnavailable(Exception):
    """The declared source cannot be read on this device; the message says why and what would fix it."""


class Source:
    """One power source: ``read()`` gives joules since ``open`` (``counter``) or watts now."""

    name = ""
    counter = False
    interval_s = 0.1

    def read(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        """Release what ``open`` took (NVML's handle)."""


def _read_number(path: Path) -> float:
    try:
        return float(path.read_text().strip())
    except PermissionError as exc:
        raise PowerUnavailable(f"{path} is not readable by this user ({exc.strerror}): run the runner as root, or "
                               f"grant read access (e.g. chmod o+r {path}; since Linux 5.10 RAPL's energy_uj is "
                               "root-only)") from exc
    except (OSError, ValueError) as exc:
        raise PowerUnavailable(f"cannot read {path} ({exc})") from exc


class Rapl(Source):
    """The powercap zones' energy counters, summed (each wrap-corrected at its own ``max_energy_range_uj``)."""

    name, counter, interval_s = "rapl", True, 1.0

    def __init__(self, root: str | None, rails: list[str]) -> None:
        base = Path(root or RAPL_ROOT)
        zones = {(z / "name").read_text().strip() if (z / "name").is_file() else z.name: z
                 for z in sorted(base.glob("intel-rapl:*")) if (z / "energy_uj").exists()}
        if not zones:
            raise PowerUnavailable(f"no RAPL zone under {base} (no intel-rapl:N/energy_uj): this machine exposes no "
                                   "RAPL (not an Intel/AMD CPU, a VM, or the intel_rapl driver is not loaded: "
                                   "modprobe intel_rapl_msr)")
        wanted = rails or [n for n in zones if n.startswith("package")]  # subzones and psys overlap the packages
        missing = [r for r in wanted if r not in zones]
        if missing or not wanted:
            raise PowerUnavailable(f"no RAPL zone named {', '.join(missing) or 'package-*'} under {base} "
                                   f"(zones: {', '.join(sorted(zones))}): fix power.rails in the profile")
        self.zones = [zones[r] for r in wanted]
        self.ranges = [_read_number(z / "max_energy_range_uj") if (z / "max_energy_range_uj").exists() else 0.0
                       for z in self.zones]
        self.last = [_read_number(z / "energy_uj") for z in self.zones]
        self.total_uj = 0.0

    def read(self) -> float:
        now = [_read_number(z / "energy_uj") for z in self.zones]
        for before, after, span in zip(self.last, now, self.ranges):
            self.total_uj += after - before if after >= before else after + span - before
        self.last = now
        return self.total_uj / 1e6


class Ina3221(Source):
    """The INA3221 rails: V × I from hwmon (mV, mA) or P from the L4T iio driver (mW), summed over ``rails``."""

    name = "ina3221"

    def __init__(self, path: str | None, rails: list[str]) -> None:
        if path:
            folders = [Path(path)]
        else:
            folders = sorted(p for pattern in INA3221_GLOBS for p in Path("/").glob(pattern.lstrip("/")))
        channels: dict[str, Callable[[], float]] = {}
        for folder in folders:
            channels.update(_hwmon_rails(folder))
            channels.update(_iio_rails(folder))
        if not channels:
            where = path or " or ".join(INA3221_GLOBS)
            raise PowerUnavailable(f"no INA3221 rail under {where}: not a Jetson, or name the monitor's hwmon/iio "
                                   "folder in power.path")
        default = [r for r in INA3221_INPUT_RAILS if r in channels][:1] or list(channels)
        wanted = rails or default
        missing = [r for r in wanted if r not in channels]
        if missing:
            raise PowerUnavailable(f"no INA3221 rail named {', '.join(missing)} (rails: {', '.join(channels)}): "
                                   "fix power.rails in the profile")
        self.rails = wanted
        self.readers = [channels[r] for r in wanted]
        self.read()

    def read(self) -> float:
        return sum(reader() for reader in self.readers)


def _hwmon_rails(folder: Path) -> dict[str, Callable[[], float]]:
    """``inN_label`` → V (``inN_input``, mV) × I (``currN_input``, mA); the sum-of-shunts channel is no rail."""
    rails: dict[str, Callable[[], float]] = {}
    for label in sorted(folder.glob("in[0-9]*_label")):
        n = label.name[2:-len("_label")]
        volts, amps = folder / f"in{n}_input", folder / f"curr{n}_input"
        name = label.read_text().strip()
        if volts.exists() and amps.exists() and not name.lower().startswith("sum"):
            rails[name] = functools.partial(_watts_from, volts, amps)
    return rails


def _iio_rails(folder: Path) -> dict[str, Callable[[], float]]:
    """``rail_name_N`` → ``in_powerN_input`` (mW)."""
    rails: dict[str, Callable[[], float]] = {}
    for label in sorted(folder.glob("rail_name_[0-9]*")):
        power = folder / f"in_power{label.name[len('rail_name_'):]}_input"
        if power.exists():
            rails[label.read_text().strip()] = functools.partial(_watts_from, power, None)
    return rails


def _watts_from(first: Path, amps: Path | None) -> float:
    """mV × mA (hwmon) or, without ``amps``, mW (iio), in watts."""
    if amps is None:
        return _read_number(first) / 1e3
    return _read_number(first) * _read_number(amps) / 1e6


PMIC_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([-0-9.eE+]+)[AV]\s*$")


def parse_pmic(text: str) -> dict[str, float]:
    """``vcgencmd pmic_read_adc``'s lines (``VDD_CORE_A current(7)=2.1A``, ``VDD_CORE_V volt(15)=0.8V``) → watts
    per rail that has both a current and a voltage (EXT5V and BATT have only a voltage)."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        match = PMIC_LINE.match(line)
        if match:
            rail, kind, value = match.groups()
            (amps if kind == "A" else volts)[rail] = float(value)
    return {rail: amps[rail] * volts[rail] for rail in amps if rail in volts}


class Pmic(Source):
    """The Raspberry Pi 5 PMIC ADC through ``vcgencmd pmic_read_adc``: one process per read, hence 0.5 s apart."""

    name, interval_s = "pmic", 0.5

    def __init__(self, command: str | None, rails: list[str]) -> None:
        found = shutil.which(command or "vcgencmd")
        if found is None:
            raise PowerUnavailable(f"{command or 'vcgencmd'} is not on this device's PATH: not a Raspberry Pi 5 "
                                   "(or install libraspberrypi-bin / raspi-utils), or name it in power.path")
        self.command = [found, "pmic_read_adc"]
        watts = self._rails()
        missing = [r for r in rails if r not in watts]
        if missing:
            raise PowerUnavailable(f"no PMIC rail named {', '.join(missing)} (rails: {', '.join(watts)}): fix "
                                   "power.rails in the profile")
        self.rails = rails

    def _rails(self) -> dict[str, float]:
        try:
            done = subprocess.run(self.command, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PowerUnavailable(f"{' '.join(self.command)} failed ({exc})") from exc
        watts = parse_pmic(done.stdout)
        if done.returncode != 0 or not watts:
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
            raise PowerUnavailable(f"{' '.join(self.command)} gave no rail readings ({why[0]}): a Raspberry Pi 5 "
                                   "with current firmware is needed, and the user must be in the video group")
        return watts

    def read(self) -> float:
        watts = self._rails()
        return sum(watts[r] for r in self.rails) if self.rails else sum(watts.values())


NVML_SUCCESS, NVML_ERROR_NOT_SUPPORTED = 0, 3


class Nvml(Source):
    """An NVIDIA GPU through libnvidia-ml: its energy counter (mJ) where the GPU has one, else its power (mW)."""

    name = "nvml"

    def __init__(self, library: str | None, index: int) -> None:
        try:
            self.lib = ctypes.CDLL(library or "libnvidia-ml.so.1")
        except OSError as exc:
            raise PowerUnavailable(f"NVML is not available here ({exc}): no NVIDIA driver, or name libnvidia-ml "
                                   "in power.path") from exc
        self.lib.nvmlErrorString.restype = ctypes.c_char_p
        self._check("nvmlInit_v2", self.lib.nvmlInit_v2())
        self.handle = ctypes.c_void_p()
        try:
            self._check("nvmlDeviceGetHandleByIndex_v2",
                        self.lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(self.handle)))
            energy = ctypes.c_ulonglong()
            code = self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(energy))
            self.counter = code == NVML_SUCCESS
            if code not in (NVML_SUCCESS, NVML_ERROR_NOT_SUPPORTED):
                self._check("nvmlDeviceGetTotalEnergyConsumption", code)
            self.start_mj = energy.value
            self.interval_s = 1.0 if self.counter else 0.1
            self.read()
        except PowerUnavailable:
            self.lib.nvmlShutdown()
            raise

    def _check(self, call: str, code: int) -> None:
        if code != NVML_SUCCESS:
            text = self.lib.nvmlErrorString(code)
            raise PowerUnavailable(f"NVML {call} failed: {text.decode() if text else code}")

    def read(self) -> float:
        if self.counter:
            energy = ctypes.c_ulonglong()
            self._check("nvmlDeviceGetTotalEnergyConsumption",
                        self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(energy)))
            return (energy.value - self.start_mj) / 1e3
        milliwatts = ctypes.c_uint()
        self._check("nvmlDeviceGetPowerUsage", self.lib.nvmlDeviceGetPowerUsage(self.handle, ctypes.byref(milliwatts)))
        return milliwatts.value / 1e3

    def close(self) -> None:
        self.lib.nvmlShutdown()


def open_source(rules: dict[str, Any]) -> Source:
    """The source a profile's ``power`` declares (PowerUnavailable where this device cannot give it)."""
    source, path, rails = rules.get("source"), rules.get("path"), list(rules.get("rails") or [])
    if source == "rapl":
        return Rapl(path, rails)
    if source == "ina3221":
        return Ina3221(path, rails)
    if source == "pmic":
        return Pmic(path, rails)
    if source == "nvml":
        return Nvml(path, int(rules.get("index") or 0))
    raise PowerUnavailable(f"unknown power source {source!r}: use one of {', '.join(SOURCES)}")


@dataclass(frozen=True)
class Reading:
    """The average power over a span of time, from ``samples`` sensor reads."""

    watts: float
    seconds: float
    samples: int


class Meter:
    """Samples one source: ``baseline(seconds)`` at rest in the calling thread, then ``start()`` … ``stop()`` in a
    thread around the timed loop (timing.measure's ``window``); ``report`` gives the reply's fields. A source
    that fails midway makes the report a note, never the job a failure."""

    def __init__(self, source: Source, interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source, self.clock = source, clock
        self.interval_s = interval_s or source.interval_s
        self.points: list[tuple[float, float]] = []
        self.failure: PowerUnavailable | None = None
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.idle: Reading | None = None
        self.window: Reading | None = None

    def _sample(self) -> None:
        self.points.append((self.clock(), self.source.read()))

    def _poll(self) -> None:
        try:
            while not self.stopping.wait(self.interval_s):
                self._sample()
        except PowerUnavailable as exc:
            self.failure = exc

    def baseline(self, seconds: float) -> None:
        """Sample ``seconds`` of the device at rest."""
        try:
            self.points = []
            self._sample()
            end = self.points[0][0] + seconds
            while (left := end - self.clock()) > 0:
                time.sleep(min(self.interval_s, left))
                self._sample()
            self.idle = self._average()
        except PowerUnavailable as exc:
            self.failure = exc

    def start(self) -> None:
        if self.failure is not None:
            return
        self.points = []
        self.stopping.clear()
        try:
            self._sample()
        except PowerUnavailable as exc:
            self.failure = exc
            return
        self.thread = threading.Thread(target=self._poll, name="edgebench-power", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.failure is None:
            try:
                self._sample()
                self.window = self._average()
            except PowerUnavailable as exc:
                self.failure = exc

    def report(self, iterations: int) -> dict[str, Any]:
        """The reply's ``energy`` (and ``energy_note`` where it is 0), or its ``energy_note`` alone."""
        self.source.close()
        if self.failure is not None:
            return {"energy_note": str(self.failure)}
        if self.idle is None or self.window is None:
            return {"energy_note": "the power source was not sampled around the timed loop"}
        return energy(self.source.name, self.idle, self.window, iterations)

    def _average(self) -> Reading:
        """Counters: the energy over the span; instantaneous watts: their time-weighted (trapezoid) mean."""
        (t0, v0), (t1, v1) = self.points[0], self.points[-1]
        span = t1 - t0
        if self.source.counter:
            watts = (v1 - v0) / span if span > 0 else 0.0
        elif span > 0:
            watts = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(self.points, self.points[1:])) / span
        else:
            watts = v0
        return Reading(watts, span, len(self.points))


def open_meter(rules: dict[str, Any] | None) -> tuple[Meter | None, str | None]:
    """A meter for the profile's ``power`` rules, or None and why not (None, None when none are declared)."""
    if not rules:
        return None, None
    try:
        source = open_source(rules)
    except PowerUnavailable as exc:
        return None, str(exc)
    return Meter(source, rules.get("interval_s")), None


def energy(source: str, idle: Reading, window: Reading, iterations: int) -> dict[str, Any]:
    """The reply's ``energy`` (average and idle power, window, samples and (avg − idle) × window / iterations in
    mJ) and, where the window drew no more than idle (below what the sensor resolves), an ``energy_note``
    saying so beside an energy of 0."""
    above = max(window.watts - idle.watts, 0.0)
    reply: dict[str, Any] = {"energy": {
        "source": source, "avg_power_w": round(window.watts, 6), "idle_power_w": round(idle.watts, 6),
        "energy_mj_per_inference": round(above * window.seconds * 1e3 / max(iterations, 1), 6),
        "window_s": round(window.seconds, 6), "samples": window.samples}}
    if above == 0.0:
        reply["energy_note"] = (f"the timed window drew {window.watts:.3f} W, no more than the idle baseline's "
                                f"{idle.watts:.3f} W: below what {source} resolves; measure longer "
                                "(--min-duration-s) or a heavier model")
    return reply
