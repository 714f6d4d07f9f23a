"""Runs the runner as a subprocess of this machine: its memory figures are its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgebench.devices.base import Transport, parse_reply
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.paths import runner_dir
from edgebench.runner.job import RunnerJob


class LocalTransport(Transport):
    def run_job(self, job: RunnerJob, files: dict[str, Path], out_dir: Path, timeout_s: float) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=True)
        job = job.placed({key: str(Path(path).resolve()) for key, path in files.items()},
                         str((out_dir / "outputs.npz").resolve()))
        job_path = out_dir / "job.json"
        job_path.write_text(json.dumps(job.to_dict(), indent=1))
        proc = self._run(str(runner_dir() / "edgebench_runner.py"), [str(job_path)], timeout_s)
        return parse_reply(proc.stdout, proc.stderr, proc.returncode, self.profile.name)

    def run_script(self, script: str, args: list[str], timeout_s: float) -> tuple[str, str, int]:
        proc = self._run(str(runner_dir() / script), args, timeout_s)
        return proc.stdout, proc.stderr, proc.returncode

    def _run(self, script: str, args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        python = os.path.expanduser(self.profile.python) if self.profile.python else sys.executable
        env = {**os.environ, **self.profile.env, "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            return subprocess.run([python, script, *args], capture_output=True, text=True, timeout=timeout_s,
                                  env=env)
        except FileNotFoundError:
            raise EdgebenchError(f"python for device {self.profile.name!r} not found: {python}; fix "
                                 "'python' in its profile", ExitStatus.CONFIG) from None
        except PermissionError:
            raise EdgebenchError(f"python for device {self.profile.name!r} is not executable: {python}; fix "
                                 "'python' in its profile", ExitStatus.CONFIG) from None
        except subprocess.TimeoutExpired:
            raise EdgebenchError(f"the runner on {self.profile.name} ran past {timeout_s:.0f} s and was stopped: "
                                 "lower --max-duration-s or raise the job timeout", ExitStatus.RUNNER_FAILED) from None
