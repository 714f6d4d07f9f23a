"""Issue 14, the gaps the first pass left: a NaN calibration set for a TFLite fp32/fp16 conversion, a bad
--output, a model input named labels in compare, a store row that is not JSON, runtime messages cut to their
first line, ab's device lock across its rounds, the default artifact cache checked up front, temp folders a
killed edgebench left, OpenVINO's num_streams bounded. Real files, processes and stores; no mocks."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from edgebench.cli import main
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.store.db import SqliteStore
from edgebench.text import one_line
from tests.conftest import DIGITS, QUICK_TIMING
from tests.results_fixtures import real_results  # noqa: F401  (session fixture)
from tests.sshd import gate_factory  # noqa: F401  (fixture)
from tests.test_sweep import _gated_cpu, _wait_for
from tests.test_sweep_signals import _alive, _start

MODEL = str(DIGITS / "digits_cnn.onnx")


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("edgebench: error: ") and "Traceback" not in err, err
    return err


def _no_python_device(tmp_path: Path) -> Path:
    """A device whose runner cannot start: anything that reaches a run fails with exit 6, not 5."""
    path = tmp_path / "no-python.yaml"
    path.write_text(yaml.safe_dump({"name": "no-python", "connection": {"type": "local"},
                                    "python": str(tmp_path / "no" / "python"), "runtimes": ["onnxruntime"]}))
    return path


# 1. a TFLite fp32/fp16 conversion takes only a sample from the calibration set: NaN in it is refused too
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_nan_calibration_for_a_float_tflite_conversion_is_refused_before_work(precision, tmp_path, capsys):
    data = dict(np.load(DIGITS / "calib.npz"))
    data["inputs"][7, 0, 2, 2] = np.inf
    np.savez(tmp_path / "nan.npz", **data)
    cache = tmp_path / "cache"
    status = main(["convert", MODEL, "--to", "tflite", "--precision", precision, "--calibration",
                   str(tmp_path / "nan.npz"), "--cache-dir", str(cache)])
    err = _error(capsys)
    assert status == ExitStatus.DATA_MISMATCH, err
    assert "holds NaN or Inf values in 1 of 300 samples, first sample 7" in err
    assert not cache.exists()  # refused before the converter's environment or any build folder


# 2. a bad --output is refused before anything runs (the device here could not even start a runner)
@pytest.mark.parametrize("command", ["bench", "compare"])
def test_bad_output_is_refused_before_the_run_naming_the_outputs(command, tmp_path, capsys):
    extra = ["--formats", "onnx"] if command == "compare" else QUICK_TIMING
    status = main([command, MODEL, "--output", "probs", "--device", str(_no_python_device(tmp_path)), *extra])
    err = _error(capsys)
    assert status == ExitStatus.DATA_MISMATCH, err
    assert "the model has no output 'probs' (its outputs: logits): pass one of them to --output" in err


def test_bad_output_is_refused_before_converting(tmp_path, capsys):
    cache = tmp_path / "cache"
    status = main(["bench", MODEL, "--format", "onnx", "--precision", "fp16", "--output", "probs",
                   "--cache-dir", str(cache), *QUICK_TIMING])
    assert status == ExitStatus.DATA_MISMATCH, _error(capsys)
    assert not cache.exists() or not any(cache.rglob("*.onnx"))


# 3. compare reads a model input named labels as an input, as bench does
def _labels_input_model(path: Path) -> Path:
    """Token ids in an input named ``labels`` [batch] → class scores [batch, 3] (a lookup)."""
    emb = numpy_helper.from_array(np.random.default_rng(0).normal(size=(3, 3)).astype(np.float32), "emb")
    graph = helper.make_graph([helper.make_node("Gather", ["emb", "labels"], ["scores"], axis=0)], "labels_in",
                              [helper.make_tensor_value_info("labels", TensorProto.INT64, ["batch"])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])], [emb])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_compare_reads_a_model_input_named_labels_as_an_input(tmp_path, capsys):
    model = _labels_input_model(tmp_path / "m.onnx")
    np.savez(tmp_path / "d.npz", labels=np.random.default_rng(1).integers(0, 3, 16))
    out = tmp_path / "rows.json"
    status = main(["compare", str(model), "--formats", "onnx", "--dataset", str(tmp_path / "d.npz"),
                   "--json", str(out), "--cache-dir", str(tmp_path / "cache")])
    assert status == ExitStatus.OK, capsys.readouterr().err
    row = json.loads(out.read_text())["rows"][0]
    assert row["status"] == "ok" and row["passed"] is True
    assert row["top1"] is None  # no labels: the array is the model's input, not its answers


# 4. a stored row that is not a JSON object is a damaged store: one line, exit 12
@pytest.mark.parametrize("table, text", [
    ("results", "[" * 100_000),  # nested past what the parser takes
    ("results", '{"schema_version": '),  # cut
    ("results", "[1, 2]"),  # JSON, not an object
    ("runs", "{" * 50_000),  # a run's spec
])
def test_a_stored_row_that_is_not_json_is_a_damaged_store(table, text, real_results, tmp_path, capsys):  # noqa: F811
    db = tmp_path / "results.db"
    with SqliteStore(db) as store:
        run = store.create_run("r", {"name": "r"})
        store.add_result(run, real_results[0])
        store.finish_run(run)
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE {table} SET {'result' if table == 'results' else 'spec'} = ?", (text,))
    conn.close()
    for argv in (["results", "show", "1"], ["report", "1", "--md", str(tmp_path / "r.md")], ["gate", "-b", "1", "-c", "1"]):
        status = main([*argv, "--store", str(db)])
        err = _error(capsys)
        assert status == ExitStatus.OUTPUT, (argv, err)
        assert f"{db} is a damaged results store" in err and "restore it from a copy" in err
    assert not (tmp_path / "r.md").exists()


# 5. a runtime's or converter's message keeps its cause (often on its last line), on one bounded line
def test_one_line_keeps_the_cause_and_bounds_the_length():
    assert one_line("Failed to load\n\n  ==> Context: node conv7 \x1b[31mbad\x1b[0m\n") == \
        "Failed to load; ==> Context: node conv7 bad"
    long = "start " + "x" * 5000 + " the cause"
    cut = one_line(long, limit=200)
    assert len(cut) < 210 and cut.startswith("start ") and cut.endswith(" the cause")


def test_a_model_that_fails_the_checker_names_the_node_from_the_later_line(tmp_path, capsys):
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], name="the_bad_node")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "bad.onnx")
    assert main(["bench", str(tmp_path / "bad.onnx"), *QUICK_TIMING]) == ExitStatus.INVALID_MODEL
    err = _error(capsys)
    assert "fails the ONNX checker" in err and "NoSuchOp" in err and "the_bad_node" in err  # the context line


# 6. ab holds the device across its rounds: another process waiting for it runs only after the last B
def _parent(pid_file: Path) -> int:
    pid = int(pid_file.read_text())
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def test_ab_holds_the_device_across_its_rounds(tmp_path, gate_factory):  # noqa: F811
    gate = gate_factory()
    profile = str(_gated_cpu(tmp_path, gate))
    ab = _start(tmp_path, "ab", "-b", MODEL, "-c", MODEL, "--device", profile, "--max-rounds", "2", *QUICK_TIMING,
                stdout=tmp_path / "ab.txt")
    gate.wait_started(1, alive=_alive(ab))  # A alone in flight
    waited = tmp_path / "bench.err"
    bench = _start(tmp_path, "bench", MODEL, "--device", profile, *QUICK_TIMING, stdout=tmp_path / "b.txt",
                   stderr=waited)
    _wait_for(lambda: "is in use by" in waited.read_text(), bench, "wait for the device")
    for k in (1, 2, 3, 4):  # A alone, B alone, 2 paired rounds, all ab's: the waiting bench never gets in between
        gate.wait_started(k, alive=_alive(ab))
        assert _parent(gate.started(k)) == ab.pid, f"job {k} is not ab's"
        gate.go(k)
    gate.wait_started(5, alive=lambda: bench.poll() is None or pytest.fail(waited.read_text()))
    assert _parent(gate.started(5)) == bench.pid
    gate.go(5)
    _, err = ab.communicate(timeout=120)
    assert ab.returncode in (ExitStatus.OK, ExitStatus.REGRESSION), err  # A = B: the verdict is the gate's
    assert bench.wait(120) == 0, waited.read_text()


# 7. (gate on a damaged store: 12, exact per damage in tests/test_store_readonly.py)

# 8. the default artifact cache is checked before any work, like --cache-dir
def test_unwritable_default_cache_is_refused_up_front(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGEBENCH_CACHE", raising=False)
    (tmp_path / ".edgebench").write_text("a file where the cache's folder belongs")
    assert main(["convert", MODEL, "--to", "onnx", "--precision", "fp16"]) == ExitStatus.OUTPUT
    err = _error(capsys)
    assert "cannot write the artifact cache" in err and ".edgebench/cache" in err and "--cache-dir" in err
    assert main(["bench", MODEL, "--format", "onnx", "--precision", "fp16", *QUICK_TIMING]) == ExitStatus.OUTPUT
    _error(capsys)
    monkeypatch.setenv("EDGEBENCH_CACHE", "/proc/edgebench-cache")
    assert main(["compare", MODEL, "--formats", "onnx", "--precision", "fp16"]) == ExitStatus.OUTPUT
    assert "/proc/edgebench-cache" in _error(capsys)
    assert main(["bench", MODEL, *QUICK_TIMING]) == ExitStatus.OK  # a bench that converts nothing needs no cache


# 9. temp folders a killed edgebench left in the system temp folder go at the next start
def test_leftover_temp_folders_of_dead_processes_are_removed_at_the_next_start(tmp_path):
    proc = subprocess.Popen(["true"])
    proc.wait()
    dead, alive = proc.pid, os.getpid()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    old = time.time() - 1200
    folders = {name: tmp / name for name in (f"edgebench-job-{dead}-a1b2", f"edgebench-onnx2tf-{dead}-c3d4",
                                             f"edgebench-int8-{dead}-fresh", f"edgebench-job-{alive}-live",
                                             "edgebench-locks-0", "not-ours-1")}
    for name, folder in folders.items():
        folder.mkdir()
        (folder / "inputs.npz").write_bytes(b"x")
        if "fresh" not in name:
            os.utime(folder, (old, old))
    started = _start(tmp_path, "bench", MODEL, *QUICK_TIMING, stdout=tmp_path / "out.txt")
    _, err = started.communicate(timeout=120)
    assert started.returncode == 0, err
    assert sorted(p.name for p in tmp.iterdir() if not p.name.startswith(".")) == sorted(
        [f"edgebench-int8-{dead}-fresh", f"edgebench-job-{alive}-live", "edgebench-locks-0", "not-ours-1"])


# 10. OpenVINO's num_streams is bounded like threads
def test_openvino_num_streams_is_bounded(tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO is in the 'openvino' extra")
    from edgebench.artifacts import cache as artifacts
    from edgebench.pipeline.bench import BenchRequest, execute
    from edgebench.pipeline.compare import COMPARE_TIMING

    xml = artifacts.ensure(DIGITS / "digits_cnn.onnx", "openvino", "fp32", root=tmp_path / "c").main
    for streams in (100_000, 0, "lots"):
        with pytest.raises(EdgebenchError, match=r"bad runtime option: num_streams .* is not AUTO or NUMA or 1 to "
                                                 r"\d+ \(each stream takes a thread at least") as err:
            execute(BenchRequest(model=xml, timing=COMPARE_TIMING, backend_options={"num_streams": streams}))
        assert err.value.status == ExitStatus.USAGE
    ok = execute(BenchRequest(model=xml, threads=1, timing=COMPARE_TIMING, backend_options={"num_streams": "auto"}))
    assert ok.result.ok
