"""No silent passes (issue 15): a gate with nothing in common between its sides, or with no latency samples to
judge, is exit 2 naming what it got and the fix; a cell's key holds the runtime options that change the
measurement; `bench` and `sweep` name a model file alike, so their results gate against each other; a failed
candidate cell fails the gate. Real result files (the recorded runs) and real short runs of the digits model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from edgebench import api
from edgebench.cli import main
from edgebench.config import GateSpec
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.bench import cell_options, model_name
from edgebench.pipeline.gate import run_gate
from edgebench.result import DeviceInfo, ModelInfo, Result, ResultError, read_results, write_results
from edgebench.store.db import SqliteStore
from tests.conftest import DIGITS, QUICK_TIMING
from tests.test_gate_recorded import junit_cases, recorded

DIGITS_ONNX = DIGITS / "digits_cnn.onnx"


def gate(capsys: pytest.CaptureFixture[str], baseline: Path | str, candidate: Path | str,
         *extra: str) -> tuple[int, str]:
    """The gate's exit status and its stderr, which must be one line when it is not a verdict."""
    status = main(["gate", "--baseline", str(baseline), "--candidate", str(candidate), *extra])
    err = capsys.readouterr().err.strip()
    if status == ExitStatus.USAGE:
        assert err.startswith("edgebench: error: ") and len(err.splitlines()) == 1, err
    return int(status), err


def renamed(result: Result, name: str) -> Result:
    return dataclasses.replace(result, model=dataclasses.replace(result.model, name=name))


def files(tmp_path: Path, **sides: list[Result]) -> dict[str, Path]:
    out = {}
    for side, results in sides.items():
        write_results(results, tmp_path / f"{side}.json", always_list=True)
        out[side] = tmp_path / f"{side}.json"
    return out


# --- 1. nothing in common ------------------------------------------------------------------------------------

def test_a_candidate_of_another_model_is_exit_2_listing_both_sides(tmp_path, capsys):
    f = files(tmp_path, base=[recorded("quiet-a")], cand=[renamed(recorded("quiet-b"), "digits_cnn")])
    status, err = gate(capsys, f["base"], f["cand"], "--md", str(tmp_path / "g.md"))
    assert status == ExitStatus.USAGE
    assert "no candidate cell matches a baseline cell" in err
    assert "baseline cells: digits/fp32/onnx@local-cpu batch=1 threads=1;" in err
    assert "candidate cells: digits_cnn/fp32/onnx@local-cpu batch=1 threads=1" in err
    assert "bench --name" in err and "sweep spec's model name" in err
    assert not (tmp_path / "g.md").exists()  # no report of a gate that did not judge


def test_long_lists_are_cut_to_five_cells_each(tmp_path, capsys):
    base = [renamed(recorded("quiet-a"), f"m{k}") for k in range(8)]
    f = files(tmp_path, base=base, cand=[recorded("quiet-b")])
    status, err = gate(capsys, f["base"], f["cand"])
    assert status == ExitStatus.USAGE
    assert "m4/fp32/onnx" in err and "m5/" not in err and "… and 3 more; candidate cells: digits/" in err


def test_another_device_or_thread_count_matches_nothing(tmp_path, capsys):
    other_device = dataclasses.replace(recorded("quiet-b"), device=DeviceInfo(profile="rpi4"))
    other_threads = dataclasses.replace(recorded("quiet-b"), options={"threads": 4, "batch": 1})
    for cand, shown in ((other_device, "digits/fp32/onnx@rpi4"), (other_threads, "threads=4")):
        f = files(tmp_path, base=[recorded("quiet-a")], cand=[cand])
        status, err = gate(capsys, f["base"], f["cand"])
        assert status == ExitStatus.USAGE and shown in err, err


def test_an_empty_candidate_is_exit_2(tmp_path, capsys):
    f = files(tmp_path, base=[recorded("quiet-a")], cand=[])
    status, err = gate(capsys, f["base"], f["cand"])
    assert status == ExitStatus.USAGE and "holds no results" in err


# --- 2. no samples -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("side", ["baseline", "candidate"])
def test_a_matched_cell_without_samples_is_exit_2_naming_it(tmp_path, capsys, side):
    bare = dataclasses.replace(recorded("quiet-b"), samples_ns=[])  # its latency summary is still there
    f = files(tmp_path, base=[recorded("quiet-a") if side == "candidate" else bare],
              cand=[bare if side == "candidate" else recorded("quiet-b")])
    status, err = gate(capsys, f["base"], f["cand"])
    assert status == ExitStatus.USAGE
    assert f"no latency samples ('samples_ns' is empty) in {side} digits/fp32/onnx@local-cpu" in err
    assert "results export --json keep every sample" in err and "re-run the benchmark" in err


def test_without_latency_rules_samples_are_not_needed(tmp_path, capsys):
    f = files(tmp_path, base=[recorded("quiet-a")], cand=[dataclasses.replace(recorded("quiet-b"), samples_ns=[])])
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"metrics": {m: {"enabled": False}
                                                 for m in ("latency_p50", "latency_p90", "latency_p99")}}))
    status, _ = gate(capsys, f["base"], f["cand"], "--rules", str(rules))
    assert status == ExitStatus.OK


def test_an_export_keeps_the_samples_the_gate_needs(tmp_path, capsys):
    """What the message points at: results export --json writes every sample, so exports gate."""
    db = tmp_path / "r.db"
    for name, result in (("base", recorded("quiet-a")), ("cand", recorded("quiet-b"))):
        with SqliteStore(db) as store:
            run = store.create_run(name, {"name": name})
            store.add_result(run, result)
            store.finish_run(run)
        assert main(["results", "export", name, "--store", str(db), "--json", str(tmp_path / f"{name}.json")]) == 0
    assert read_results(tmp_path / "cand.json")[0].samples_ns == recorded("quiet-b").samples_ns
    status, _ = gate(capsys, tmp_path / "base.json", tmp_path / "cand.json")
    assert status == ExitStatus.OK


# --- 3. runtime options are part of the cell -----------------------------------------------------------------

def test_cell_options_key_the_users_backend_options_but_not_caches():
    assert cell_options(1, 1, {}, {}) == {"threads": 1, "batch": 1}  # the key every result without them has
    assert cell_options(1, 1, {"precision": "fp16"}, {}) == {"threads": 1, "batch": 1}  # the artifact's: its recipe
    job = {"precision": "fp16", "performance_hint": "THROUGHPUT", "cache_dir": "/tmp/ov", "warm_compile": False}
    given = {"performance_hint": "THROUGHPUT", "cache_dir": "/tmp/ov", "warm_compile": False}
    assert cell_options(2, 4, job, given) == {"threads": 2, "batch": 4, "backend": {"performance_hint": "THROUGHPUT"}}


def test_reports_show_backend_options_as_given():
    from edgebench.report.data import _format_options

    options = {"backend": {"execution_providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]},
               "shapes": {"input": [1, 1, 28, 28]}}
    assert _format_options(options, ["backend", "shapes"]) == \
        "backend=execution_providers=CUDAExecutionProvider+CPUExecutionProvider shapes=input=1x1x28x28"


def _bench(out: Path, *extra: str) -> Result:
    assert main(["bench", str(DIGITS_ONNX), "--threads", "1", *QUICK_TIMING, "--json", str(out), *extra]) == 0
    return read_results(out)[0]


def test_an_execution_provider_makes_another_cell(tmp_path, capsys):
    plain = _bench(tmp_path / "plain.json")
    cpu_ep = _bench(tmp_path / "cpu.json", "--option", "execution_providers=CPUExecutionProvider")
    basic = _bench(tmp_path / "basic.json", "--option", "graph_optimization_level=basic")
    assert plain.options == {"threads": 1, "batch": 1}  # no --option: the key results always had
    assert cpu_ep.options == {"threads": 1, "batch": 1, "backend": {"execution_providers": ["CPUExecutionProvider"]}}
    assert len({plain.cell_key, cpu_ep.cell_key, basic.cell_key}) == 3
    status, err = gate(capsys, tmp_path / "plain.json", tmp_path / "cpu.json")
    assert status == ExitStatus.USAGE
    assert "candidate cells: digits_cnn/fp32/onnx@local-cpu batch=1 execution_providers=CPUExecutionProvider " \
           "threads=1" in err
    status, err = gate(capsys, tmp_path / "cpu.json", tmp_path / "basic.json")
    assert status == ExitStatus.USAGE and "graph_optimization_level=basic" in err
    # the same options on both sides: one cell, judged (whatever the machine's load makes of the latency)
    report = run_gate([cpu_ep], read_results(tmp_path / "cpu.json"), GateSpec())
    assert {c.metric for c in report.checks} >= {"latency_p50", "size"} and not report.missing_cells


# --- 4. bench and sweep name a file alike --------------------------------------------------------------------

def test_a_bench_gates_against_a_sweep_of_the_same_file(tmp_path, capsys):
    spec = tmp_path / "nightly.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "nightly", "models": [{"path": str(DIGITS_ONNX)}],  # no name: named as bench names the file
        "recipes": ["fp32"], "formats": ["onnx"], "devices": ["local-cpu"], "options": {"threads": [1]},
        "timing": {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 20, "min_duration_s": 0.05,
                   "max_duration_s": 5}}))
    store = tmp_path / "r.db"
    assert main(["sweep", str(spec), "--store", str(store), "--json", str(tmp_path / "sweep.json")]) == 0
    bench = _bench(tmp_path / "bench.json", "--store", str(store))
    (swept,) = read_results(tmp_path / "sweep.json")
    assert swept.model.name == bench.model.name == "digits_cnn" and swept.cell_key == bench.cell_key
    capsys.readouterr()
    for baseline, candidate in ((tmp_path / "sweep.json", tmp_path / "bench.json"), ("nightly", "bench-digits_cnn")):
        status, _ = gate(capsys, baseline, candidate, "--store", str(store), "--junit", str(tmp_path / "j.xml"))
        assert status in (ExitStatus.OK, ExitStatus.REGRESSION)  # judged; the verdict is the machine's load's
        assert {"latency_p50", "size", "memory_peak"} <= set(junit_cases(tmp_path / "j.xml"))


def test_an_unnamed_sweep_model_takes_benchs_name_for_generic_stems(tmp_path):
    folder = tmp_path / "mynet"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(DIGITS_ONNX.read_bytes())
    plan = api.plan({"name": "s", "models": [{"path": "mynet/model.onnx"}, {"name": "given", "path": str(DIGITS_ONNX)}],
                     "options": {"threads": [1]}}, base_dir=tmp_path)
    assert [c.key.model for c in plan.cells] == [model_name(folder / "model.onnx"), "given"] == ["mynet", "given"]


def test_two_unnamed_models_of_one_name_are_refused_saying_why(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "digits.onnx").write_bytes(DIGITS_ONNX.read_bytes())
    with pytest.raises(EdgebenchError, match="give each model its own name") as err:
        api.plan({"name": "s", "models": [{"path": "a/digits.onnx"}, {"path": "b/digits.onnx"}]}, base_dir=tmp_path)
    assert err.value.status == ExitStatus.CONFIG


# --- 5. a failed candidate cell fails ------------------------------------------------------------------------

def test_a_sweep_candidate_with_one_error_cell_among_ok_cells_fails(tmp_path, capsys):
    """As a sweep stores a failed cell (pipeline/sweep/run.py): model, recipe, format, device and options only."""
    two = dataclasses.replace(recorded("rounds-a-0"), options={"threads": 2, "batch": 1})
    failed = Result(model=ModelInfo(name="digits", recipe="fp32", format="onnx"), device=DeviceInfo(profile="local-cpu"),
                    status="error", error=ResultError(kind="runner_failed", message="the runner died (signal 9)"),
                    options={"threads": 2, "batch": 1})
    f = files(tmp_path, base=[recorded("quiet-a"), two], cand=[recorded("quiet-b"), failed])
    status, _ = gate(capsys, f["base"], f["cand"], "--junit", str(tmp_path / "j.xml"))
    assert status == ExitStatus.REGRESSION
    cases = junit_cases(tmp_path / "j.xml")
    assert "the runner died (signal 9)" in cases["status"].find("failure").text
    assert cases["latency_p50"].find("failure") is None  # the ok cell was judged: quiet A/A, a pass
    assert json.loads(f["cand"].read_text())[1]["samples_ns"] == []  # an error cell needs no samples
