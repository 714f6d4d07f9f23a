"""What a killed or cut-off run leaves behind is cleaned at the next start (a killed conversion's build folder in
the artifact cache, a job folder on a board after a lost connection); a runner stopped by a time limit is
reported with the time it really ran and which limit stopped it; ``--resume`` refuses a changed spec."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edgebench.cli import main
from edgebench.errors import ExitStatus
from edgebench.pipeline.sweep.stored import plan_sweep
from edgebench.store.db import SqliteStore
from tests.conftest import DIGITS, QUICK_TIMING
from tests.sshd import gate_factory, sshd_factory  # noqa: F401  (fixtures)
from tests.test_sweep import write_spec

HOUR_AGO = time.time() - 3600


@pytest.fixture(autouse=True)
def _own_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEBENCH_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # only the fixture's keys may authenticate


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def _folder(path: Path, mtime: float | None = None, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True)
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_a_killed_conversions_build_folder_is_removed_by_the_next_conversion(tmp_path, capsys):
    cache = tmp_path / "cache"
    dead = _dead_pid()
    killed = _folder(cache / "ab" / f".ab12cd34ef56-{dead}-x1y2", HOUR_AGO, {"model.onnx": "half written"})
    killed_weights = _folder(cache / "weights" / "cd" / f".cd12cd34ef56-{dead}-z9", HOUR_AGO)
    recent = _folder(cache / "ab" / f".ab12cd34ef57-{dead}-q")  # its owner may be a conversion just begun
    running = _folder(cache / "ef" / f".ef12cd34ef56-{os.getpid()}-w", HOUR_AGO)  # a long conversion, still alive
    assert main(["convert", str(DIGITS / "digits_cnn.onnx"), "--to", "onnx", "--precision", "fp16",
                 "--cache-dir", str(cache)]) == 0, capsys.readouterr().err
    assert not killed.exists() and not killed_weights.exists()
    assert recent.exists() and running.exists()


def test_a_job_folder_left_on_the_board_is_removed_at_the_next_job(tmp_path, sshd_factory):
    board = sshd_factory()
    jobs = board.workdir / "jobs"
    dropped = _folder(jobs / "0123456789ab", HOUR_AGO)  # made, then the connection went: empty, old
    finished = _folder(jobs / "0123456789ac", HOUR_AGO, {"job.json": "{}", "pid": str(_dead_pid())})
    young = _folder(jobs / "0123456789ad")  # another host's job, just prepared
    running = _folder(jobs / "0123456789ae", HOUR_AGO, {"pid": str(os.getpid())})  # a long job, runner alive
    assert main(["bench", str(DIGITS / "digits_cnn.onnx"), "--device", str(board.profile()), *QUICK_TIMING]) == 0
    assert not dropped.exists() and not finished.exists()
    assert sorted(p.name for p in jobs.iterdir()) == [young.name, running.name]


def test_a_runner_stopped_by_the_profiles_command_limit_says_so(tmp_path, sshd_factory, gate_factory, capsys):
    board, gate = sshd_factory(), gate_factory()  # the job is held at the gate, never let go
    profile = board.profile(python=str(gate.python), connection={"command_timeout_s": 5})
    assert main(["bench", str(DIGITS / "digits_cnn.onnx"), "--device", str(profile), *QUICK_TIMING]) == \
        ExitStatus.RUNNER_FAILED
    err = capsys.readouterr().err
    assert "by its 5 s time limit (the profile's connection.command_timeout_s)" in err, err
    assert "was stopped after " in err and "ran past" not in err and "305" not in err
    assert list((board.workdir / "jobs").iterdir()) == []


def test_resume_refuses_a_changed_spec_and_names_the_change(tmp_path, capsys):
    spec = write_spec(tmp_path / "s.yaml")
    store = tmp_path / "r.db"
    stored = plan_sweep(spec).spec.model_dump(mode="json")
    del stored["cell_timeout_s"]  # a run from a version before this field: its default is no change
    with SqliteStore(store) as db:
        run = db.create_run("t", stored)
    resume = ["sweep", str(spec), "--store", str(store), "--resume", str(run), "--dry-run"]
    assert main(resume) == 0  # the spec it was made from
    capsys.readouterr()

    data = yaml.safe_load(spec.read_text())
    data["options"]["threads"] = [1, 2]
    data["timing"]["min_iterations"] = 30
    spec.write_text(yaml.safe_dump(data))
    assert main(resume) == ExitStatus.CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "options.threads: [1] → [1, 2]" in err and "timing.min_iterations: 20 → 30" in err
    assert "without --resume" in err
    with SqliteStore(store) as db:
        assert db.results(run) == []
