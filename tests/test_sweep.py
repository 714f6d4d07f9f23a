"""`edgebench sweep` end to end: real runtimes, a real store, real kills, real sshd boards."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edgebench.cli import main
from edgebench.errors import ExitStatus
from edgebench.store.db import SqliteStore
from tests.conftest import DIGITS
from tests.sshd import Gate, gate_factory, sshd_factory  # noqa: F401  (fixtures)

QUICK = {"warmup_s": 0.02, "warmup_iterations": 2, "min_iterations": 20, "min_duration_s": 0.2, "max_duration_s": 5}


def write_spec(path: Path, **over) -> Path:
    spec = {"name": "t", "models": [{"name": "digits", "path": str(DIGITS / "digits_cnn.onnx"),
                                     "dataset": str(DIGITS / "eval.npz"), "calibration": str(DIGITS / "calib.npz")}],
            "recipes": ["fp32"], "formats": ["onnx"], "devices": ["local-cpu"], "options": {"threads": [1]},
            "timing": QUICK, **over}
    path.write_text(yaml.safe_dump(spec))
    return path


def sweep(spec: Path, store: Path, *more: str) -> ExitStatus:
    return main(["sweep", str(spec), "--store", str(store), "--cache-dir", str(store.parent / "cache"), *more])


def test_small_real_sweep_end_to_end(tmp_path, capsys):
    spec = write_spec(tmp_path / "s.yaml", recipes=["fp32", "fp16"], formats=["onnx", "openvino"])
    out = tmp_path / "all.json"
    assert sweep(spec, tmp_path / "r.db", "--json", str(out)) == 0
    results = json.loads(out.read_text())
    assert isinstance(results, list) and len(results) == 4
    assert {(r["model"]["recipe"], r["model"]["format"]) for r in results} == {
        ("fp32", "onnx"), ("fp32", "openvino"), ("fp16", "onnx"), ("fp16", "openvino")}
    for r in results:
        assert r["status"] == "ok", r.get("error")
        assert r["accuracy"]["top1"] >= 0.97 and r["iterations"] >= 20
        assert r["model"]["precision"] == r["model"]["recipe"]
    printed = capsys.readouterr().out
    assert "4 cells" in printed and "3 conversions" in printed
    # the same sweep again: every artifact comes from the cache
    assert sweep(spec, tmp_path / "r.db") == 0
    assert "0 conversions, 3 cache hits" in capsys.readouterr().out


def test_dry_run_shows_plan_and_skips_cells_a_device_cannot_run(tmp_path, capsys):
    board = tmp_path / "pi.yaml"
    board.write_text("name: pi\nruntimes: [onnxruntime]\n")
    spec = write_spec(tmp_path / "s.yaml", formats=["onnx", "tflite"], devices=[str(board)])
    store = tmp_path / "r.db"
    assert sweep(spec, store, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "1 cells" in out and "1 skipped" in out and "pi has no tflite" in out
    assert SqliteStore(store).runs() == []  # a dry run records nothing


@pytest.mark.parametrize("over, status, message", [
    ({"recipes": ["int8+prune:0.5"]}, ExitStatus.CONFIG, "order"),
    ({"recipes": ["sharpen:2"]}, ExitStatus.CONFIG, "recipes: "),
    ({"formats": ["coreml"]}, ExitStatus.CONFIG, "unknown format 'coreml'"),
    ({"devices": ["my-phone"]}, ExitStatus.CONFIG, "unknown device 'my-phone'"),
    ({"recipes": ["fp32", "fp32"]}, ExitStatus.CONFIG, "more than once"),
    ({"models": [{"name": "m", "path": "nope.onnx"}]}, ExitStatus.NOT_FOUND, "model 'm' path not found"),
    ({"timing": {"min_iterationz": 3}}, ExitStatus.CONFIG, "unknown field 'timing.min_iterationz'"),
])
def test_bad_specs_are_refused_before_anything_runs(tmp_path, capsys, over, status, message):
    store = tmp_path / "r.db"
    assert sweep(write_spec(tmp_path / "s.yaml", **over), store) == status
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not store.exists() or SqliteStore(store).runs() == []


def test_store_that_is_not_edgebench_and_unknown_resume(tmp_path, capsys):
    spec = write_spec(tmp_path / "s.yaml")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    assert sweep(spec, other) == ExitStatus.USAGE
    assert "not an edgebench" in capsys.readouterr().err
    assert sweep(spec, tmp_path / "r.db", "--resume", "42") == ExitStatus.NOT_FOUND
    assert "no run '42'" in capsys.readouterr().err


def _run_sweep_process(spec: Path, store: Path, *more: str, stdout: Path | None = None) -> subprocess.Popen:
    # SIGINT as in a terminal: a shell without job control starts background commands (CI steps, `cmd &`)
    # with SIGINT ignored, a child inherits that, and Python then never turns Ctrl-C into KeyboardInterrupt
    with open(stdout or os.devnull, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "edgebench", "sweep", str(spec), "--store", str(store),
                                 "--cache-dir", str(store.parent / "cache"), *more],
                                stdout=out, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _stored(store: Path) -> list[tuple]:
    if not store.exists():
        return []
    with sqlite3.connect(store) as conn:
        try:
            return conn.execute("SELECT model, recipe, format, device, options, created_utc FROM results").fetchall()
        except sqlite3.OperationalError:
            return []


def _gated_cpu(tmp_path: Path, gate: Gate) -> Path:
    """This machine's CPU as a device whose runner jobs wait at ``gate``: the test decides when each goes."""
    path = tmp_path / "gated-cpu.yaml"
    path.write_text(yaml.safe_dump({"name": "gated-cpu", "connection": {"type": "local"}, "python": str(gate.python),
                                    "runtimes": ["onnxruntime"], "threads": 0}))
    return path


def _wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, f"the sweep did not {what} within {timeout:g} s"
        time.sleep(0.05)


SIX_CELLS = {"threads": [1, 2], "batch": [1, 2, 4]}


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path, gate_factory):
    gate = gate_factory()
    for k in (1, 2):  # two cells may run; the third is held in flight, so the sweep cannot finish
        gate.go(k)
    spec = write_spec(tmp_path / "s.yaml", devices=[str(_gated_cpu(tmp_path, gate))], options=SIX_CELLS)
    store = tmp_path / "r.db"
    proc = _run_sweep_process(spec, store)
    gate.wait_started(3, alive=lambda: proc.poll() is None or pytest.fail(proc.stderr.read()))
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    gate.drop(3)  # the orphaned runner job ends without running
    before = _stored(store)
    assert len(before) == 2  # the two finished cells; the one in flight left nothing behind
    for k in range(4, 8):  # the resume's jobs: the four missing cells, nothing twice
        gate.go(k)
    assert sweep(spec, store, "--resume", "1") == 0
    assert not gate.started(8).exists()
    after = _stored(store)
    keys = [row[:5] for row in after]
    assert len(keys) == 6 and len(set(keys)) == 6  # every cell once
    assert set(before) <= set(after)  # the cells finished before the kill were kept, not re-run
    with SqliteStore(store) as db:
        assert db.run(1).status == "finished" and all(r.ok for r in db.results(1))


def test_ctrl_c_stops_cleanly_and_keeps_finished_cells(tmp_path, gate_factory):
    gate = gate_factory()
    gate.go(1)  # one cell runs; the second is held in flight while Ctrl-C arrives
    spec = write_spec(tmp_path / "s.yaml", devices=[str(_gated_cpu(tmp_path, gate))], options=SIX_CELLS)
    store, printed = tmp_path / "r.db", tmp_path / "stdout.txt"
    proc = _run_sweep_process(spec, store, stdout=printed)
    gate.wait_started(2, alive=lambda: proc.poll() is None or pytest.fail(proc.stderr.read()))
    assert len(_stored(store)) == 1
    proc.send_signal(signal.SIGINT)
    _wait_for(lambda: "no new cell starts" in printed.read_text(), proc, "acknowledge Ctrl-C")
    gate.go(2)  # only now may the cell in flight finish: the sweep has already stopped scheduling
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert "--resume 1" in err and "Traceback" not in err
    assert "waiting for the 1 cell(s) in flight" in printed.read_text()
    with SqliteStore(store) as db:
        assert db.run(1).status == "interrupted"
        kept = db.results(1)
    assert len(kept) == 2 and all(r.ok for r in kept)  # the finished cell and the one in flight; no other began
    assert not gate.started(3).exists()


def test_two_boards_run_in_parallel_but_never_two_jobs_on_one(tmp_path, sshd_factory, gate_factory):  # noqa: F811
    boards = [sshd_factory(name) for name in ("board-a", "board-b")]
    # a rendezvous: each board's first job waits until the other board has a job in flight, so a sweep that
    # ran the boards one after the other would stall and fail ("never let go") instead of passing slowly
    roots = [tmp_path / "gate-a", tmp_path / "gate-b"]
    gates = [gate_factory(name, hold_s=60, meet=other / "started.1", why=" (the other board never started a job)")
             for name, other in (("a", roots[1]), ("b", roots[0]))]
    assert [g.root for g in gates] == roots
    profiles = [str(b.profile(python=str(g.python))) for b, g in zip(boards, gates)]
    spec = write_spec(tmp_path / "s.yaml", devices=profiles, options={"threads": [1], "batch": [1, 2, 4]})
    out = tmp_path / "all.json"
    assert sweep(spec, tmp_path / "r.db", "--json", str(out)) == 0
    results = json.loads(out.read_text())
    assert len(results) == 6 and all(r["status"] == "ok" for r in results), [r.get("error") for r in results]
    windows: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for r in results:
        stamps = r["extra"]["sweep"]
        windows.setdefault(r["device"]["profile"], []).append(
            (dt.datetime.fromisoformat(stamps["started_utc"]), dt.datetime.fromisoformat(stamps["finished_utc"])))
    assert set(windows) == {"board-a", "board-b"}
    for spans in windows.values():
        spans.sort()
        assert all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:])), spans  # one job at a time
    a, b = windows["board-a"], windows["board-b"]
    assert any(x[0] < y[1] and y[0] < x[1] for x in a for y in b)  # the boards did work side by side


def test_gate_reads_runs_from_the_store(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", options={"threads": [1], "batch": [1, 2]})
    store = tmp_path / "r.db"
    assert sweep(spec, store) == 0
    junit = tmp_path / "gate.xml"
    # the same run on both sides: every check must pass, matched cell by cell through the store
    assert main(["gate", "--baseline", "1", "--candidate", "t", "--store", str(store), "--junit", str(junit)]) == 0
    assert junit.read_text().count("<testcase") >= 2 * 5
    assert main(["gate", "--baseline", "1", "--candidate", "9", "--store", str(store)]) == ExitStatus.USAGE
