"""A real OpenSSH server on 127.0.0.1 as a test "board": temporary host key, a fresh client key in
authorized_keys, a known_hosts file with the host key, and a profile YAML pointing at it. The board's
python is this test run's interpreter, so the runtimes are there.

Use ``sshd_factory()`` for as many boards as a test needs (each its own port and work dir), or the
module-wide ``ssh_board``. Import the fixtures into a test module: ``from tests.sshd import ssh_board``.

``gate_factory()`` makes a board python (for SSH or local profiles) that holds each runner job until the
test lets it go, so a test waits for "job k is in flight" (a file appears) instead of guessing from time.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


class SshdBoard:
    """One sshd process and everything a profile needs to reach it."""

    def __init__(self, root: Path, name: str = "board", port: int | None = None) -> None:
        self.root, self.name = root, name
        root.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.host_pub = _keygen(root / "host_key")
        self.client_key = root / "client_key"
        (root / "authorized_keys").write_text(_keygen(self.client_key) + "\n")
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {' '.join(self.host_pub.split()[:2])}\n")
        self.workdir = root / "device-workdir"
        self.config = root / "sshd_config"
        self.config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {root / 'host_key'}",
            f"PidFile {root / 'sshd.pid'}", f"AuthorizedKeysFile {root / 'authorized_keys'}",
            "UsePAM no", "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "AllowTcpForwarding yes",
            "LogLevel ERROR", "PrintMotd no", "PrintLastLog no", "Subsystem sftp internal-sftp", ""]))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "SshdBoard":
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.root / "sshd.log", "ab"))
        deadline = time.monotonic() + 60  # generous: a busy machine may start it slowly
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.root / 'sshd.log').read_text()}")
            time.sleep(0.05)
        raise RuntimeError("sshd did not start listening within 60 s")

    def kill(self) -> None:
        """Kill this board's sshd and every sshd session it forked (a crash or reboot of the service)."""
        if self.proc is None:
            return
        pids = [self.proc.pid, *_descendants(self.proc.pid, only="sshd")]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(60)
        self.proc = None

    def profile(self, path: Path | None = None, **overrides: Any) -> Path:
        data: dict[str, Any] = {
            "name": self.name, "description": "sshd test board on 127.0.0.1",
            "connection": {"type": "ssh", "host": "127.0.0.1", "port": self.port, "user": getpass.getuser(),
                           "key_file": str(self.client_key), "known_hosts": str(self.known_hosts),
                           "connect_timeout_s": 5, "retries": 2},
            "python": sys.executable, "workdir": str(self.workdir), "runtimes": ["onnxruntime"], "threads": 1,
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        path = path or self.root / f"{self.name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for as long as the block runs: bound, never listening,
    so no other process (another test's sshd) can take it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


class Gate:
    """A board's python that holds each runner job at a gate the test controls; other scripts (the work-dir
    set-up, the probe) pass straight through to the real interpreter.

    Runner jobs are numbered 1, 2, … in the order they start. Job k first writes ``started.<k>`` (holding
    its pid), then waits until the test calls ``go(k)`` or ``open()``, and only then execs the real python.
    ``drop(k)`` makes a held job exit without running. With ``meet`` (another gate's ``started(1)``: a
    rendezvous) job 1 waits for that file instead and later jobs run at once. A job never let go exits
    with status 3 after ``hold_s`` and an error naming the gate, so a test whose event never comes fails
    instead of hanging. Everything is a file in ``root``: the board reaches it over SSH like any other
    path on this machine.
    """

    def __init__(self, root: Path, hold_s: float = 120.0, meet: Path | None = None, why: str = "") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.python = root / "python"
        g = shlex.quote(str(root))
        real = shlex.quote(sys.executable)
        let_go = f'[ $k -gt 1 ] || [ -e {shlex.quote(str(meet))} ]' if meet else f'[ -e {g}/go.$k ] || [ -e {g}/open ]'
        before = shlex.quote(f"gate {root}: runner job ")
        after = shlex.quote(f" was never let go within {hold_s:g} s{why}")
        self.python.write_text(f"""#!/bin/sh
# tests/sshd.py Gate: holds each runner job until the test lets it go; anything else runs at once
case "$1" in */edgebench_runner.py) ;; *) exec {real} "$@" ;; esac
k=1
while ! mkdir {g}/job.$k 2>/dev/null; do k=$((k+1)); done
echo $$ > {g}/.started.$k && mv {g}/.started.$k {g}/started.$k
n=0
while :; do
  if [ -e {g}/drop.$k ] || [ -e {g}/drop ]; then exit 3; fi
  if {let_go}; then exec {real} "$@"; fi
  n=$((n+1))
  if [ $n -gt {int(hold_s * 20)} ]; then echo {before}"$k"{after} >&2; exit 3; fi
  sleep 0.05
done
""")
        self.python.chmod(0o755)

    def started(self, k: int) -> Path:
        return self.root / f"started.{k}"

    def wait_started(self, k: int, timeout_s: float = 120.0, alive: Callable[[], object] = lambda: None) -> None:
        """Block until job k is in flight (held at the gate). ``alive`` may raise to stop waiting early."""
        deadline = time.monotonic() + timeout_s
        while not self.started(k).exists():
            alive()
            assert time.monotonic() < deadline, f"runner job {k} did not start within {timeout_s:g} s"
            time.sleep(0.02)

    def go(self, k: int) -> None:
        (self.root / f"go.{k}").touch()

    def open(self) -> None:
        (self.root / "open").touch()

    def drop(self, k: int | None = None) -> None:
        (self.root / ("drop" if k is None else f"drop.{k}")).touch()


def _descendants(pid: int, only: str | None = None) -> list[int]:
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        child = int(stat.parent.name)
        children.setdefault(ppid, []).append(child)
        names[child] = name
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            if only is None or names.get(child) == only:
                found.append(child)
    return found


def _need_sshd() -> None:
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.fail("OpenSSH server missing: run 'make system-deps' (scripts/system-deps.sh installs it)")


@pytest.fixture
def sshd_factory(tmp_path: Path) -> Iterator[Callable[..., SshdBoard]]:
    _need_sshd()
    boards: list[SshdBoard] = []

    def make(name: str = "board") -> SshdBoard:
        boards.append(SshdBoard(tmp_path / f"sshd-{name}-{len(boards)}", name).start())
        return boards[-1]

    yield make
    for board in boards:
        board.kill()


@pytest.fixture
def gate_factory(tmp_path: Path) -> Iterator[Callable[..., Gate]]:
    """``gate_factory(name, **Gate options)``; at the end every job still held exits without running."""
    gates: list[Gate] = []

    def make(name: str = "gate", **options: Any) -> Gate:
        gates.append(Gate(tmp_path / f"gate-{name}", **options))
        return gates[-1]

    yield make
    for gate in gates:
        gate.drop()


@pytest.fixture(scope="module")
def ssh_board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdBoard]:
    _need_sshd()
    board = SshdBoard(tmp_path_factory.mktemp("sshd"), "board").start()
    yield board
    board.kill()
