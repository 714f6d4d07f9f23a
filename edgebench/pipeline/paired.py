"""Two models measured in one runner process, in alternating blocks (``RunnerJob.partner``): the round of a
sequential A/B. Whatever else runs on the device in those seconds hits both alike, so the ratio of their
latencies holds still on a machine whose absolute latencies do not (measured here: round p50s of one model
spread 35–67 µs between processes under other jobs' load; the paired ratio of a model with itself ±1.5%)."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from edgebench.devices import make_transport
from edgebench.files import temp_prefix
from edgebench.pipeline.bench import PlannedJob
from edgebench.result import Result
from edgebench.runner.job import PARTNER


def run_paired(a: PlannedJob, b: PlannedJob) -> tuple[Result, Result]:
    """A and B timed together on A's device; their two results (memory is the pair's process, not either
    model's, and no outputs are captured: take those from a run of each alone)."""
    job = dataclasses.replace(a.job, capture_outputs=False,
                              partner=dataclasses.replace(b.job, capture_outputs=False, thermal={}))
    work = Path(tempfile.mkdtemp(prefix=temp_prefix("pair")))
    try:
        files = {**a.files(work / "a_inputs.npz"),
                 **{PARTNER + k: v for k, v in b.files(work / "b_inputs.npz").items()}}
        with make_transport(a.profile) as transport:
            reply = transport.run_job(job, files, work / "out", a.timeout_s + b.timeout_s)
        return a.result(reply, None), b.result(reply["partner"], None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
