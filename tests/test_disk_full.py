"""A full disk, injected for real: a small tmpfs filled up by the test. A sweep whose store's disk fills up
mid-run stops, keeps the cells already stored, leaves the run unfinished, exits non-zero and says which disk
and how to resume; a disk full before the start is one line; an output that runs out of space half-way
leaves no partial file."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import yaml

from edgebench import api
from edgebench.cli import main
from edgebench.environment import Environment
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.sweep.plan import Cell
from edgebench.result import CellKey, Result
from edgebench.store.db import SqliteStore
from tests.conftest import DIGITS
from tests.mounts import Tmpfs
from tests.results_fixtures import real_results  # noqa: F401  (session fixture)

TIMING = {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 20, "min_duration_s": 0.05,
          "max_duration_s": 5}


def write_spec(path: Path, threads: list[int]) -> Path:
    path.write_text(yaml.safe_dump({
        "name": "full", "models": [{"name": "digits", "path": str(DIGITS / "digits_cnn.onnx")}], "recipes": ["fp32"],
        "formats": ["onnx"], "devices": ["local-cpu"], "options": {"threads": threads}, "timing": TIMING}))
    return path


class FillAfterFirstCell:
    """Progress events that fill the store's disk once the first cell is stored (cell_done comes after the
    store took it): the fault lands between two cells, every time."""

    def __init__(self, disk: Tmpfs) -> None:
        self.disk, self.done = disk, 0

    def conversion_started(self, conversion: tuple[str, str, str]) -> None: ...
    def conversion_done(self, conversion: tuple[str, str, str], hit: bool, error: str | None) -> None: ...
    def cell_started(self, cell: Cell) -> None: ...
    def stopping(self, in_flight: int, at_once: bool) -> None: ...

    def cell_done(self, cell: Cell, result: Result) -> None:
        self.done += 1
        if self.done == 1:
            self.disk.fill()


def run_status(store: Path) -> list[tuple[int, str, int]]:
    """(run id, status, stored cells) of every run, read as a CI job would: read-only, nothing written."""
    with SqliteStore(store, read_only=True) as db:
        return [(r.id, r.status, r.cells) for r in db.runs()]


def test_disk_full_mid_sweep_loses_no_cell_silently(tmpfs, tmp_path, capsys):
    disk = tmpfs(size=1 << 20)
    store = disk.path / "results.db"
    spec = write_spec(tmp_path / "s.yaml", threads=[1, 2, 3])
    with pytest.raises(EdgebenchError) as err:
        api.sweep(spec, store=store, cache_dir=tmp_path / "cache", events=FillAfterFirstCell(disk))
    message = str(err.value)
    assert err.value.status == ExitStatus.OUTPUT and "\n" not in message
    assert f"the disk mounted at {disk.path} is full" in message  # names the disk
    assert "not stored: digits fp32 onnx" in message and "threads=2" in message  # the cell it could not keep
    assert f"--resume 1 --store {store} --cache-dir {tmp_path / 'cache'}'" in message  # and how to go on
    assert "Traceback" not in capsys.readouterr().err  # the worker thread did not die with one
    [(run_id, status, cells)] = run_status(store)
    assert status != "finished" and cells == 1  # the stored cell is kept; the run is not called finished

    # the fix the message names: free space, then resume; only the missing cells run
    os.unlink(disk.path / "filler")
    assert main(["sweep", str(spec), "--store", str(store), "--cache-dir", str(tmp_path / "cache"),
                 "--resume", str(run_id)]) == ExitStatus.OK
    assert run_status(store) == [(run_id, "finished", 3)]


class FillingLog(io.StringIO):
    """The command's log (stdout off a terminal): its line for the first stored cell fills the store's disk —
    written by the device worker after the store took that cell and before the next cell starts."""

    def __init__(self, disk: Tmpfs) -> None:
        super().__init__()
        self.disk = disk

    def write(self, text: str) -> int:
        if "cell 1/" in text and " done: " in text:
            self.disk.fill()
        return super().write(text)


def test_cli_exit_status_when_the_disk_fills_mid_sweep(tmpfs, tmp_path):
    """The same through the command: exit 12 (not 0, not 1), one line, the run not marked finished."""
    disk = tmpfs(size=1 << 20)
    store = disk.path / "results.db"
    spec = write_spec(tmp_path / "s.yaml", threads=[1, 2])
    log, err = FillingLog(disk), io.StringIO()
    status = main(["sweep", str(spec), "--store", str(store), "--cache-dir", str(tmp_path / "cache")],
                  Environment(stdout=log, stderr=err))
    assert status == ExitStatus.OUTPUT, err.getvalue()
    line = err.getvalue()
    assert line.count("\n") == 1 and line.startswith("edgebench: error: ") and "Traceback" not in line
    assert f"the disk mounted at {disk.path} is full" in line
    assert f"'edgebench sweep {spec} --resume 1 --store {store} --cache-dir {tmp_path / 'cache'}'" in line
    assert "cell 1/2 done" in log.getvalue() and "cell 2/2" not in log.getvalue()
    assert run_status(store) == [(1, "running", 1)]  # not finished (nor could "failed" be written)


@pytest.mark.parametrize("exists", [False, True], ids=["new store", "existing store"])
def test_disk_already_full_is_one_line(exists, tmpfs, tmp_path, capsys):
    disk = tmpfs(size=512 << 10)
    store = disk.path / "results.db"
    if exists:
        with SqliteStore(store) as db:
            db.finish_run(db.create_run("before", {}))
    disk.fill()
    spec = write_spec(tmp_path / "s.yaml", threads=[1])
    assert main(["sweep", str(spec), "--store", str(store), "--cache-dir", str(tmp_path / "cache")]) == ExitStatus.OUTPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is full" in err and str(disk.path) in err and "Traceback" not in err
    assert not (tmp_path / "cache").exists()  # refused before converting or measuring
    if exists:
        assert run_status(store) == [(1, "finished", 0)]  # what was stored is untouched


def test_output_running_out_of_space_half_way_leaves_no_partial_file(tmpfs, tmp_path, real_results, capsys):
    """The probe finds room, the export does not: the atomic write fails as one line and leaves nothing."""
    store = tmp_path / "results.db"
    with SqliteStore(store) as db:
        run = db.create_run("r", {})
        for r in real_results:
            db.add_result(run, r)
    disk = tmpfs(size=256 << 10)
    disk.fill()
    os.truncate(disk.path / "filler", os.path.getsize(disk.path / "filler") - 4096)  # one page: the probe fits
    assert main(["results", "export", "1", "--json", str(disk.path / "e.json"), "--store", str(store)]) == \
        ExitStatus.OUTPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is full" in err and "e.json" in err and "Traceback" not in err, err
    assert os.listdir(disk.path) == ["filler"]  # no partial export, no temporary file


def test_sqlite_full_is_mapped_in_the_store_itself(tmpfs, real_results):
    """Store.add_result on a full disk: one EdgebenchError naming the disk; what was stored stays readable."""
    disk = tmpfs(size=512 << 10)
    with SqliteStore(disk.path / "r.db") as db:
        run = db.create_run("r", {})
        db.add_result(run, real_results[0])
        disk.fill()
        with pytest.raises(EdgebenchError) as err:
            for i in range(1000):  # new rows until the WAL needs a page the disk does not have
                db.add_result(run, real_results[0], key=CellKey("digits", "fp32", "onnx", "local-cpu", f"n={i}"))
    assert err.value.status == ExitStatus.OUTPUT and f"the disk mounted at {disk.path} is full" in str(err.value)
    assert run_status(disk.path / "r.db")[0][2] >= 1
