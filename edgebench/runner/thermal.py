"""Thermal rules applied on the device right before a job: wait (bounded) until the sensor reads below
``max_start_c``, then record the temperature and the CPU's thermal-throttle counters before and after.

The clock, the sleep and the sensor reader are parameters, so the waiting logic is tested without heat.
Standard library only (the runner's rule).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable


class SensorUnreadable(Exception):
    """The profile names a sensor this device does not have."""


def read_celsius(path: str) -> float:
    """A sysfs temperature: milli-degrees C as an integer (thermal zones, hwmon), or plain degrees."""
    try:
        text = Path(path).read_text().strip()
        value = float(text)
    except (OSError, ValueError) as exc:
        raise SensorUnreadable(f"thermal sensor {path} cannot be read on this device ({exc}): fix thermal.sensor "
                               "in the profile (see /sys/class/thermal/thermal_zone*/type)") from exc
    return value / 1000.0 if abs(value) >= 200 else value


def throttle_events() -> int | None:
    """Sum of the CPUs' thermal-throttle counters (x86 Linux); None where the kernel has none."""
    counts = []
    for path in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/thermal_throttle/*_throttle_count"):
        try:
            counts.append(int(path.read_text().strip()))
        except (OSError, ValueError):
            continue
    return sum(counts) if counts else None


def cool_down(rules: dict[str, Any], clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep,
              read: Callable[[str], float] = read_celsius) -> dict[str, Any]:
    """Wait until ``rules['sensor']`` reads below ``max_start_c`` or ``cooldown_timeout_s`` passes."""
    state: dict[str, Any] = {"throttle_events_before": throttle_events()}
    sensor = rules.get("sensor")
    if not sensor:
        return state
    limit = rules.get("max_start_c")
    timeout = float(rules.get("cooldown_timeout_s", 180.0))
    poll = float(rules.get("poll_s", 2.0))
    start = clock()
    first = current = read(sensor)
    timed_out = False
    while limit is not None and current >= limit:
        left = timeout - (clock() - start)
        if left <= 0:
            timed_out = True
            break
        sleep(min(poll, left))
        current = read(sensor)
    state.update(sensor=sensor, max_start_c=limit, temperature_c_initial=first, temperature_c_start=current,
                 waited_s=round(clock() - start, 3), cooldown_timed_out=timed_out)
    return state


def finish(state: dict[str, Any], read: Callable[[str], float] = read_celsius) -> dict[str, Any]:
    """The state after the job: end temperature and how many throttle events happened meanwhile."""
    after = dict(state)
    before, now = state.get("throttle_events_before"), throttle_events()
    after["throttle_events"] = now - before if before is not None and now is not None else None
    if state.get("sensor"):
        try:
            after["temperature_c_end"] = read(state["sensor"])
        except SensorUnreadable:
            after["temperature_c_end"] = None
    return after
