"""`edgebench devices check`: run the runner package's edgebench_probe.py on a device through its own transport
(local or SSH, so the check exercises exactly the path a benchmark takes) and read its report."""

from __future__ import annotations

import json
from typing import Any

from edgebench.config import DeviceProfile
from edgebench.devices import make_transport
from edgebench.errors import EdgebenchError, ExitStatus

PROBE_TIMEOUT_S = 300.0


def probe(profile: DeviceProfile) -> dict[str, Any]:
    """The device's report plus ``missing``: the profile's runtimes that do not import there."""
    with make_transport(profile) as transport:
        stdout, stderr, rc = transport.run_script("edgebench_probe.py", [profile.workdir], PROBE_TIMEOUT_S)
        where = getattr(transport, "label", profile.name)
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (stderr.strip().splitlines() or [f"exit status {rc}"])[-1][:300]
        raise EdgebenchError(f"the probe on {where} gave no report ({last}): check the profile's 'python' "
                             "(Python ≥ 3.8 needed)", ExitStatus.RUNNER_FAILED) from None
    report["reachable"] = True
    report["device"] = where
    for name in profile.runtimes:  # a format's runtime the device-side probe (stdlib only) has no check for
        report["runtimes"].setdefault(name, {"ok": False, "error": "the device probe has no check for this runtime",
                                             "pip": name})
    report["missing"] = [name for name in profile.runtimes if not report["runtimes"][name].get("ok")]
    return report


def missing_lines(profile: DeviceProfile, report: dict[str, Any]) -> list[str]:
    """One line per runtime the profile lists but the device lacks, naming the pip command to fix it."""
    python = report.get("executable") or profile.python or "python3"
    lines = []
    for name in ["numpy", *report["missing"]]:
        info = report["runtimes"].get(name, {})
        if not info.get("ok"):
            lines.append(f"device {profile.name}: {name} does not import ({info.get('error')}): run "
                         f"'{python} -m pip install {info.get('pip', name)}' on the device")
    return lines
