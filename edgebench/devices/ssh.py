"""Runs the runner on a board over SSH: files pushed once (content-addressed, verified by sha256, renamed
into place only when whole), the runner's tree pushed once per version, the job run with a timeout,
outputs fetched, the job folder removed. A dropped connection reconnects with back-off and re-runs the
job; only the final attempt's reply is returned, so a result is never recorded twice."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import selectors
import shlex
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import paramiko

from edgebench.config import DeviceProfile
from edgebench.devices.base import Transport, parse_reply
from edgebench.devices.lock import device_lock
from edgebench.devices.stop import STOP, Stopped
from edgebench.devices.ssh_connect import Session, Unreachable, open_session
from edgebench.devices.ssh_remote import FINALIZE, PREPARE, STALE_JOB_S, runner_tree
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.files import atomic_write
from edgebench.runner.job import RunnerJob
from edgebench.data.source import sha256_file

log = logging.getLogger("edgebench.ssh")


class Dropped(Exception):
    """The connection went away mid-job; the job is re-run on a new one."""


@dataclass
class TransferStats:
    """What the transport did, for tests and benchmarks: uploads, cache hits, reconnects."""

    files_uploaded: int = 0
    bytes_uploaded: int = 0
    cache_hits: int = 0
    runner_pushes: int = 0
    connects: int = 0
    retries: int = 0


class SSHTransport(Transport):
    def __init__(self, profile: DeviceProfile, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(profile)
        self.python = profile.python or "python3"
        self.stats = TransferStats()
        self._sleep = sleep
        self._session: Session | None = None
        self._sftp_client: paramiko.SFTPClient | None = None  # one per connection: each new SSH session costs

    @property
    def label(self) -> str:
        where = self._session.target.label if self._session else self.host
        return f"{self.profile.name} ({where}, python {self.python})"

    def close(self) -> None:
        self._sftp_client = None
        if self._session is not None:
            self._session.close()
            self._session = None

    def run_job(self, job: RunnerJob, files: dict[str, Path], out_dir: Path, timeout_s: float) -> dict[str, Any]:
        attempts: list[str] = []  # each attempt gets its own job folder; earlier ones are removed first, so a
        # runner orphaned by a drop can never write into the folder whose outputs are fetched
        with device_lock(self.profile):  # one measurement at a time on this board, across processes
            return self._retrying(lambda: self._run_once(job, files, out_dir, timeout_s, attempts))

    def run_script(self, script: str, args: list[str], timeout_s: float) -> tuple[str, str, int | None]:
        def once() -> tuple[str, str, int | None]:
            state = self._prepare([], None)
            runner = f"{state['workdir']}/runner/{runner_tree()[0]}/{script}"
            return self._exec(self._python_cmd(runner, args, timeout_s), timeout_s + 30)
        return self._retrying(once)

    def _retrying(self, attempt: Callable[[], Any]) -> Any:
        tries = self.profile.connection.retries + 1
        for n in range(tries):
            try:
                return attempt()
            except (Dropped, Unreachable) as exc:
                self.close()
                if n == 0 and isinstance(exc, Unreachable) and self.stats.connects == 0:
                    raise  # never connected: a config or network problem, not a drop
                if n == tries - 1:
                    raise EdgebenchError(f"the connection to {self.label} failed {tries} times during the job "
                                         f"(last: {exc}); nothing was recorded: check the device's network and "
                                         "power, then rerun", ExitStatus.DEVICE) from None
                delay = min(2.0 ** n, 30.0)
                log.warning("connection to %s lost (%s); retrying in %.0f s", self.profile.name, exc, delay)
                self.stats.retries += 1
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _client(self) -> paramiko.SSHClient:
        if self._session is None or not self._session.active():
            self.close()
            self._session = open_session(self.profile.connection, self.profile.name)
            self.stats.connects += 1
        return self._session.client

    def _run_once(self, job: RunnerJob, files: dict[str, Path], out_dir: Path, timeout_s: float,
                  attempts: list[str]) -> dict[str, Any]:
        job_id = uuid.uuid4().hex[:12]
        blobs: dict[str, tuple[str, str, Path]] = {}
        named: dict[str, str] = {}  # one name per content: two files alike (ab's A/A inputs) are one blob
        for key, path in files.items():
            digest = sha256_file(Path(path))
            blobs[key] = (digest, named.setdefault(digest, Path(path).name), Path(path))
        state = self._prepare(list(blobs.values()), job_id, stale=attempts)
        attempts.append(job_id)
        wd = state["workdir"]
        remote = {key: f"{wd}/blobs/{digest}/{name}" for key, (digest, name, _) in blobs.items()}
        job_dir = f"{wd}/jobs/{job_id}"
        try:
            job = job.placed(remote, f"{job_dir}/outputs.npz")
            with self._sftp_errors("writing job.json"):
                sftp = self._sftp()
                sftp.putfo(io.BytesIO(json.dumps(job.to_dict(), indent=1).encode()), f"{job_dir}/job.json")
            runner = f"{wd}/runner/{runner_tree()[0]}/edgebench_runner.py"
            started = time.monotonic()
            out, err, rc = self._exec(self._python_cmd(runner, [f"{job_dir}/job.json"], timeout_s,
                                                       pid_file=f"{job_dir}/pid"), timeout_s + 30)
            elapsed = time.monotonic() - started
            if rc == 124 and elapsed >= self._limit_s(timeout_s) - 1:  # `timeout` stopped it: when, which limit
                raise self._timed_out(elapsed, timeout_s)
            reply = parse_reply(out, err, rc, self.label)
            if "outputs" in reply:
                self._fetch(f"{job_dir}/outputs.npz", out_dir / "outputs.npz")
            return reply
        except (Dropped, Unreachable):
            raise  # the next attempt removes this job folder first
        except (Stopped, KeyboardInterrupt):  # edgebench is stopping: the runner on the board goes too
            with contextlib.suppress(Dropped, EdgebenchError):
                self._exec(f"kill -TERM $(cat {shlex.quote(job_dir)}/pid 2>/dev/null) 2>/dev/null; true", 15,
                           stoppable=False)
            raise
        finally:
            if self.profile.cleanup == "job" and self._session is not None and self._session.active():
                with contextlib.suppress(Dropped):
                    self._remove_job_dir(job_dir)

    def _prepare(self, blobs: list[tuple[str, str, Path]], job_id: str | None,
                 stale: list[str] | None = None) -> dict[str, Any]:
        """One round trip: resolve the workdir, check cached blobs and runner, reset the job folder; then push
        what is missing."""
        tree_hash, tree = runner_tree()
        args = {"workdir": self.profile.workdir, "blobs": [[d, n] for d, n, _ in blobs], "runner": tree_hash,
                "job": job_id, "stale": stale or [], "stale_job_s": STALE_JOB_S}
        state = self._python_json(PREPARE, args)
        wd = state["workdir"]
        missing = set(state["missing"])
        self.stats.cache_hits += len({d for d, _, _ in blobs} - missing)
        finals: list[list[str]] = []
        runner_part = None
        with self._sftp_errors("uploading"):
            sftp = self._sftp()
            for digest, name, local in blobs:
                if digest not in missing:
                    continue
                missing.discard(digest)
                part = f"{wd}/blobs/{digest}/.{name}.part-{uuid.uuid4().hex[:8]}"
                size = sftp.put(str(local), part).st_size or 0
                finals.append([part, f"{wd}/blobs/{digest}/{name}", digest])
                self.stats.files_uploaded += 1
                self.stats.bytes_uploaded += size
            if not state["runner"]:
                part = f"{wd}/runner/.{tree_hash}.tar.part-{uuid.uuid4().hex[:8]}"
                sftp.putfo(io.BytesIO(tree), part)
                runner_part = [part, hashlib.sha256(tree).hexdigest(), f"{wd}/runner/{tree_hash}"]
                self.stats.runner_pushes += 1
                self.stats.bytes_uploaded += len(tree)
        if finals or runner_part:
            bad = self._python_json(FINALIZE, {"files": finals, "runner": runner_part})["bad"]
            if bad:
                raise Dropped(f"upload verification failed for {', '.join(bad)}")
        return state

    def _limit_s(self, timeout_s: float) -> int:
        """The time limit a remote command runs under: the job's, or the profile's command_timeout_s if lower."""
        return max(1, math.ceil(min(timeout_s, self.profile.connection.command_timeout_s)))

    def _timed_out(self, elapsed_s: float, timeout_s: float) -> EdgebenchError:
        limit = self._limit_s(timeout_s)
        cause = ("the profile's connection.command_timeout_s" if self.profile.connection.command_timeout_s < timeout_s
                 else "the job's timeout (the sweep's cell_timeout_s, else twice --max-duration-s + 300 s)")
        fix = ("raise connection.command_timeout_s in the profile" if limit < timeout_s else
               "lower --max-duration-s or raise the job timeout")
        return EdgebenchError(f"the runner on {self.label} was stopped after {elapsed_s:.0f} s by its {limit} s time "
                              f"limit ({cause}): {fix}", ExitStatus.RUNNER_FAILED)

    def _python_cmd(self, script: str, args: list[str], timeout_s: float, pid_file: str | None = None) -> str:
        """The shell command that runs ``script`` under ``timeout``; with ``pid_file``, its pid is written there
        first (the shell execs, so it is the pid of what runs) so that it can be stopped from another command."""
        env = {**self.profile.env, "PYTHONDONTWRITEBYTECODE": "1"}
        run = " ".join(["env", *(shlex.quote(f"{k}={v}") for k, v in env.items()), shlex.quote(self.python),
                        shlex.quote(script), *map(shlex.quote, args)])
        limit = self._limit_s(timeout_s)
        pid = f"echo $$ > {shlex.quote(pid_file)}; " if pid_file else ""
        return (f"{pid}if command -v timeout >/dev/null 2>&1; then exec timeout -k 10 {limit} {run}; "
                f"else exec {run}; fi")

    def _python_json(self, code: str, args: dict[str, Any]) -> dict[str, Any]:
        cmd = f"{shlex.quote(self.python)} -c {shlex.quote(code)} {shlex.quote(json.dumps(args))}"
        out, err, rc = self._exec(cmd, self.profile.connection.command_timeout_s)
        if rc == 127:
            raise EdgebenchError(f"python {self.python!r} not found on {self.label}: fix 'python' in the profile "
                                 "(e.g. /home/pi/venv/bin/python)", ExitStatus.CONFIG)
        if rc != 0:
            last = (err.strip().splitlines() or ["no output"])[-1][:300]
            raise EdgebenchError(f"cannot prepare the work dir {self.profile.workdir!r} on {self.label}: {last}: "
                                 "check 'workdir' in the profile and the free disk space", ExitStatus.DEVICE)
        return json.loads(out.strip().splitlines()[-1])

    def _exec(self, command: str, timeout_s: float, stoppable: bool = True) -> tuple[str, str, int | None]:
        """Run one command; stdout and stderr are drained together so neither can fill up and stall it. When
        edgebench stops (``stoppable``), the wait ends with :class:`Stopped`."""
        try:
            transport = self._client().get_transport()
            if transport is None:
                raise Dropped("cannot start a command: the connection is closed")
            chan = transport.open_session(timeout=self.profile.connection.connect_timeout_s)
            chan.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            raise Dropped(f"cannot start a command: {exc or type(exc).__name__}") from None
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(chan, selectors.EVENT_READ)
            while True:
                while chan.recv_ready():
                    out += chan.recv(1 << 16)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(1 << 16)
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if chan.closed or not chan.get_transport().is_active():
                    raise Dropped("the connection closed while a command ran")
                if stoppable and STOP.is_set():
                    chan.close()
                    raise Stopped(self.profile.name)
                if time.monotonic() > deadline:
                    chan.close()
                    raise EdgebenchError(f"a command on {self.label} got no answer within {timeout_s:.0f} s: check "
                                         "the device", ExitStatus.DEVICE)
                sel.select(0.5)
        if not chan.eof_received:  # closed without the remote end finishing: the connection went away
            raise Dropped("the connection closed while a command ran")
        rc: int | None = chan.recv_exit_status()
        chan.close()
        if rc == -1:  # paramiko's "no exit status": the remote end sent only an exit-signal, which it ignores
            rc = None
        elif rc is not None and rc > 128:  # the remote shell's way of saying "killed by signal rc - 128"
            rc = -(rc - 128)
        return out.decode(errors="replace"), err.decode(errors="replace"), rc

    def _remove_job_dir(self, job_dir: str) -> None:
        """Over the open SFTP channel (no new session); anything unexpected inside falls back to rm -rf."""
        try:
            sftp = self._sftp()
            for name in sftp.listdir(job_dir):
                sftp.remove(f"{job_dir}/{name}")
            sftp.rmdir(job_dir)
        except (OSError, paramiko.SSHException):
            self._exec(f"rm -rf {shlex.quote(job_dir)}", 60, stoppable=False)

    def _sftp(self) -> paramiko.SFTPClient:
        client = self._client()
        channel = self._sftp_client.get_channel() if self._sftp_client is not None else None
        if self._sftp_client is not None and channel is not None and channel.active:
            return self._sftp_client
        try:
            self._sftp_client = client.open_sftp()
            return self._sftp_client
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise Dropped(f"cannot open SFTP: {exc or type(exc).__name__}") from None

    @contextlib.contextmanager
    def _sftp_errors(self, what: str) -> Iterator[None]:
        """A transfer error is a drop when the connection is gone, else the device's refusal (disk, rights)."""
        try:
            yield
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if self._session is None or not self._session.active():
                raise Dropped(f"{what} failed: {exc or type(exc).__name__}") from None
            raise EdgebenchError(f"{what} on {self.label} failed ({exc}): check 'workdir' in the profile, its "
                                 "rights and the free disk space", ExitStatus.DEVICE) from None

    def _fetch(self, remote: str, local: Path) -> None:
        """Download to a temporary name and rename when whole, so out_dir never holds a partial file."""
        def download(part: Path) -> None:
            with self._sftp_errors(f"fetching {remote}"):
                sftp = self._sftp()
                expected = sftp.stat(remote).st_size
                sftp.get(remote, str(part))
            if part.stat().st_size != expected:
                raise Dropped(f"{remote} arrived truncated")

        atomic_write(local, download)
