"""The host's throttling verdict on a runner reply. The rule is deliberately simple (docs/devices.md):

1. temperature: a reading at or above the profile's ``throttle_c`` — the profile's sensor at start and end
   when it names one, else the hottest thermal zone before and after;
2. the kernel said so: the CPUs' thermal-throttle counters rose during the job (x86 Linux);
3. clocks: under the ``performance`` governor (fixed clocks) the CPU clock after the run fell below
   ``min_freq_ratio`` (default 90 %) of the clock before it. Other governors change clocks on purpose,
   so a drop there proves nothing.
"""

from __future__ import annotations

from typing import Any

from edgebench.config import Thermal


def throttle_reasons(reply: dict[str, Any], rules: Thermal) -> list[str]:
    """Why the result counts as throttled; empty when nothing showed throttling."""
    env = reply.get("environment") or {}
    heat = reply.get("thermal") or {}
    reasons = []
    if heat.get("sensor"):
        readings = [heat.get("temperature_c_start"), heat.get("temperature_c_end")]
    else:
        readings = [*(env.get("temperatures_c") or {}).values(), *(env.get("temperatures_c_after") or {}).values()]
    hottest = max((float(r) for r in readings if r is not None), default=None)
    if rules.throttle_c is not None and hottest is not None and hottest >= rules.throttle_c:
        reasons.append(f"temperature {hottest:.1f} °C reached throttle_c {rules.throttle_c:g} °C")
    events = heat.get("throttle_events")
    if events:
        reasons.append(f"the CPU reported {events} thermal-throttle events during the job")
    before = (env.get("frequency_mhz") or {}).get("scaling_cur_freq")
    after = (env.get("frequency_mhz_after") or {}).get("scaling_cur_freq")
    if env.get("governor") == "performance" and before and after and after < rules.min_freq_ratio * before:
        reasons.append(f"the CPU clock fell from {before:.0f} to {after:.0f} MHz under the performance governor")
    return reasons
