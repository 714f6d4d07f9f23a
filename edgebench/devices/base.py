"""The Transport interface and the runner-reply handling every transport shares."""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from edgebench.config import DeviceProfile
from edgebench.devices.reply import read_reply
from edgebench.runner.job import RunnerJob


class Transport(ABC):
    """Runs one runner job on a device: places its input files, runs it, brings its outputs back."""

    def __init__(self, profile: DeviceProfile) -> None:
        self.profile = profile

    @property
    def host(self) -> str:
        return self.profile.connection.host or "localhost"

    @abstractmethod
    def run_job(self, job: RunnerJob, files: dict[str, Path], out_dir: Path, timeout_s: float) -> dict[str, Any]:
        """Run ``job``; ``files`` maps its file fields (artifact, inputs_npz …) to local files the runner
        reads. Outputs the runner writes (``outputs_npz``) arrive in ``out_dir``. Returns the runner's JSON
        reply (status ok)."""

    @abstractmethod
    def run_script(self, script: str, args: list[str], timeout_s: float) -> tuple[str, str, int | None]:
        """Run another stand-alone script of the runner (e.g. the probe) with the device's python:
        (stdout, stderr, exit status)."""

    def close(self) -> None:
        """Release connections; a transport may be reused for several jobs before this."""

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "no exit status: killed or the connection lost"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def parse_reply(stdout: str, stderr: str, returncode: int | None, device: str) -> dict[str, Any]:
    """The runner's one JSON object, checked (devices.reply), or an EdgebenchError saying why there is none."""
    return read_reply(stdout, stderr, returncode, device, describe_exit(returncode))
