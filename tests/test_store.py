"""The SQLite results store with real results: round trip, WAL, one row per cell, threads, a second
process writing while this one reads, a writer killed with SIGKILL, and files it must refuse."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.result import CellKey, Result
from edgebench.store.db import APPLICATION_ID, SCHEMA_VERSION, Store
from tests.results_fixtures import ROOT, real_results  # noqa: F401  (session fixture)


def rekeyed(result: Result, **options: object) -> Result:
    """The same real measurement under another cell key (only the options differ)."""
    return Result.from_dict({**result.to_dict(), "options": {**result.options, **options}})


def test_round_trip_keeps_every_field_and_raw_samples(tmp_path, real_results):
    with Store(tmp_path / "r.db") as store:
        run = store.create_run("roundtrip", {"formats": ["onnx"], "timing": {"min_iterations": 20}})
        for r in real_results:
            store.add_result(run, r)
        back = store.results(run)
        assert [b.to_dict() for b in back] == [r.to_dict() for r in real_results]
        assert all(len(b.samples_ns) == b.iterations > 0 for b in back if b.ok)
        assert store.finished_cells(run) == {r.cell_key for r in real_results}
        assert store.finished_cells(run, include_errors=False) == {r.cell_key for r in real_results if r.ok}
        info = store.run(run)
        assert (info.status, info.cells, info.errors) == ("running", 4, 1)
        assert info.spec == {"formats": ["onnx"], "timing": {"min_iterations": 20}}
        store.finish_run(run, "interrupted")
        assert store.last_run().status == "interrupted" and store.last_run().finished_utc
        assert store.run("roundtrip").id == run  # a run can also be named


def test_store_file_is_wal_and_marked_as_edgebench(tmp_path, real_results):
    path = tmp_path / "sub" / "r.db"
    with Store(path) as store:
        store.add_result(store.create_run("wal", {}), real_results[0])
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT model, recipe, format, device, status FROM results").fetchall() == [
        ("digits-cnn", "fp32", "onnx", "local-cpu", "ok")]
    conn.close()


def test_the_same_cell_twice_keeps_one_row_the_newest(tmp_path, real_results):
    first, second = real_results[0], real_results[1]
    again = Result.from_dict({**second.to_dict(), "options": first.options})  # same key, other measurement
    with Store(tmp_path / "r.db") as store:
        run = store.create_run("dup", {})
        store.add_result(run, first)
        store.add_result(run, again)
        (only,) = store.results(run)
        assert only.samples_ns == second.samples_ns
        other = store.create_run("dup", {})  # another run may hold the same cell
        store.add_result(other, first)
        assert len(store.results(other)) == 1 and len(store.results(run)) == 1


def test_worker_threads_add_results_concurrently(tmp_path, real_results):
    store = Store(tmp_path / "r.db")
    run = store.create_run("threads", {})
    errors: list[BaseException] = []

    def worker(device: int) -> None:
        try:
            for i in range(15):
                store.add_result(run, rekeyed(real_results[i % 3], worker=device, i=i))
                store.finished_cells(run)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(d,)) for d in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.finished_cells(run)) == 60
    store.close()


WRITER = textwrap.dedent("""
    import json, os, sys, time
    from edgebench.result import Result
    from edgebench.store.db import Store
    path, run, source, count, pause = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    hold = sys.argv[6:]  # [after, file]: after that many rows, wait (at most 120 s) until the file exists
    base = json.loads(open(source).read())
    store = Store(path)
    for i in range(count):
        if hold and i == int(hold[0]):
            deadline = time.monotonic() + 120
            while not os.path.exists(hold[1]):
                assert time.monotonic() < deadline, "the reader never let the writer go on"
                time.sleep(0.01)
        store.add_result(run, Result.from_dict({**base, "options": {**base["options"], "cell": i}}))
        print(i + 1, flush=True)
        time.sleep(pause)
""")


def start_writer(db: Path, run: int, result: Result, tmp_path: Path, count: int, pause: float,
                 hold: tuple[int, Path] | None = None) -> subprocess.Popen:
    source = tmp_path / "base.json"
    source.write_text(json.dumps(result.to_dict()))
    more = [str(hold[0]), str(hold[1])] if hold else []
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(run), str(source), str(count), str(pause),
                             *more], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def test_a_second_process_writes_while_this_one_reads(tmp_path, real_results):
    db = tmp_path / "r.db"
    with Store(db) as store:
        run = store.create_run("two-processes", {})
    go_on = tmp_path / "go-on"  # the writer stops after 20 rows until this reader has seen them
    writer = start_writer(db, run, real_results[0], tmp_path, count=40, pause=0.005, hold=(20, go_on))
    seen = []
    with Store(db) as reader:
        while writer.poll() is None:
            seen.append(len(reader.results(run)))
            if seen[-1] >= 20:
                go_on.touch()
        assert writer.wait() == 0
        assert len(reader.results(run)) == 40
    assert seen == sorted(seen)  # reads went on, and never saw a row disappear
    assert 20 in seen and go_on.exists()  # a read ran while the writer was half done (its process still open)


def test_a_writer_killed_mid_run_leaves_only_committed_cells(tmp_path, real_results):
    db = tmp_path / "r.db"
    with Store(db) as store:
        run = store.create_run("killed", {})
    writer = start_writer(db, run, real_results[0], tmp_path, count=10_000, pause=0.01)
    reported = 0
    for line in writer.stdout:
        reported = int(line)
        if reported >= 8:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    reported = max([reported, *(int(line) for line in writer.stdout.read().split())])
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with Store(db) as store:
        results = store.results(run)
        assert reported <= len(results) <= reported + 1  # at most the cell in flight beyond the last report
        assert sorted(r.options["cell"] for r in results) == list(range(len(results)))
        assert all(r.samples_ns == real_results[0].samples_ns for r in results)


def test_a_file_that_is_not_a_database_is_refused_in_one_line(tmp_path, capsys):
    junk = tmp_path / "results.db"
    junk.write_text("these are notes, not a database\n" * 100)
    with pytest.raises(EdgebenchError) as err:
        Store(junk)
    assert err.value.status == ExitStatus.USAGE and "not an edgebench results store" in str(err.value)
    assert junk.read_text().startswith("these are notes")  # untouched
    assert main(["results", "list", "--store", str(junk)]) == ExitStatus.USAGE
    out = capsys.readouterr().err.strip()
    assert out.count("\n") == 0 and "not an edgebench results store" in out and "--store" in out


def test_another_applications_sqlite_file_is_refused(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(EdgebenchError, match="another application's SQLite database"):
        Store(other)


def test_a_store_from_a_newer_edgebench_is_refused(tmp_path):
    path = tmp_path / "r.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(EdgebenchError, match="newer edgebench") as err:
        Store(path)
    assert err.value.status == ExitStatus.USAGE


def test_an_unknown_run_is_an_error_listing_recent_runs(tmp_path, real_results, capsys):
    path = tmp_path / "r.db"
    with Store(path) as store:
        store.create_run("nightly", {})
        with pytest.raises(EdgebenchError, match=r"no run '42'.*recent: 1 \(nightly") as err:
            store.add_result(42, real_results[0])
        assert err.value.status == ExitStatus.NOT_FOUND
    assert main(["results", "show", "42", "--store", str(path)]) == ExitStatus.NOT_FOUND
    assert "nightly" in capsys.readouterr().err


def test_reading_a_missing_store_names_the_fix(tmp_path, capsys):
    assert main(["results", "list", "--store", str(tmp_path / "none.db")]) == ExitStatus.NOT_FOUND
    assert "edgebench sweep" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_a_cell_can_be_filed_under_its_planned_key(tmp_path, real_results):
    failed = real_results[3]
    planned = CellKey.of("broken", "fp32", "onnx", "local-cpu", {"threads": 1, "batch": 1})
    with Store(tmp_path / "r.db") as store:
        run = store.create_run("planned", {})
        store.add_result(run, failed, key=planned)
        store.add_result(run, real_results[0])
        assert store.finished_cells(run) == {planned, real_results[0].cell_key}
        assert store.finished_cells(run, include_errors=False) == {real_results[0].cell_key}
    assert CellKey.of(*real_results[0].cell_key.astuple()[:4], real_results[0].options) == real_results[0].cell_key
