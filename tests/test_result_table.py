"""The terminal results table (`bench`, `sweep`, `results show`): what failed validity in words with the
result's own figures and limits, the threads that actually ran, and top-1 as a percentage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.console import Console

from edgebench.cli import main
from edgebench.commands.tables import result_table
from edgebench.paths import demo_dir
from edgebench.report.data import validity_problems
from edgebench.result import Result, read_results
from tests.conftest import QUICK_TIMING

DEMO = demo_dir()


def table_rows(results: list[Result]) -> list[dict[str, str]]:
    """The table as rich draws it, one {column: cell} per row."""
    console = Console(width=400, record=True)
    console.print(result_table(results))
    lines = console.export_text().splitlines()
    head = next(line for line in lines if "┃" in line)
    columns = [c.strip() for c in head.strip("┃ ").split("┃")]
    return [dict(zip(columns, (c.strip() for c in line.strip("│ ").split("│")))) for line in lines if "│" in line]


def bench_json(tmp_path: Path, *args: str) -> Result:
    out = tmp_path / "r.json"
    assert main(["bench", str(DEMO / "digits_cnn.onnx"), "--dataset", str(DEMO / "eval.npz"), *args,
                 "--json", str(out)]) == 0
    return read_results(out)[0]


def variant(r: Result, **parts: dict) -> Result:
    """``r`` with some of its JSON parts updated (as a hand-made record would have them)."""
    d = r.to_dict()
    return Result.from_dict({**d, **{k: {**d[k], **v} for k, v in parts.items()}})


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Result:
    return bench_json(tmp_path_factory.mktemp("bench"), "--threads", "1", *QUICK_TIMING)


def test_a_run_cut_by_max_duration_says_what_failed_with_its_figures(tmp_path):
    r = bench_json(tmp_path, "--warmup-s", "0.01", "--warmup-iterations", "1", "--min-iterations", "10000000",
                   "--min-duration-s", "0.1", "--max-duration-s", "0.2")
    assert r.validity.min_iterations_met is False and r.validity.stopped_by_max_duration is True
    problems = validity_problems(r)
    assert f"too few iterations ({r.iterations} < 10000000)" in problems and "hit max duration (0.2 s)" in problems
    valid = table_rows([r])[0]["valid"]
    assert valid.startswith("no: ") and f"too few iterations ({r.iterations} < 10000000), hit max duration (0.2 s)" \
        in valid and "_met" not in valid


def test_noise_and_throttling_are_named_with_the_results_own_limit(measured):
    noisy = variant(measured, validity={"cv_ok": False}, latency_ms={"robust_cv": 0.14}, timing={"cv_threshold": 0.1})
    assert table_rows([noisy])[0]["valid"] == "no: noisy (rCV 14.0% > 10%)"
    stricter = variant(noisy, latency_ms={"robust_cv": 0.2}, timing={"cv_threshold": 0.125})
    assert validity_problems(stricter) == ["noisy (rCV 20.0% > 12.5%)"]
    old = variant(noisy)  # a record without the rule it ran under: still said, without figures
    old.timing.pop("cv_threshold")
    assert validity_problems(old) == ["noisy"]
    hot = variant(measured, validity={"cv_ok": True, "throttled": True})
    assert table_rows([hot])[0]["valid"] == "no: throttled"
    calm = variant(measured, validity={"cv_ok": True, "throttled": False})
    assert validity_problems(calm) == [] and table_rows([calm])[0]["valid"] == "ok"


def test_top1_is_a_percentage_in_the_table_and_a_fraction_in_the_json(measured):
    top1 = measured.accuracy.top1
    assert top1 is not None and 0.9 < top1 < 1  # the JSON keeps the fraction
    assert table_rows([measured])[0]["top-1"] == f"{top1:.1%}" == f"{round(top1 * 100, 1)}%"


def tasks() -> int:
    return len(os.listdir("/proc/self/task"))


def test_onnxruntime_default_threads_are_the_ones_its_pool_starts(measured, tmp_path):
    """thr 0 shows what ran: the runner's figure is checked against the threads a default ONNX Runtime session
    starts in this process (its intra-op pool: the calling thread plus one per extra thread)."""
    ort = pytest.importorskip("onnxruntime")
    before = tasks()
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(DEMO / "digits_cnn.onnx"), options, providers=["CPUExecutionProvider"])
    pool = 1 + tasks() - before
    del session
    default = bench_json(tmp_path, "--threads", "0", *QUICK_TIMING)
    assert default.options["threads"] == 0 and default.extra["threads_used"] == pool
    assert table_rows([default])[0]["thr"] == f"default ({pool})"
    assert measured.extra["threads_used"] == 1 and table_rows([measured])[0]["thr"] == "1"


def test_openvino_and_tflite_report_the_threads_they_ran(recipe_cache, tmp_path):
    cache = ["--cache-dir", str(recipe_cache)]
    ov = bench_json(tmp_path, "--format", "openvino", "--threads", "0", *cache, *QUICK_TIMING)
    used = ov.runtime["options"]["effective"]["INFERENCE_NUM_THREADS"]  # the compiled model's own property
    assert ov.extra["threads_used"] == int(used) >= 1 and table_rows([ov])[0]["thr"] == f"default ({used})"
    for asked, used in (("0", 1), ("2", 2)):  # the interpreter's default is one thread
        tfl = bench_json(tmp_path, "--format", "tflite", "--threads", asked, *cache, *QUICK_TIMING)
        assert tfl.extra["threads_used"] == used
        assert table_rows([tfl])[0]["thr"] == ("default (1)" if asked == "0" else "2")
