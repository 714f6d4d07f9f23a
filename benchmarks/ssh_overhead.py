#!/usr/bin/env python3
"""What does carrying a job over SSH cost, per job, on top of running it locally?

Starts a real OpenSSH server on 127.0.0.1 (the test fixture's board; the "device" python is this one),
then times the same small digits job through LocalTransport and SSHTransport, alternating them so drift
hits both alike:

* cold:   a fresh connection and an empty device work dir (runner tree, model and inputs pushed);
* cached: a fresh connection per job (what `edgebench bench` does), everything already on the device;
* reused: one connection for many jobs (what a sweep does), everything on the device.

The overhead is the median wall time over SSH minus the median local wall time. Loopback has no network
latency: on a real board add the round trips (about 6 per cached job, plus the SSH handshake) × RTT.

    .venv/bin/python benchmarks/ssh_overhead.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgebench.config import TimingSpec, load_profile  # noqa: E402
from edgebench.devices.local import LocalTransport  # noqa: E402
from edgebench.devices.ssh import SSHTransport  # noqa: E402
from edgebench.runner.job import RunnerJob  # noqa: E402
from edgebench.runner.timing import TimingRules  # noqa: E402
from tests.sshd import SshdBoard  # noqa: E402

DIGITS = ROOT / "edgebench" / "bundled" / "demo"
TIMING = TimingSpec(warmup_iterations=2, warmup_s=0.0, min_iterations=20, min_duration_s=0.1, max_duration_s=5)
JOB = RunnerJob(backend="onnxruntime", device="CPU", threads=1,
                timing=TimingRules(**TIMING.model_dump(exclude={"cv_threshold"})), batch=1, rotation=64,
                capture_outputs=True)


def timed(transport_factory, files, work: Path) -> tuple[float, object]:
    out = Path(tempfile.mkdtemp(dir=work))
    start = time.perf_counter()
    with transport_factory() as t:
        t.run_job(JOB, files, out, 120)
    return time.perf_counter() - start, t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgebench-sshbench-"))
    board = SshdBoard(work / "board").start()
    try:
        inputs = work / "inputs.npz"
        with np.load(DIGITS / "eval.npz") as data:
            np.savez(inputs, input=data["inputs"])
        files = {"artifact": DIGITS / "digits_cnn.onnx", "inputs_npz": inputs}
        ssh_profile = load_profile(str(board.profile()))
        local_profile = ssh_profile.model_copy(update={"connection": ssh_profile.connection.model_copy(
            update={"type": "local"})})
        local, cold, cached, reused = [], [], [], []
        pushed = 0
        for _ in range(args.rounds):
            local.append(timed(lambda: LocalTransport(local_profile), files, work)[0])
            shutil.rmtree(board.workdir, ignore_errors=True)
            seconds, t = timed(lambda: SSHTransport(ssh_profile), files, work)
            cold.append(seconds)
            pushed = t.stats.bytes_uploaded
            local.append(timed(lambda: LocalTransport(local_profile), files, work)[0])
            cached.append(timed(lambda: SSHTransport(ssh_profile), files, work)[0])
        with SSHTransport(ssh_profile) as shared:
            for _ in range(args.rounds):
                local.append(timed(lambda: LocalTransport(local_profile), files, work)[0])
                start = time.perf_counter()
                shared.run_job(JOB, files, Path(tempfile.mkdtemp(dir=work)), 120)
                reused.append(time.perf_counter() - start)
        base = statistics.median(local)
        print(f"local job wall time (median of {len(local)}): {base * 1000:.0f} ms")
        for name, runs in (("cold", cold), ("cached", cached), ("reused", reused)):
            med = statistics.median(runs)
            print(f"ssh {name:6s}: {med * 1000:6.0f} ms  overhead {(med - base) * 1000:+6.0f} ms "
                  f"(min {min(runs) * 1000:.0f}, max {max(runs) * 1000:.0f}, n={len(runs)})")
        print(f"cold push: {pushed} bytes (runner tree + model + inputs); cached and reused: 0 bytes")
    finally:
        board.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
