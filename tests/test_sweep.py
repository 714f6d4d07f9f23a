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
from edgebench.store import Store
from tests.conftest import DIGITS
from tests.sshd import sshd_factory  # noqa: F401  (fixture)

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
    assert Store(store).runs() == []  # a dry run records nothing


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
    assert not store.exists() or Store(store).runs() == []


def test_store_that_is_not_edgebench_and_unknown_resume(tmp_path, capsys):
    spec = write_spec(tmp_path / "s.yaml")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    assert sweep(spec, other) == ExitStatus.USAGE
    assert "not an edgebench" in capsys.readouterr().err
    assert sweep(spec, tmp_path / "r.db", "--resume", "42") == ExitStatus.NOT_FOUND
    assert "no run '42'" in capsys.readouterr().err


def _run_sweep_process(spec: Path, store: Path, *more: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgebench", "sweep", str(spec), "--store", str(store),
                             "--cache-dir", str(store.parent / "cache"), *more],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stored(store: Path) -> list[tuple]:
    if not store.exists():
        return []
    with sqlite3.connect(store) as conn:
        try:
            return conn.execute("SELECT model, recipe, format, device, options, created_utc FROM results").fetchall()
        except sqlite3.OperationalError:
            return []


def _wait_for_cells(store: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(_stored(store)) < n:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the sweep stored too few cells in time"
        time.sleep(0.05)


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", options={"threads": [1, 2], "batch": [1, 2, 4]})  # 6 cells
    store = tmp_path / "r.db"
    proc = _run_sweep_process(spec, store)
    _wait_for_cells(store, 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    before = _stored(store)
    assert 2 <= len(before) < 6
    assert sweep(spec, store, "--resume", "1") == 0
    after = _stored(store)
    keys = [row[:5] for row in after]
    assert len(keys) == 6 and len(set(keys)) == 6  # every cell once
    assert set(before) <= set(after)  # the cells finished before the kill were kept, not re-run
    with Store(store) as db:
        assert db.run(1).status == "finished" and all(r.ok for r in db.results(1))


def test_ctrl_c_stops_cleanly_and_keeps_finished_cells(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", options={"threads": [1, 2], "batch": [1, 2, 4]})
    store = tmp_path / "r.db"
    proc = _run_sweep_process(spec, store)
    _wait_for_cells(store, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert "--resume 1" in err and "Traceback" not in err
    with Store(store) as db:
        assert db.run(1).status == "interrupted"
        kept = db.results(1)
    assert 1 <= len(kept) < 6 and all(r.ok for r in kept)


def test_two_boards_run_in_parallel_but_never_two_jobs_on_one(tmp_path, sshd_factory):  # noqa: F811
    boards = [sshd_factory(name) for name in ("board-a", "board-b")]
    profiles = [str(b.profile()) for b in boards]
    spec = write_spec(tmp_path / "s.yaml", devices=profiles, options={"threads": [1], "batch": [1, 2, 4]})
    out = tmp_path / "all.json"
    assert sweep(spec, tmp_path / "r.db", "--json", str(out)) == 0
    results = json.loads(out.read_text())
    assert len(results) == 6 and all(r["status"] == "ok" for r in results)
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
