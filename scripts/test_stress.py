"""Run the whole test suite N times while a busy loop holds one CPU core, and report every test that failed.

CI runs on machines that other jobs load; a test that a busy machine can fail blocks every submission at
random. `make test-stress` (not part of CI) is the check: the suite must pass every time under the hog.

    .venv/bin/python scripts/test_stress.py [--runs 3] [--hog steady|bursty] [--core 0] [-- PYTEST ARGS]

The hog is a child process pinned to one core (steady: always busy; bursty: busy 50 ms of every 150 ms),
killed when the runs end, and bounded by --max-hog-s whatever happens. Exit status: 0 when every run
passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOGS = {
    "steady": "while True: pass",
    "bursty": ("import time\nwhile True:\n    end = time.perf_counter() + 0.05\n"
               "    while time.perf_counter() < end: pass\n    time.sleep(0.1)"),
}


def start_hog(kind: str, core: int, max_s: float) -> subprocess.Popen:
    # `timeout` bounds the hog even if this script is killed before it can clean up
    proc = subprocess.Popen(["timeout", str(int(max_s)), sys.executable, "-c", HOGS[kind]], start_new_session=True)
    if hasattr(os, "sched_setaffinity"):
        time.sleep(0.1)  # let timeout exec its child, then pin the whole group to one core
        for pid in subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split():
            os.sched_setaffinity(int(pid), {core})
    return proc


def failures(junit: Path) -> list[str]:
    """Test ids that failed or errored in one run's JUnit XML."""
    if not junit.exists():
        return ["<no JUnit report: pytest did not finish>"]
    failed = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hog", choices=sorted(HOGS), default="steady")
    parser.add_argument("--core", type=int, default=0, help="the core the hog holds")
    parser.add_argument("--max-hog-s", type=float, default=4 * 3600, help="the hog ends after this long anyway")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()

    failed_in: dict[str, list[int]] = defaultdict(list)
    durations, statuses = [], []
    hog = start_hog(args.hog, args.core, args.max_hog_s)
    try:
        with tempfile.TemporaryDirectory(prefix="edgebench-stress-") as tmp:
            for k in range(1, args.runs + 1):
                junit = Path(tmp) / f"run-{k}.xml"
                start = time.monotonic()
                proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                       f"--junitxml={junit}", *args.pytest_args], cwd=ROOT)
                durations.append(time.monotonic() - start)
                statuses.append(proc.returncode)
                for test in failures(junit) if proc.returncode else []:
                    failed_in[test].append(k)
                print(f"stress run {k}/{args.runs}: exit {proc.returncode} in {durations[-1]:.0f} s "
                      f"(hog: {args.hog} on core {args.core})", flush=True)
    finally:
        os.killpg(hog.pid, signal.SIGKILL)
        hog.wait()

    print(f"\n{args.runs} run(s) under a {args.hog} hog on core {args.core}: "
          f"{sum(s == 0 for s in statuses)} passed, {sum(s != 0 for s in statuses)} failed; "
          f"durations {', '.join(f'{d:.0f} s' for d in durations)}")
    for test, runs in sorted(failed_in.items()):
        print(f"  FAILED in run(s) {', '.join(map(str, runs))}: {test}")
    if not failed_in and any(statuses):
        print("  a run failed without a failing test in its report: see its output above")
    return 0 if not any(statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
