"""Stores: a valid store that is read-only (a CI artifact, a read-only disk) is listed, shown, exported, reported
and gated — reading commands open it read-only and write nothing — while writing commands refuse it up front;
a damaged or foreign file (random bytes, text, a truncated or overwritten SQLite file) is one line naming the
file and the fix in every command that reads a store, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from edgebench import api
from edgebench.cli import main
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.store.db import SqliteStore
from tests.conftest import DIGITS, QUICK_TIMING
from tests.results_fixtures import real_results  # noqa: F401  (session fixture)

MODEL = str(DIGITS / "digits_cnn.onnx")


def fill_store(path: Path, results) -> Path:
    """Two finished runs of the same real cells (so gating one against the other passes)."""
    with SqliteStore(path) as store:
        for name in ("baseline", "candidate"):
            run = store.create_run(name, {"name": name})
            for r in results:
                store.add_result(run, r)
            store.finish_run(run)
    return path


def write_spec(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "name": "t", "models": [{"name": "digits", "path": MODEL}], "recipes": ["fp32"], "formats": ["onnx"],
        "devices": ["local-cpu"], "options": {"threads": [1]},
        "timing": {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 20, "min_duration_s": 0.05,
                   "max_duration_s": 5}}))
    return path


@pytest.fixture
def ro_store(tmpfs, real_results):
    """A valid store on a disk remounted read-only, as a CI artifact may arrive."""
    disk = tmpfs(size=4 << 20)
    store = fill_store(disk.path / "results.db", real_results[:2])
    disk.remount("ro")
    return store


def reading_commands(store: Path, out: Path) -> dict[str, list[str]]:
    s = ["--store", str(store)]
    return {
        "results list": ["results", "list", *s],
        "results show": ["results", "show", "1", *s],
        "results export": ["results", "export", "1", "--json", str(out / "e.json"), "--csv", str(out / "e.csv"), *s],
        "report": ["report", "1", "--html", str(out / "r.html"), "--md", str(out / "r.md"), *s],
        "gate": ["gate", "-b", "1", "-c", "2", *s],
    }


def test_read_only_store_is_listed_shown_exported_reported_and_gated(ro_store, tmp_path, capsys):
    files_before = sorted(os.listdir(ro_store.parent))
    for name, argv in reading_commands(ro_store, tmp_path).items():
        assert main(argv) == ExitStatus.OK, (name, capsys.readouterr().err)
    out = capsys.readouterr().out
    assert "baseline" in out and "candidate" in out
    assert len(json.loads((tmp_path / "e.json").read_text())) == 2 and (tmp_path / "r.html").is_file()
    assert [r.name for r in api.runs(store=ro_store)] == ["candidate", "baseline"]
    assert sorted(os.listdir(ro_store.parent)) == files_before  # no -wal/-shm, nothing written


def test_reading_opens_read_only_while_a_sweep_writes(tmp_path, real_results, capsys):
    """mode=ro, not a frozen copy: a store another process holds open for writing (WAL) is read as it is."""
    path = tmp_path / "live.db"
    with SqliteStore(path) as writer:
        run = writer.create_run("live", {})
        writer.add_result(run, real_results[0])
        assert main(["results", "show", "live", "--store", str(path)]) == ExitStatus.OK
        assert "1 cells" in capsys.readouterr().out
        writer.add_result(run, real_results[1])
        assert main(["results", "show", "live", "--store", str(path)]) == ExitStatus.OK
        assert "2 cells" in capsys.readouterr().out
    with SqliteStore(path, read_only=True) as reader, pytest.raises(EdgebenchError) as err:
        reader.create_run("x", {})
    assert err.value.status == ExitStatus.OUTPUT and "read-only" in str(err.value)


def test_writing_commands_refuse_a_read_only_store_up_front(ro_store, tmp_path, capsys):
    spec = write_spec(tmp_path / "s.yaml")
    work = tmp_path / "work"
    work.mkdir()
    for argv in (["sweep", str(spec), "--store", str(ro_store), "--cache-dir", str(work / "cache")],
                 ["bench", MODEL, *QUICK_TIMING, "--store", str(ro_store), "--json", str(work / "r.json")]):
        assert main(argv) == ExitStatus.OUTPUT
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(ro_store) in err and "read-only" in err, err
    assert os.listdir(work) == []  # refused before converting or measuring
    with pytest.raises(EdgebenchError) as exc:
        api.sweep(spec, store=ro_store, cache_dir=work / "cache")
    assert exc.value.status == ExitStatus.OUTPUT and os.listdir(work) == []


def _damaged(path: Path, good: bytes, kind: str) -> Path:
    page = 4096
    path.write_bytes({
        "random bytes": os.urandom(20_000),
        "text file": b"model,p50_ms\ndigits,0.1\n" * 200,
        "truncated header": good[:1000],
        "truncated half": good[:len(good) // 2],
        "page overwritten": good[:page] + os.urandom(page) + good[2 * page:],
        "pages zeroed": good[:3 * page] + bytes(page) + good[4 * page:],
    }[kind])
    return path


DAMAGE = ["random bytes", "text file", "truncated header", "truncated half", "page overwritten", "pages zeroed"]


@pytest.fixture(scope="module")
def good_store_bytes(tmp_path_factory, real_results) -> bytes:
    path = fill_store(tmp_path_factory.mktemp("good") / "good.db", real_results * 3)
    return path.read_bytes()


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_store_is_one_line_in_every_reading_command(kind, good_store_bytes, tmp_path, capsys):
    store = _damaged(tmp_path / "results.db", good_store_bytes, kind)
    out = tmp_path / "out"
    out.mkdir()
    # a file that is no SQLite database is no store (2); a store whose pages are damaged is 12, gate included
    expected = ExitStatus.USAGE if kind in ("random bytes", "text file") else ExitStatus.OUTPUT
    for name, argv in reading_commands(store, out).items():
        status = main(argv)
        err = capsys.readouterr().err
        assert status == expected, (name, status, err)
        assert err.count("\n") == 1 and str(store) in err and "--store" in err and "Traceback" not in err, (name, err)
    assert os.listdir(out) == []  # no half report or export


@pytest.mark.parametrize("kind", ["truncated half", "page overwritten"])
def test_damaged_store_refuses_a_sweep(kind, good_store_bytes, tmp_path, capsys):
    store = _damaged(tmp_path / "results.db", good_store_bytes, kind)
    saved = store.read_bytes()
    spec = write_spec(tmp_path / "s.yaml")
    assert main(["sweep", str(spec), "--store", str(store), "--cache-dir", str(tmp_path / "cache")]) in (
        ExitStatus.USAGE, ExitStatus.OUTPUT)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(store) in err and "Traceback" not in err
    assert store.read_bytes() == saved  # the damaged file is left as it was, for recovery
    assert not (tmp_path / "cache").exists()


def test_store_copied_off_a_read_only_disk_is_still_usable(ro_store, tmp_path, capsys):
    """The fix the refusal names: a writable copy takes new runs."""
    copy = tmp_path / "copy.db"
    shutil.copy(ro_store, copy)
    with SqliteStore(copy) as store:
        store.finish_run(store.create_run("more", {}))
    assert main(["results", "list", "--store", str(copy)]) == ExitStatus.OK
    assert "more" in capsys.readouterr().out
