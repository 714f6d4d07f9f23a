"""What every backend provides; the runner times ``infer`` and nothing else."""

from __future__ import annotations

from typing import Any


class RuntimeMissing(Exception):
    """The backend's runtime does not import on this device; the message names the pip package."""


class BaseBackend:
    runtime_name = "unknown"
    pip_package = "unknown"

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.threads = int(job.get("threads") or 0)
        self.device = str(job.get("device") or "CPU")
        self.backend_options: dict[str, Any] = dict(job.get("backend_options") or {})
        self.device_name = str(job.get("device_name") or "this device")  # the profile's name, for messages

    def missing(self, exc: ImportError) -> "RuntimeMissing":
        return RuntimeMissing(f"{self.runtime_name} is not installed on {self.device_name} ({exc}): "
                              f"pip install {self.pip_package}")

    def check_options(self) -> None:
        """Refuse unknown or bad backend options before anything loads (raise ValueError)."""

    def runtime_version(self) -> str:
        raise NotImplementedError

    def load(self, artifact: str) -> None:
        raise NotImplementedError

    def prepare(self, feed: dict[str, Any]) -> Any:
        """Turn a {name: array} feed into what ``infer`` takes, outside the timed region."""
        return feed

    def infer(self, prepared: Any) -> Any:
        raise NotImplementedError

    def outputs(self, prepared: Any) -> dict[str, Any]:
        raise NotImplementedError

    def io(self) -> dict[str, Any]:
        return {}

    def options(self) -> dict[str, Any]:
        return {"threads": self.threads, "device": self.device, **self.backend_options}

    def extra_timings(self) -> dict[str, Any]:
        return {}
