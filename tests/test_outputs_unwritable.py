"""Outputs that cannot be written — a read-only disk, a full one, a parent that is a file, a folder where a file
belongs (or a file where a folder does), /proc, a symbolic link loop — for every output option of every command:
one line on stderr naming the option and the fix, exit status 12 (OUTPUT), checked before any converting or
measuring (the other outputs of the same command line are never made), and nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from edgebench.cli import main
from edgebench.errors import ExitStatus
from tests.conftest import DIGITS, QUICK_TIMING
from tests.mounts import Tmpfs, mounted_tmpfs
from tests.test_store_readonly import write_spec

MODEL = str(DIGITS / "digits_cnn.onnx")


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Tmpfs]]:
    """A read-only disk and a full one, shared by every case of this module."""
    factory = mounted_tmpfs(tmp_path_factory.mktemp("mnt"))
    make = next(factory)
    ro, full = make(size=1 << 20, name="ro"), make(size=256 << 10, name="full")
    ro.remount("ro")
    full.fill()
    yield {"ro": ro, "full": full}
    next(factory, None)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_spec(tmp_path_factory.mktemp("spec") / "s.yaml")


# Each case: the command line with OUT where the bad output goes and WORK/… for the outputs that must then not
# appear (the work the command would have done), and whether OUT names a folder.
COMMANDS: dict[str, tuple[list[str], bool]] = {
    "bench --json": (["bench", MODEL, *QUICK_TIMING, "--json", "OUT", "--store", "WORK/r.db"], False),
    "bench --store": (["bench", MODEL, *QUICK_TIMING, "--store", "OUT", "--json", "WORK/r.json"], False),
    "bench --cache-dir": (["bench", MODEL, "--format", "onnx", "--precision", "fp16", *QUICK_TIMING,
                           "--cache-dir", "OUT", "--json", "WORK/r.json"], True),
    "sweep --json": (["sweep", "SPEC", "--json", "OUT", "--store", "WORK/r.db"], False),
    "sweep --store": (["sweep", "SPEC", "--store", "OUT", "--cache-dir", "WORK/cache"], False),
    "sweep --cache-dir": (["sweep", "SPEC", "--cache-dir", "OUT", "--store", "WORK/r.db"], True),
    "ab --json": (["ab", "-b", MODEL, "-c", MODEL, "--max-rounds", "1", *QUICK_TIMING, "--md", "WORK/ab.md",
                   "--json", "OUT"], False),
    "ab --md": (["ab", "-b", MODEL, "-c", MODEL, "--max-rounds", "1", *QUICK_TIMING, "--md", "OUT"], False),
    "gate --junit": (["gate", "-b", "1", "-c", "1", "--store", "WORK/none.db", "--junit", "OUT"], False),
    "results export --csv": (["results", "export", "1", "--store", "WORK/none.db", "--csv", "OUT"], False),
    "results export --json": (["results", "export", "1", "--store", "WORK/none.db", "--json", "OUT"], False),
    "report --html": (["report", "1", "--store", "WORK/none.db", "--html", "OUT"], False),
    "report --md": (["report", "1", "--store", "WORK/none.db", "--md", "OUT"], False),
    "devices schema --out": (["devices", "schema", "-o", "OUT"], False),
    "convert --out": (["convert", MODEL, "--to", "onnx", "--precision", "fp16", "--cache-dir", "WORK/cache",
                       "--out", "OUT"], True),
    "convert --cache-dir": (["convert", MODEL, "--to", "onnx", "--precision", "fp16", "--cache-dir", "OUT"], True),
    "compress --json": (["compress", MODEL, "-r", "prune:0.5", "--cache-dir", "WORK/cache", "--json", "OUT"], False),
    "compress --out": (["compress", MODEL, "-r", "prune:0.5", "--cache-dir", "WORK/cache", "--out", "OUT"], True),
    "compare --json": (["compare", MODEL, "--formats", "onnx", "--cache-dir", "WORK/cache", "--json", "OUT"], False),
}


def _loop(tmp: Path) -> Path:
    os.symlink("loop", tmp / "loop")
    return tmp / "loop"


def _file(tmp: Path) -> Path:
    (tmp / "a-file").write_text("x")
    return tmp / "a-file"


# Each bad place: where it is (from the test's folder and the disks) for a file output and for a folder one.
PLACES: dict[str, Callable[[Path, dict[str, Tmpfs], bool], Path]] = {
    "read-only disk": lambda tmp, disks, folder: disks["ro"].path / ("out" if folder else "out.json"),
    "full disk": lambda tmp, disks, folder: disks["full"].path / ("out" if folder else "out.json"),
    "parent is a file": lambda tmp, disks, folder: _file(tmp) / "out.json",
    "wrong kind": lambda tmp, disks, folder: _file(tmp) if folder else tmp,  # a file for a folder, a folder for a file
    "/proc": lambda tmp, disks, folder: Path("/proc/edgebench-out"),
    "symlink loop": lambda tmp, disks, folder: _loop(tmp) / "out.json" if folder else _loop(tmp),
}


def _listing(*folders: Path) -> dict[Path, list[str]]:
    return {f: sorted(os.listdir(f)) for f in folders}


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("command", COMMANDS)
def test_unwritable_output_is_one_line_before_any_work(command, place, disks, spec, tmp_path, capsys):
    argv, folder = COMMANDS[command]
    work = tmp_path / "work"
    work.mkdir()
    bad = PLACES[place](tmp_path, disks, folder)
    before = _listing(tmp_path, disks["ro"].path, disks["full"].path)
    args = [a.replace("WORK", str(work)) for a in argv]
    args = [str(bad) if a == "OUT" else str(spec) if a == "SPEC" else a for a in args]
    assert main(args) == ExitStatus.OUTPUT
    err = capsys.readouterr().err
    option = command.split()[-1]
    assert err.count("\n") == 1 and err.startswith(f"edgebench: error: cannot write {option} "), err
    assert "Traceback" not in err and str(bad) in err
    assert os.listdir(work) == []  # refused before converting or measuring: no other output was made
    assert _listing(tmp_path, disks["ro"].path, disks["full"].path) == before  # nothing left behind


def test_each_place_names_its_problem(disks, tmp_path, capsys):
    """The reason in each line is the real one, so the fix it names fits."""
    reasons = {"read-only disk": "read-only", "full disk": "is full", "parent is a file": "is a file, not a folder",
               "wrong kind": "it is a folder", "/proc": "cannot hold new files", "symlink loop": "points back to itself"}
    for place, reason in reasons.items():
        sub = tmp_path / place.replace(" ", "-").replace("/", "")
        sub.mkdir()
        assert main(["devices", "schema", "-o", str(PLACES[place](sub, disks, False))]) == ExitStatus.OUTPUT
        assert reason in capsys.readouterr().err, place
    assert main(["convert", MODEL, "--to", "onnx", "--cache-dir", str(_file(tmp_path))]) == ExitStatus.OUTPUT
    assert "it is a file, not a folder: pass a folder" in capsys.readouterr().err


def test_a_device_is_not_replaced(tmp_path, capsys):
    """An atomic write renames over its target: /dev/null (root may) must be refused, not replaced."""
    assert main(["devices", "schema", "-o", "/dev/null"]) == ExitStatus.OUTPUT
    assert "not a regular file" in capsys.readouterr().err
    assert Path("/dev/null").is_char_device()


def test_writable_outputs_still_written(tmp_path, capsys):
    """The checks leave a good path alone: missing folders are made when the output is written, not before."""
    out = tmp_path / "new" / "deeper" / "schema.json"
    assert main(["devices", "schema", "-o", str(out)]) == ExitStatus.OK
    assert out.is_file() and os.listdir(out.parent) == ["schema.json"]


def test_real_process_exit_status_and_one_line(disks, tmp_path):
    """The installed command, as CI runs it: exit 12 and one line, no traceback."""
    done = subprocess.run([sys.executable, "-m", "edgebench", "bench", MODEL, "--json",
                           str(disks["ro"].path / "r.json")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 12, done.stderr
    assert done.stderr.count("\n") == 1 and "read-only" in done.stderr and "Traceback" not in done.stderr
