"""The results store with real results, in both dialects (SQLite files, a real PostgreSQL server): round trip,
one row per cell, threads, a second process writing while this one reads, a writer killed with SIGKILL, newer
schemas refused, older ones migrated; and the SQLite files it must refuse (WAL, another application's file)."""

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
from edgebench.store.base import SCHEMA_VERSION
from edgebench.store.db import APPLICATION_ID, MIGRATIONS, SqliteStore
from edgebench.store.locate import open_store
from tests.postgres import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.results_fixtures import ROOT, real_results  # noqa: F401  (session fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path) -> str:
    """A fresh store's location in each dialect: an SQLite file, or an empty PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "r.db")
    return request.getfixturevalue("pg_url")


def rekeyed(result: Result, **options: object) -> Result:
    """The same real measurement under another cell key (only the options differ)."""
    return Result.from_dict({**result.to_dict(), "options": {**result.options, **options}})


def test_round_trip_keeps_every_field_and_raw_samples(location, real_results):
    with open_store(location) as store:
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
    with SqliteStore(path) as store:
        store.add_result(store.create_run("wal", {}), real_results[0])
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT model, recipe, format, device, status FROM results").fetchall() == [
        ("digits-cnn", "fp32", "onnx", "local-cpu", "ok")]
    conn.close()


def test_the_same_cell_twice_keeps_one_row_the_newest(location, real_results):
    first, second = real_results[0], real_results[1]
    again = Result.from_dict({**second.to_dict(), "options": first.options})  # same key, other measurement
    with open_store(location) as store:
        run = store.create_run("dup", {})
        store.add_result(run, first)
        store.add_result(run, again)
        (only,) = store.results(run)
        assert only.samples_ns == second.samples_ns
        other = store.create_run("dup", {})  # another run may hold the same cell
        store.add_result(other, first)
        assert len(store.results(other)) == 1 and len(store.results(run)) == 1


def test_worker_threads_add_results_concurrently(location, real_results):
    store = open_store(location)
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
    from edgebench.store.locate import open_store
    path, run, source, count, pause = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    hold = sys.argv[6:]  # [after, file]: after that many rows, wait (at most 120 s) until the file exists
    base = json.loads(open(source).read())
    store = open_store(path)
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


def start_writer(db: Path | str, run: int, result: Result, tmp_path: Path, count: int, pause: float,
                 hold: tuple[int, Path] | None = None) -> subprocess.Popen:
    source = tmp_path / "base.json"
    source.write_text(json.dumps(result.to_dict()))
    more = [str(hold[0]), str(hold[1])] if hold else []
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(run), str(source), str(count), str(pause),
                             *more], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def test_a_second_process_writes_while_this_one_reads(location, tmp_path, real_results):
    db = location
    with open_store(db) as store:
        run = store.create_run("two-processes", {})
    go_on = tmp_path / "go-on"  # the writer stops after 20 rows until this reader has seen them
    writer = start_writer(db, run, real_results[0], tmp_path, count=40, pause=0.005, hold=(20, go_on))
    seen = []
    with open_store(db) as reader:
        while writer.poll() is None:
            seen.append(len(reader.results(run)))
            if seen[-1] >= 20:
                go_on.touch()
        assert writer.wait() == 0
        assert len(reader.results(run)) == 40
    assert seen == sorted(seen)  # reads went on, and never saw a row disappear
    assert 20 in seen and go_on.exists()  # a read ran while the writer was half done (its process still open)


def test_a_writer_killed_mid_run_leaves_only_committed_cells(location, tmp_path, real_results):
    db = location
    with open_store(db) as store:
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
    if not db.startswith("postgresql://"):
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
    with open_store(db) as store:
        results = store.results(run)
        assert reported <= len(results) <= reported + 1  # at most the cell in flight beyond the last report
        assert sorted(r.options["cell"] for r in results) == list(range(len(results)))
        assert all(r.samples_ns == real_results[0].samples_ns for r in results)


def test_a_file_that_is_not_a_database_is_refused_in_one_line(tmp_path, capsys):
    junk = tmp_path / "results.db"
    junk.write_text("these are notes, not a database\n" * 100)
    with pytest.raises(EdgebenchError) as err:
        SqliteStore(junk)
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
        SqliteStore(other)


def test_a_store_from_a_newer_edgebench_is_refused(tmp_path):
    path = tmp_path / "r.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(EdgebenchError, match="newer edgebench") as err:
        SqliteStore(path)
    assert err.value.status == ExitStatus.USAGE


def test_an_unknown_run_is_an_error_listing_recent_runs(location, real_results, capsys):
    path = location
    with open_store(path) as store:
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


def test_a_cell_can_be_filed_under_its_planned_key(location, real_results):
    failed = real_results[3]
    planned = CellKey.of("broken", "fp32", "onnx", "local-cpu", {"threads": 1, "batch": 1})
    with open_store(location) as store:
        run = store.create_run("planned", {})
        store.add_result(run, failed, key=planned)
        store.add_result(run, real_results[0])
        assert store.finished_cells(run) == {planned, real_results[0].cell_key}
        assert store.finished_cells(run, include_errors=False) == {real_results[0].cell_key}
    assert CellKey.of(*real_results[0].cell_key.astuple()[:4], real_results[0].options) == real_results[0].cell_key


def test_a_postgresql_store_from_a_newer_edgebench_is_refused(pg_url, capsys):
    open_store(pg_url).close()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE edgebench.meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(EdgebenchError, match="newer edgebench") as err:
        open_store(pg_url)
    assert err.value.status == ExitStatus.USAGE
    assert main(["results", "list", "--store", pg_url]) == ExitStatus.USAGE
    out = capsys.readouterr().err.strip()
    assert out.count("\n") == 0 and "newer edgebench" in out and "s3cret" not in out  # never the password


def test_an_sqlite_store_of_schema_1_is_read_as_it_is_and_migrated_by_a_writer(tmp_path, real_results):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)  # a store as edgebench wrote it before shared runs
    for statement in MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with SqliteStore(path) as store:  # written to once more by the old layout's rules: a run and a result
        pass
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # a writer migrated it
    conn.close()
    with SqliteStore(path) as store:
        run = store.join_run("shared", {"a": 1}, 1, 2)
        store.add_result(run, real_results[0])
    with SqliteStore(path, read_only=True) as store:
        assert store.run("shared").shards.describe() == "0/2 shards"


def test_an_old_store_opened_read_only_stays_as_it_is(tmp_path, real_results):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[1]:
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO runs (name, created_utc, status, spec, edgebench_version) "
                 "VALUES ('old', '2026-01-01T00:00:00Z', 'finished', '{}', '0.1')")
    conn.commit()
    conn.close()
    with SqliteStore(path, read_only=True) as store:
        assert [(r.name, r.shards) for r in store.runs()] == [("old", None)]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


def test_shards_join_one_shared_run_which_finishes_when_all_have(location, real_results):
    with open_store(location) as store:
        first = store.join_run("ci-1234", {"name": "s"}, 1, 2)
        assert store.join_run("ci-1234", {"name": "s"}, 2, 2) == first
        store.add_result(first, real_results[0])
        store.finish_shard(first, 1)
        info = store.run("ci-1234")
        assert info.status == "running" and info.shards.missing == (2,) and info.shards.running == (2,)
        store.finish_shard(first, 2)
        info = store.run(first)
        assert info.status == "finished" and info.shards.complete and info.shards.describe() == "2/2 shards"
        assert store.join_run("ci-1234", {"name": "s"}, 2, 2) == first  # a CI retry of shard 2 runs it again
        assert store.run(first).status == "running"
        with pytest.raises(EdgebenchError, match="another spec"):
            store.join_run("ci-1234", {"name": "other"}, 1, 2)
        with pytest.raises(EdgebenchError, match="split into 2 shards, not 3"):
            store.join_run("ci-1234", {"name": "s"}, 1, 3)
        assert len(store.runs()) == 1  # nothing half-made by the refused joins


def test_shards_starting_together_make_one_run(location):
    ids: list[int] = []
    errors: list[BaseException] = []

    def join(shard: int) -> None:
        try:
            with open_store(location) as store:  # each its own connection, as separate CI jobs
                ids.append(store.join_run("together", {"name": "s"}, shard, 4))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=join, args=(i,)) for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(ids)) == 1 and len(ids) == 4
    with open_store(location, read_only=True) as store:
        assert store.run("together").shards.running == (1, 2, 3, 4)


def test_latency_history_reads_alike_in_both_dialects(tmp_path, pg_url, real_results):
    histories = []
    for location in (str(tmp_path / "h.db"), pg_url):
        with open_store(location) as store:
            for name in ("a", "b"):
                run = store.create_run(name, {})
                for r in real_results:
                    store.add_result(run, r)
            histories.append([(h.key, h.p50_ms, h.artifact) for h in store.latency_history()])
    assert histories[0] == histories[1] and len(histories[0]) == 2 * sum(1 for r in real_results if r.ok)


def test_a_read_only_postgresql_store_refuses_writes(pg_url):
    open_store(pg_url).close()
    with open_store(pg_url, read_only=True) as store:
        with pytest.raises(EdgebenchError, match="opened read-only"):
            store.create_run("nope", {})


@pytest.mark.parametrize("case", ["wrong password", "no server", "no database", "bad url", "no store"])
def test_a_bad_postgresql_store_is_one_line(case, pg_server, capsys):
    url = {"wrong password": pg_server.url("postgres", password="not-it"),
           "no server": "postgresql://edgebench:s3cret-x@127.0.0.1:1/db",
           "no database": pg_server.url("absent_db"),
           "bad url": "postgresql://edgebench@127.0.0.1:5432/db?bogus_option=1",
           "no store": pg_server.url(pg_server.new_database())}[case]
    args = ["results", "list", "--store", url]
    status = main(args)
    err = capsys.readouterr().err.strip()
    assert status in (ExitStatus.OUTPUT, ExitStatus.USAGE, ExitStatus.NOT_FOUND), err
    assert err.count("\n") == 0 and "Traceback" not in err and "s3cret" not in err and "not-it" not in err
    expected = {"wrong password": "refused the credentials", "no server": "cannot connect",
                "no database": "createdb", "bad url": "not a valid PostgreSQL URL", "no store": "edgebench sweep"}[case]
    assert expected in err


def test_results_migrate_copies_an_sqlite_store_into_postgresql_once(tmp_path, pg_url, real_results, capsys):
    source = tmp_path / "laptop.db"
    with SqliteStore(source) as store:
        for name in ("first", "second"):
            run = store.create_run(name, {"name": name})
            for r in real_results:
                store.add_result(run, r)
            store.finish_run(run)
        shared = store.join_run("sharded", {"name": "s"}, 1, 1)
        store.add_result(shared, real_results[0])
        store.finish_shard(shared, 1)
        store.create_run("in-flight", {})  # a sweep still running: not copied yet
    assert main(["results", "migrate", str(source), pg_url]) == 0
    out = capsys.readouterr().out
    assert "3 run(s) copied, 1 skipped" in out and "still running" in out and "s3cret" not in out
    with SqliteStore(source, read_only=True) as src, open_store(pg_url, read_only=True) as dst:
        for name in ("first", "second", "sharded"):
            a, b = src.run(name), dst.run(name)
            assert (a.status, a.created_utc, a.finished_utc, a.cells, a.errors, a.spec) == \
                (b.status, b.created_utc, b.finished_utc, b.cells, b.errors, b.spec)
            assert [r.to_dict() for r in src.results(a.id)] == [r.to_dict() for r in dst.results(b.id)]
        assert dst.run("sharded").shards.complete
    assert main(["results", "migrate", str(source), pg_url]) == 0  # again: nothing copied twice
    assert "0 run(s) copied, 4 skipped" in capsys.readouterr().out
    with open_store(pg_url, read_only=True) as dst:
        assert len(dst.runs()) == 3
    assert main(["gate", "-b", "first", "-c", "second", "--store", pg_url]) == ExitStatus.REGRESSION
    gated = capsys.readouterr().out  # the team store gates by run name: the same samples, and one error cell
    assert "error" in gated and "regression" not in gated.replace("regressions", ""), gated


def test_results_migrate_refuses_a_store_into_itself(tmp_path, capsys):
    path = tmp_path / "r.db"
    SqliteStore(path).close()
    assert main(["results", "migrate", str(path), str(path)]) == ExitStatus.USAGE
    assert "is both" in capsys.readouterr().err
