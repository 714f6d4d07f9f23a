"""`edgebench sweep --shard I/N --run NAME`: N jobs of a CI matrix fill one shared run, each with its share of
the plan's cells; `report`, `gate` and `results export` read the run only once every shard is in."""

from __future__ import annotations

import dataclasses
import itertools
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebench.cli import main
from edgebench.config import SweepModel
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.sweep.plan import Cell
from edgebench.pipeline.sweep.shard import Shard, deal, dealt_cells, parse_shard, shard_plan
from edgebench.pipeline.sweep.stored import plan_sweep, run_plan, shard_point
from edgebench.store.db import SqliteStore
from tests.conftest import DIGITS

TINY = {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 10, "min_duration_s": 0.03,
        "max_duration_s": 5}


def demo_spec(path: Path, **over: object) -> Path:
    """The bundled demo's spec with its files named absolutely and tiny timing; ``over`` replaces fields."""
    spec = yaml.safe_load((DIGITS / "demo-sweep.yaml").read_text())
    for model in spec["models"]:
        for field in ("path", "dataset", "calibration"):
            model[field] = str(DIGITS / model[field])
    path.write_text(yaml.safe_dump({**spec, "timing": TINY, **over}))
    return path


def sweep(spec: Path, store: Path, cache: Path, *more: str) -> ExitStatus:
    return main(["sweep", str(spec), "--store", str(store), "--cache-dir", str(cache), *more])


def stored_keys(store: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT model, recipe, format, device, options FROM results").fetchall()


# --- the command line ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--shard", "3/2", "--run", "n"], "shard 3 of 2 does not exist"),
    (["--shard", "0/2", "--run", "n"], "shard 0 of 2 does not exist"),
    (["--shard", "1/0", "--run", "n"], "the shard count must be 1 to"),
    (["--shard", "a/b", "--run", "n"], "is not I/N"),
    (["--shard", "2", "--run", "n"], "is not I/N"),
    (["--shard", "-1/2", "--run", "n"], "is not I/N"),
    (["--shard", "1/2/3", "--run", "n"], "is not I/N"),
    (["--shard", "1/99999", "--run", "n"], "the shard count must be 1 to"),
    (["--shard", "1/2"], "needs --run NAME"),
    (["--run", "n", "--resume", "1"], "not both"),
    (["--run", "42"], "reads as a run id"),
    (["--run", " n"], "starts or ends with a space"),
    (["--run", ""], "needs a name"),
])
def test_bad_shard_options_are_one_line_before_any_work(tmp_path, capsys, args, message):
    store = tmp_path / "r.db"
    assert sweep(demo_spec(tmp_path / "s.yaml"), store, tmp_path / "cache", *args) == ExitStatus.USAGE
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not store.exists() and not (tmp_path / "cache").exists()  # refused before the store or the cache


def test_parse_shard_takes_each_shard_of_n():
    assert [parse_shard(f"{i}/3") for i in (1, 2, 3)] == [Shard(1, 3), Shard(2, 3), Shard(3, 3)]
    assert str(parse_shard(" 2/4 ")) == "2/4" and Shard(2, 4).args("nightly") == ["--shard", "2/4", "--run", "nightly"]


# --- the deal --------------------------------------------------------------------------------------------------
MODELS = [SweepModel(name=name, path=f"{name}.onnx") for name in ("a", "b", "c")]
RECIPES = ["fp32", "fp16", "int8", "prune:0.5+int8"]
FORMATS = ["onnx", "openvino", "tflite"]
DEVICES = ["local-cpu", "pi", "jetson"]


@st.composite
def plans(draw: st.DrawFn) -> list[Cell]:
    """The cells of a random plan: some models × recipes × formats × devices × thread counts, with some cells
    filtered out (as include/exclude do), in the order a plan lists them."""
    axes = [[values[i] for i in draw(st.lists(st.integers(0, len(values) - 1), min_size=1, unique=True))]
            for values in (MODELS, RECIPES, FORMATS, DEVICES, [1, 2, 4])]
    cells = [Cell(m, r, f, d, (("batch", 1), ("threads", t))) for m, r, f, d, t in itertools.product(*axes)]
    kept = draw(st.lists(st.booleans(), min_size=len(cells), max_size=len(cells)))
    return [c for c, keep in zip(cells, kept) if keep] or cells[:1]


@settings(derandomize=True, database=None, deadline=None, max_examples=200)
@given(cells=plans(), total=st.integers(1, 40), seed=st.randoms(use_true_random=False))
def test_every_cell_lands_in_exactly_one_shard(cells, total, seed):
    shards = deal(cells, total)
    assert len(shards) == total
    dealt = [c.key for shard in shards for c in shard]
    assert sorted(dealt, key=lambda k: k.astuple()) == sorted((c.key for c in cells), key=lambda k: k.astuple())
    assert len(set(dealt)) == len(dealt) == len(cells)  # each once: no cell in two shards, none in no shard
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1  # balanced to one cell
    shuffled = list(cells)
    seed.shuffle(shuffled)
    assert [[c.key for c in s] for s in deal(shuffled, total)] == [[c.key for c in s] for s in shards]  # the plan's
    # order does not matter, only the cells: every job of the matrix deals alike
    conversions = {c.conversion for c in cells}
    made = sum(len({c.conversion for c in shard}) for shard in shards)
    assert made - len(conversions) <= total - 1  # a slice boundary splits at most one conversion


def test_the_deal_does_not_depend_on_the_runtimes_installed_here(tmp_path):
    """A runner without OpenVINO skips its share of the openvino cells; every other cell lands where it would on
    a runner that has it, so two shards on two different runners never run a cell twice or leave one out."""
    full = plan_sweep(demo_spec(tmp_path / "s.yaml"))
    here = dataclasses.replace(full, cells=[c for c in full.cells if c.format != "openvino"],
                               skipped=[(c, "openvino is not installed here") for c in full.cells
                                        if c.format == "openvino"])
    assert [c.key for c in dealt_cells(here)] != [] and len(dealt_cells(here)) == len(full.cells)
    for shard in (Shard(i, 3) for i in (1, 2, 3)):
        everywhere, lacking = shard_plan(full, shard), shard_plan(here, shard)
        assert {c.key for c in lacking.cells} | {c.key for c, _ in lacking.skipped} == {c.key for c in everywhere.cells}


def test_cells_no_profile_runs_are_in_no_shard_but_listed_by_each(tmp_path):
    board = tmp_path / "pi.yaml"
    board.write_text("name: pi\nruntimes: [onnxruntime]\n")
    plan = plan_sweep(demo_spec(tmp_path / "s.yaml", devices=[str(board)]))
    assert len(plan.cells) == 4 and len(plan.skipped) == 8  # onnx only: the board has no openvino, tflite
    parts = [shard_plan(plan, Shard(i, 2)) for i in (1, 2)]
    assert [len(p.cells) for p in parts] == [2, 2]
    assert all(len(p.skipped) == 8 for p in parts)


# --- two shards fill one run -----------------------------------------------------------------------------------
def test_two_shards_fill_one_run_read_only_once_both_are_in(tmp_path, capsys, recipe_cache):
    spec, store = demo_spec(tmp_path / "s.yaml", formats=["onnx", "openvino"]), tmp_path / "r.db"
    plan = plan_sweep(spec)
    assert len(plan.cells) == 8

    assert sweep(spec, store, recipe_cache, "--shard", "1/2", "--run", "nightly") == 0
    out = capsys.readouterr().out
    assert "shard 1/2: 4 of 8 cells" in out and "shard 2 is still" not in out
    assert "report it once all are" in out
    first = stored_keys(store)
    assert len(first) == 4

    # until shard 2 is in, the run is shown as it stands but neither reported, gated nor exported
    assert main(["results", "list", "--store", str(store)]) == 0
    assert "1/2 shards" in capsys.readouterr().out
    assert main(["results", "show", "nightly", "--store", str(store)]) == 0
    assert "1/2 shards in (waiting for 2)" in capsys.readouterr().out
    for command in (["report", "nightly", "--html", str(tmp_path / "r.html")],
                    ["gate", "--baseline", "nightly", "--candidate", "nightly"],
                    ["results", "export", "nightly", "--csv", str(tmp_path / "r.csv")]):
        assert main([*command, "--store", str(store)]) == ExitStatus.USAGE, command
        err = capsys.readouterr().err.strip()
        assert "run nightly (id 1) has shard 1 of 2 in; shard 2 is missing" in err and "\n" not in err, err
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.csv").exists()

    assert sweep(spec, store, recipe_cache, "--shard", "2/2", "--run", "nightly") == 0
    assert "shard 2/2: 4 of 8 cells" in capsys.readouterr().out
    keys = stored_keys(store)
    assert len(keys) == len(set(keys)) == 8  # every cell once, in one run
    assert {tuple(c.key.astuple()) for c in plan.cells} == set(keys)
    with SqliteStore(store) as db:
        (run,) = db.runs()
        assert run.status == "finished" and run.shards is not None and run.shards.complete
        assert all(r.ok for r in db.results(run.id))

    assert main(["report", "nightly", "--store", str(store), "--html", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").exists()
    assert main(["gate", "--baseline", "nightly", "--candidate", "nightly", "--store", str(store)]) == 0
    capsys.readouterr()

    # a CI retry of a shard: its cells are all stored, so it measures nothing again and leaves the run finished
    assert sweep(spec, store, recipe_cache, "--shard", "1/2", "--run", "nightly") == 0
    out = capsys.readouterr().out
    assert "4 already done" in out and "0 cells measured now" in out
    assert stored_keys(store) == keys
    with SqliteStore(store) as db:
        assert db.run("nightly").status == "finished"


def test_a_shared_run_refuses_another_spec_or_shard_count(tmp_path, capsys):
    spec, store, cache = demo_spec(tmp_path / "s.yaml", recipes=["fp32"], formats=["onnx"]), tmp_path / "r.db", \
        tmp_path / "cache"
    assert sweep(spec, store, cache, "--shard", "1/2", "--run", "pr-7") == 0
    assert "shard 1/2: 1 of 1 cells" in capsys.readouterr().out
    assert sweep(spec, store, cache, "--shard", "2/3", "--run", "pr-7") == ExitStatus.USAGE
    assert "not 3" in capsys.readouterr().err
    other = demo_spec(tmp_path / "other.yaml", recipes=["fp16"], formats=["onnx"])
    assert sweep(other, store, cache, "--shard", "2/2", "--run", "pr-7") == ExitStatus.USAGE
    assert "another spec" in capsys.readouterr().err
    # a shard with no cell (fewer cells than shards) still joins and finishes, completing the run
    assert sweep(spec, store, cache, "--shard", "2/2", "--run", "pr-7") == 0
    assert "shard 2/2: 0 of 1 cells" in capsys.readouterr().out
    with SqliteStore(store) as db:
        assert db.run("pr-7").status == "finished" and len(db.results(db.run("pr-7").id)) == 1


class CtrlCWhileConverting:
    """The sweep's events, with Ctrl-C arriving as the first conversion starts."""

    def conversion_started(self, conversion: tuple[str, str, str]) -> None:
        raise KeyboardInterrupt

    def conversion_done(self, *args: object) -> None: ...
    def cell_started(self, *args: object) -> None: ...
    def cell_done(self, *args: object) -> None: ...
    def stopping(self, *args: object) -> None: ...


def test_an_interrupted_shard_keeps_the_run_open_until_it_runs_again(tmp_path, capsys):
    spec, store = demo_spec(tmp_path / "s.yaml", recipes=["fp16"], formats=["onnx"]), tmp_path / "r.db"
    shard = Shard(1, 2)
    plan = shard_plan(plan_sweep(spec), shard)
    with SqliteStore(store) as db:
        run_id, done = shard_point(db, plan, "n", shard, join=True)
        _, outcome = run_plan(plan, db, run_id, done, tmp_path / "cache", CtrlCWhileConverting(), spec, None, "n",
                              shard)
        assert outcome.interrupted and db.run(run_id).status == "running"
    assert sweep(spec, store, tmp_path / "cache", "--shard", "2/2", "--run", "n") == 0
    capsys.readouterr()
    assert main(["report", "n", "--store", str(store)]) == ExitStatus.USAGE
    assert "has shard 2 of 2 in; shard 1 is missing (not started, interrupted or failed" in capsys.readouterr().err
    assert sweep(spec, store, tmp_path / "cache", "--shard", "1/2", "--run", "n") == 0  # the job run again
    with SqliteStore(store) as db:
        run = db.run("n")
        assert run.status == "finished" and run.cells == 1 and run.shards is not None and run.shards.complete


def test_a_named_run_without_shards_is_a_new_run_each_time(tmp_path, capsys):
    spec, store = demo_spec(tmp_path / "s.yaml", recipes=["fp32"], formats=["onnx"]), tmp_path / "r.db"
    for _ in range(2):
        assert sweep(spec, store, tmp_path / "cache", "--run", "main-abc") == 0
    with SqliteStore(store) as db:
        assert [(r.name, r.shards, r.status) for r in db.runs()] == [("main-abc", None, "finished")] * 2


def test_two_shards_at_once_into_one_sqlite_store(tmp_path):
    """Two shards as two processes started together: one run is made (not two), each shard stores its cells,
    and the run is finished by whichever ends last. Each has its own artifact cache, as CI jobs do."""
    spec = demo_spec(tmp_path / "s.yaml", recipes=["fp32"], formats=["onnx"], options={"threads": [1, 2],
                                                                                       "batch": [1, 2]})
    store = tmp_path / "r.db"
    env = {**os.environ, "EDGEBENCH_DEVICE_WAIT_S": "120"}
    procs = [subprocess.Popen([sys.executable, "-m", "edgebench", "sweep", str(spec), "--store", str(store),
                               "--cache-dir", str(tmp_path / f"cache-{i}"), "--shard", f"{i}/2", "--run", "ci-1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
             for i in (1, 2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    keys = stored_keys(store)
    assert len(keys) == len(set(keys)) == 4
    with SqliteStore(store) as db:
        (run,) = db.runs()
        assert run.name == "ci-1" and run.status == "finished" and run.cells == 4
        assert run.shards is not None and run.shards.finished == (1, 2)


def test_the_python_api_runs_shards_into_one_run(tmp_path):
    from edgebench import api
    from tests.test_sweep import write_spec

    spec = write_spec(tmp_path / "s.yaml", options={"threads": [1, 2]})
    store = tmp_path / "r.db"
    with pytest.raises(EdgebenchError, match="needs run=NAME"):
        api.sweep(spec, store=store, shard="1/2", cache_dir=tmp_path / "c")
    first = api.sweep(spec, store=store, shard="1/2", run="ci-7", cache_dir=tmp_path / "c")
    assert first.run.status == "running" and first.run.shards.missing == (2,) and len(first.results) == 1
    second = api.sweep(spec, store=store, shard="2/2", run="ci-7", cache_dir=tmp_path / "c")
    assert second.run.id == first.run.id and second.run.status == "finished" and len(second.results) == 1
    assert {r.cell_key for r in first.results + second.results} == {r.cell_key for r in api.results("ci-7",
                                                                                                      store=store)}
