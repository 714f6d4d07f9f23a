"""edgebench.api against the CLI: the same pipeline, so the same typed records; errors raise EdgebenchError
with the status the command exits with. (docs/python-api.md's examples run in tests/test_docs_examples.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from edgebench import api
from edgebench.cli import main
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.result import Result, read_results
from edgebench.store.db import SqliteStore
from tests.conftest import DIGITS, QUICK_TIMING

MODEL, EVAL, CALIB = DIGITS / "digits_cnn.onnx", DIGITS / "eval.npz", DIGITS / "calib.npz"
QUICK = {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 20, "min_duration_s": 0.05, "max_duration_s": 5}


def without_measurement(record: dict[str, Any]) -> dict[str, Any]:
    """What two runs of the same cell share: the record less its measured figures, times and machine state."""
    measured = {"samples_ns", "latency_ms", "iterations", "duration_s", "load_ms", "first_inference_ms",
                "throughput_per_s", "memory_mb", "environment", "created_utc", "validity", "timing", "extra"}
    model = {k: v for k, v in record["model"].items() if k != "cache_hit"}
    return {**{k: v for k, v in record.items() if k not in measured}, "model": model}


def test_bench_returns_the_record_the_cli_writes_and_the_store_keeps(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert main(["bench", str(MODEL), "--format", "openvino", "--dataset", str(EVAL), "--cache-dir", str(cache),
                 "--json", str(tmp_path / "cli.json"), *QUICK_TIMING]) == ExitStatus.OK
    (cli,) = read_results(tmp_path / "cli.json")
    result = api.bench(str(MODEL), format="openvino", dataset=EVAL, cache_dir=cache, timing=QUICK,
                       store=tmp_path / "results.db")
    assert type(result) is Result and type(result.latency_ms) is type(cli.latency_ms)
    assert without_measurement(result.to_dict()) == without_measurement(cli.to_dict())
    assert result.cell_key == cli.cell_key and result.model.cache_hit  # the CLI's conversion, found in the cache
    (run,) = api.runs(store=tmp_path / "results.db")
    assert (run.name, run.status, run.cells, run.spec["command"]) == ("bench-digits_cnn", "finished", 1, "bench")
    (stored,) = api.results(run.id, store=str(tmp_path / "results.db"))
    assert stored.to_dict() == result.to_dict()


def test_sweep_stores_what_the_cli_sweep_stores(tmp_path: Path) -> None:
    spec = {"name": "mini", "models": [{"name": "digits", "path": str(MODEL), "dataset": str(EVAL)}],
            "recipes": ["fp32"], "formats": ["onnx", "openvino"], "devices": ["local-cpu"],
            "options": {"threads": [1]}, "timing": QUICK}
    (tmp_path / "mini.yaml").write_text(yaml.safe_dump(spec))
    cache = str(tmp_path / "cache")
    assert main(["sweep", str(tmp_path / "mini.yaml"), "--store", str(tmp_path / "cli.db"),
                 "--cache-dir", cache]) == ExitStatus.OK
    swept = api.sweep(tmp_path / "mini.yaml", store=tmp_path / "api.db", cache_dir=cache)
    with SqliteStore(tmp_path / "cli.db", create=False) as db:
        by_cli = db.results(db.last_run().id)  # type: ignore[union-attr]
    def records(results: list[Result]) -> list[dict[str, Any]]:
        return [without_measurement(r.to_dict()) for r in sorted(results, key=lambda r: r.cell_key)]

    assert records(swept.results) == records(by_cli) and len(by_cli) == 2
    assert all(type(r) is Result and r.ok for r in swept.results)
    assert swept.outcome.cache_hits == 1 and swept.outcome.conversions == 0  # the CLI's openvino conversion
    assert swept.run.spec["name"] == "mini" and swept.run_id == api.runs(store=tmp_path / "api.db")[0].id
    # a resume of a finished run runs nothing and returns the same results
    again = api.sweep(tmp_path / "mini.yaml", store=tmp_path / "api.db", cache_dir=cache, resume=swept.run_id)
    assert again.outcome.results == [] and [r.to_dict() for r in again.results] == [r.to_dict() for r in swept.results]


def test_gate_writes_what_the_cli_gate_writes(tmp_path: Path) -> None:
    results = [api.bench(MODEL, dataset=EVAL, timing=QUICK, cache_dir=tmp_path / "cache")]
    api.write_results(results, tmp_path / "base.json")
    status = main(["gate", "--baseline", str(tmp_path / "base.json"), "--candidate", str(tmp_path / "base.json"),
                   "--md", str(tmp_path / "cli.md"), "--junit", str(tmp_path / "cli.xml")])
    report = api.gate(tmp_path / "base.json", results, md=tmp_path / "api.md", junit=tmp_path / "api.xml")
    assert status == report.exit_status == ExitStatus.OK and not report.failed
    assert (tmp_path / "api.md").read_text() == (tmp_path / "cli.md").read_text()
    assert (tmp_path / "api.xml").read_text() == (tmp_path / "cli.xml").read_text()
    assert {c.verdict for c in report.checks} == {"pass"}  # a run against itself


def test_compare_folds_the_precision_into_the_recipe_as_the_cli_does(tmp_path: Path) -> None:
    (row,) = api.compare(MODEL, "onnx", dataset=EVAL, recipe="prune:0.5", precision="int8", calibration=CALIB,
                         cache_dir=tmp_path / "cache")
    assert (row.format, row.recipe, row.precision, row.status) == ("onnx", "prune:0.5+int8", "int8", "ok")
    assert row.snr_db is not None and row.outputs["logits"]["judged"]


@pytest.mark.parametrize("call, status, words", [
    (lambda tmp: api.bench(tmp / "missing.onnx"), ExitStatus.NOT_FOUND, "missing.onnx"),
    (lambda tmp: api.bench(MODEL, device="no-such-board"), ExitStatus.CONFIG, "known devices"),
    (lambda tmp: api.bench(MODEL, dataset=tmp / "none.npz", timing=QUICK), ExitStatus.NOT_FOUND, "none.npz"),
    (lambda tmp: api.bench(MODEL, input_ranges={"input": (1, 1)}), ExitStatus.USAGE, "LOW < HIGH"),
    (lambda tmp: api.bench(MODEL, timing={"warmup_seconds": 1}), ExitStatus.CONFIG, "warmup_seconds"),
    (lambda tmp: api.convert(MODEL, ["onnx", "coreml"]), ExitStatus.USAGE, "coreml"),
    (lambda tmp: api.compare(MODEL, "onnx", task="guess"), ExitStatus.USAGE, "--task"),
    (lambda tmp: api.sweep({"name": "x", "models": [], "colour": 1}, store=tmp / "s.db"), ExitStatus.CONFIG,
     "sweep spec"),
    (lambda tmp: api.plan(tmp / "nope.yaml"), ExitStatus.NOT_FOUND, "nope.yaml"),
    (lambda tmp: api.runs(store=tmp / "none.db"), ExitStatus.NOT_FOUND, "none.db"),
    (lambda tmp: api.export(store=tmp / "none.db"), ExitStatus.USAGE, "csv="),
    (lambda tmp: api.gate(tmp / "a.json", tmp / "b.json"), ExitStatus.NOT_FOUND, "a.json"),
    (lambda tmp: api.gate([], [], rules={"metrics": {"latency": {}}}), ExitStatus.USAGE, "unknown metric 'latency'"),
    (lambda tmp: api.ab(MODEL, MODEL, max_rounds=0), ExitStatus.USAGE, "max_rounds"),
], ids=["missing-model", "unknown-device", "missing-dataset", "bad-range", "bad-timing", "unknown-format",
        "bad-task", "bad-spec", "missing-spec", "missing-store", "export-nowhere", "missing-results", "bad-rules",
        "no-rounds"])
def test_bad_input_raises_edgebench_error_with_the_cli_status(tmp_path: Path, call: Callable[[Path], object],
                                                              status: ExitStatus, words: str) -> None:
    with pytest.raises(EdgebenchError) as caught:
        call(tmp_path)
    assert caught.value.status is status and words in str(caught.value)
    assert "\n" not in str(caught.value)  # one line, as the CLI prints it


def test_import_edgebench_loads_the_api_only_when_used() -> None:
    code = ("import sys, edgebench; assert 'edgebench.api' not in sys.modules and 'numpy' not in sys.modules; "
            "bench = edgebench.api.bench; assert 'edgebench.api' in sys.modules; print(bench.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "bench"
    with pytest.raises(AttributeError, match="no attribute 'bench'"):
        getattr(__import__("edgebench"), "bench")
