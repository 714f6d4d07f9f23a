"""Runs the runner as a subprocess of this machine: its memory figures are its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgebench.devices.base import Transport, parse_reply
from edgebench.devices.lock import device_lock
from edgebench.devices.stop import STOP, Stopped, kill_group
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.paths import runner_dir
from edgebench.runner.job import RunnerJob
from edgebench.runner.lifeline import PARENT_ENV


class LocalTransport(Transport):
    def run_job(self, job: RunnerJob, files: dict[str, Path], out_dir: Path, timeout_s: float) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=True)
        job = job.placed({key: str(Path(path).resolve()) for key, path in files.items()},
                         str((out_dir / "outputs.npz").resolve()))
        job_path = out_dir / "job.json"
        job_path.write_text(json.dumps(job.to_dict(), indent=1))
        with device_lock(self.profile):  # one measurement at a time on this device, across processes
            proc = self._run(str(runner_dir() / "edgebench_runner.py"), [str(job_path)], timeout_s)
        return parse_reply(proc.stdout, proc.stderr, proc.returncode, self.profile.name)

    def run_script(self, script: str, args: list[str], timeout_s: float) -> tuple[str, str, int]:
        proc = self._run(str(runner_dir() / script), args, timeout_s)
        return proc.stdout, proc.stderr, proc.returncode

    def _run(self, script: str, args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
        """Run the script in its own session (a terminal's Ctrl-C reaches edgebench, which decides), killed with
        everything it started when it runs past ``timeout_s``, when edgebench stops, or on any exception here."""
        python = os.path.expanduser(self.profile.python) if self.profile.python else sys.executable
        # PARENT_ENV: the runner exits if this process is gone by the time it starts (runner/lifeline.py)
        env = {**os.environ, **self.profile.env, "PYTHONDONTWRITEBYTECODE": "1", PARENT_ENV: str(os.getpid())}
        try:
            proc = subprocess.Popen([python, script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=env, start_new_session=True)
        except FileNotFoundError:
            raise EdgebenchError(f"python for device {self.profile.name!r} not found: {python}; fix "
                                 "'python' in its profile", ExitStatus.CONFIG) from None
        except PermissionError:
            raise EdgebenchError(f"python for device {self.profile.name!r} is not executable: {python}; fix "
                                 "'python' in its profile", ExitStatus.CONFIG) from None
        started = time.monotonic()
        try:
            while True:
                try:
                    out, err = proc.communicate(timeout=0.2)  # returns as soon as the runner ends
                    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
                except subprocess.TimeoutExpired:
                    pass
                if STOP.is_set():
                    raise Stopped(self.profile.name)
                elapsed = time.monotonic() - started
                if elapsed > timeout_s:
                    raise EdgebenchError(
                        f"the runner on {self.profile.name} ran for {elapsed:.0f} s, past its {timeout_s:.0f} s time "
                        "limit, and was stopped: lower --max-duration-s or raise the job timeout (cell_timeout_s)",
                        ExitStatus.RUNNER_FAILED)
        except BaseException:
            kill_group(proc)
            raise
