"""Signals a sweep or a bench gets from CI or a user (SIGTERM, Ctrl-C twice) and what a stopped runner leaves:
real edgebench processes, runners held at a gate (tests/sshd.py), a real sshd board, a real store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgebench.errors import ExitStatus
from edgebench.store.db import SqliteStore
from tests.conftest import DIGITS, QUICK_TIMING
from tests.sshd import Gate, gate_factory, sshd_factory  # noqa: F401  (fixtures)
from tests.test_sweep import SIX_CELLS, _gated_cpu, _stored, _wait_for, write_spec


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _ends(pid: int, timeout_s: float = 30.0) -> bool:
    """Whether process ``pid`` ends within ``timeout_s`` (a killed process takes a moment to go)."""
    deadline = time.monotonic() + timeout_s
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _ours(folder: Path) -> list[Path]:
    """edgebench's temporary folders in ``folder`` (a runtime's telemetry may leave its own files there)."""
    return [p for p in folder.iterdir() if p.name.startswith("edgebench-")]


def _held_pid(gate: Gate, k: int) -> int:
    return int(gate.started(k).read_text())


def _start(tmp_path: Path, *argv: str, stdout: Path, stderr: Path | None = None,
           extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m edgebench ARGV`` with its own temp folder (so what it leaves there is seen) and lock folder;
    stderr piped, or into the file ``stderr`` (to read while it runs)."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "EDGEBENCH_LOCK_DIR": str(tmp_path / "locks"),
           **(extra_env or {})}
    with open(stdout, "w") as out, open(stderr or os.devnull, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "edgebench", *argv], stdout=out,
                                stderr=err if stderr else subprocess.PIPE, text=True, env=env,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _sweep(tmp_path: Path, spec: Path, store: Path, printed: Path, stderr: Path | None = None) -> subprocess.Popen[str]:
    return _start(tmp_path, "sweep", str(spec), "--store", str(store), "--cache-dir", str(tmp_path / "cache"),
                  stdout=printed, stderr=stderr)


def _alive(proc: subprocess.Popen[str]):
    return lambda: proc.poll() is None or pytest.fail(proc.stderr.read() if proc.stderr else f"exit {proc.returncode}")


def test_sigterm_stops_the_runner_in_flight_and_marks_the_run_interrupted(tmp_path, gate_factory):
    gate = gate_factory()
    gate.go(1)  # one cell runs; the second is held in flight when CI cancels
    spec = write_spec(tmp_path / "s.yaml", devices=[str(_gated_cpu(tmp_path, gate))], options=SIX_CELLS)
    store, printed = tmp_path / "r.db", tmp_path / "stdout.txt"
    proc = _sweep(tmp_path, spec, store, printed)
    gate.wait_started(2, alive=_alive(proc))
    runner = _held_pid(gate, 2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)  # never let go: only a sweep that stops it ends
    assert proc.returncode == ExitStatus.TERMINATED == 143, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"--resume 1 --store {store}" in err and "terminated" in err
    assert "stopping the runners of the 1 cell(s) in flight" in printed.read_text()
    assert _ends(runner)  # the held runner was killed, not left behind
    with SqliteStore(store) as db:
        assert db.run(1).status == "interrupted"
        assert [r.ok for r in db.results(1)] == [True]  # the finished cell; the stopped one left nothing
    assert not gate.started(3).exists()
    assert _ours(tmp_path / "tmp") == []  # the job's temp folder went with it


def test_ctrl_c_twice_stops_the_cells_it_was_waiting_for(tmp_path, gate_factory):
    gate = gate_factory()
    spec = write_spec(tmp_path / "s.yaml", devices=[str(_gated_cpu(tmp_path, gate))], options=SIX_CELLS)
    store, printed = tmp_path / "r.db", tmp_path / "stdout.txt"
    proc = _sweep(tmp_path, spec, store, printed)
    gate.wait_started(1, alive=_alive(proc))
    runner = _held_pid(gate, 1)
    proc.send_signal(signal.SIGINT)
    _wait_for(lambda: "waiting for the 1 cell(s) in flight" in printed.read_text(), proc, "acknowledge Ctrl-C")
    proc.send_signal(signal.SIGINT)  # the user will not wait for the cell in flight
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert "--resume 1 --store" in err and "Traceback" not in err
    assert _ends(runner)
    with SqliteStore(store) as db:
        assert db.run(1).status == "interrupted" and db.results(1) == []


def test_sigterm_during_bench_kills_its_runner_and_removes_its_temp_folder(tmp_path, gate_factory):
    gate = gate_factory()
    profile = _gated_cpu(tmp_path, gate)
    proc = _start(tmp_path, "bench", str(DIGITS / "digits_cnn.onnx"), "--device", str(profile), *QUICK_TIMING,
                  stdout=tmp_path / "stdout.txt")
    gate.wait_started(1, alive=_alive(proc))
    runner = _held_pid(gate, 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitStatus.TERMINATED, err
    assert err.strip() == "edgebench: terminated (SIGTERM)"
    assert _ends(runner)
    assert _ours(tmp_path / "tmp") == []


def test_sigterm_stops_the_runner_on_an_ssh_board_and_removes_its_job_folder(tmp_path, sshd_factory, gate_factory):
    board, gate = sshd_factory(), gate_factory()
    spec = write_spec(tmp_path / "s.yaml", devices=[str(board.profile(python=str(gate.python)))])
    store, printed = tmp_path / "r.db", tmp_path / "stdout.txt"
    proc = _sweep(tmp_path, spec, store, printed)
    gate.wait_started(1, alive=_alive(proc))
    runner = _held_pid(gate, 1)  # the board is this machine: its runner's pid is ours to see
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitStatus.TERMINATED, err
    assert _ends(runner)
    assert list((board.workdir / "jobs").iterdir()) == []
    assert _stored(store) == []
    with SqliteStore(store) as db:
        assert db.run(1).status == "interrupted"
