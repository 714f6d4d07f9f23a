"""`edgebench results list | show | export` on a store filled with real results."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from edgebench.cli import main
from edgebench.errors import ExitStatus
from edgebench.store.runs import CSV_COLUMNS
from edgebench.result import read_results
from edgebench.store.db import SqliteStore
from edgebench.store.locate import open_store
from tests.postgres import pg_server, pg_url  # noqa: F401  (fixtures)
from tests.results_fixtures import DIGITS, SMALL_TIMING, real_results  # noqa: F401  (session fixture)

DIGITS_ONNX = DIGITS / "digits_cnn.onnx"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_path(request, tmp_path, real_results):
    """A store with two runs, in each dialect: an SQLite file, or a PostgreSQL database (its URL)."""
    path = str(tmp_path / "results.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with open_store(path) as store:
        old = store.create_run("older", {})
        store.finish_run(old)
        run = store.create_run("nightly", {"recipes": ["fp32"]})
        for r in real_results:
            store.add_result(run, r)
        store.finish_run(run)
    return path


def test_list_shows_runs_newest_first(store_path, capsys):
    assert main(["results", "list", "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert out.index("nightly") < out.index("older")
    assert "finished" in out


def test_show_prints_every_cell_and_the_error(store_path, capsys):
    assert main(["results", "show", "nightly", "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "run 2 nightly: finished" in out and "4 cells, 1 errors" in out
    assert out.count("digits-cnn") == 3 and "broken" in out and "error 1: " in out


def test_export_csv_and_json_parse_back(store_path, tmp_path, real_results):
    csv_out, json_out = tmp_path / "out" / "r.csv", tmp_path / "out" / "r.json"
    assert main(["results", "export", "2", "--csv", str(csv_out), "--json", str(json_out),
                 "--store", str(store_path)]) == 0
    rows = list(csv.DictReader(csv_out.open()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(real_results)
    for row, r in zip(rows, real_results):
        assert (row["model"], row["recipe"], row["format"], row["device"], row["status"]) == \
            (r.model.name, r.model.recipe, r.model.format, r.device.profile, r.status)
        if r.ok:
            # each figure is the one the raw samples give, recomputed here with numpy (nearest rank)
            ms = np.sort(np.asarray(r.samples_ns, dtype=np.int64)) / 1e6
            rank = lambda p: ms[(p * len(ms) + 99) // 100 - 1]  # noqa: E731
            assert [float(row[f"p{p}_ms"]) for p in (50, 90, 99)] == [rank(50), rank(90), rank(99)]
            assert ms[0] <= float(row["p50_ms"]) <= float(row["p90_ms"]) <= float(row["p99_ms"]) <= ms[-1]
            assert float(row["mean_ms"]) == pytest.approx(ms.mean(), rel=1e-12)
            assert float(row["cv"]) == pytest.approx(ms.std(ddof=1) / ms.mean(), rel=1e-9)
            assert int(row["iterations"]) == len(r.samples_ns) >= 20
            assert float(row["throughput_per_s"]) == pytest.approx(r.options["batch"] * 1e3 / ms.mean(), rel=1e-9)
            assert float(row["top1"]) == r.accuracy.top1 >= 0.97
            assert int(row["size_bytes"]) == DIGITS_ONNX.stat().st_size
            assert 0 < r.memory_mb.baseline <= r.memory_mb.after_load <= float(row["peak_mb"])
            # validity: booleans that say what the timing rules (SMALL_TIMING) say about these samples
            robust = 1.4826 * np.sort(np.abs(ms - rank(50)))[(50 * len(ms) + 99) // 100 - 1] / rank(50)
            assert row["cv_ok"] == str(bool(robust <= 0.1))
            assert row["min_iterations_met"] == str(len(r.samples_ns) >= SMALL_TIMING.min_iterations)
            assert row["min_duration_met"] == str(round(r.duration_s * 1e9) >= round(SMALL_TIMING.min_duration_s * 1e9))
            assert row["throttled"] == str(bool(r.environment["thermal"]["throttle_reasons"]))
        else:
            assert "not a readable ONNX model" in row["error"] and row["p50_ms"] == ""
    assert isinstance(json.loads(json_out.read_text()), list)
    assert [x.to_dict() for x in read_results(json_out)] == [r.to_dict() for r in real_results]


def test_export_of_one_cell_is_still_a_list(tmp_path, real_results):
    path = tmp_path / "results.db"
    with SqliteStore(path) as store:
        store.add_result(store.create_run("one", {}), real_results[0])
    out = tmp_path / "one.json"
    assert main(["results", "export", "one", "--json", str(out), "--store", str(path)]) == 0
    assert len(json.loads(out.read_text())) == 1


def test_export_needs_an_output(store_path, capsys):
    assert main(["results", "export", "2", "--store", str(store_path)]) == ExitStatus.USAGE
    assert "--csv OUT, --json OUT and/or --bencher OUT" in capsys.readouterr().err


def test_export_bencher_metric_format(store_path, tmp_path, real_results):
    """BMF: one benchmark per measured cell, latency in ns at the samples' median with the median's 95 %
    order-statistic interval, the artifact's size and top-1 where measured; the failed cell is left out."""
    out = tmp_path / "bmf.json"
    assert main(["results", "export", "nightly", "--bencher", str(out), "--store", str(store_path)]) == 0
    bmf = json.loads(out.read_text())
    measured = [r for r in real_results if r.ok]
    assert len(bmf) == len(measured) and len(measured) < len(real_results)
    from edgebench.store.bencher import benchmark_name

    for r in measured:
        key, name = r.cell_key, benchmark_name(r)
        assert name.startswith("/".join((key.model, key.recipe, key.format, key.device)))
        latency = bmf[name]["latency"]
        samples = np.asarray(r.samples_ns, dtype=float)
        assert latency["value"] == float(np.median(samples))
        assert latency["lower_value"] <= latency["value"] <= latency["upper_value"]
        assert latency["lower_value"] in samples and latency["upper_value"] in samples
        assert bmf[name]["file-size"]["value"] == r.model.size_bytes
        if r.accuracy.top1 is not None:
            assert bmf[name]["top1"]["value"] == r.accuracy.top1
        assert all(isinstance(m["value"], float) for m in bmf[name].values())


@pytest.mark.parametrize("n", [1, 5, 6, 9, 17, 100, 1001])
def test_median_interval_covers_at_least_95_percent(n):
    """The ranks chosen cover the median with probability ≥ 95 % (binomial), and one rank narrower would not;
    too few samples for any interval give the extremes."""
    from scipy import stats

    from edgebench.store.bencher import median_interval_ns

    samples = list(range(1, n + 1))
    lower, _, upper = median_interval_ns(samples)
    k = int(lower)  # the samples are their own ranks
    if k == 1 and upper == n and 1 - 2 * stats.binom.cdf(0, n, 0.5) < 0.95:
        return  # n too small: the extremes
    assert upper == n - k + 1
    assert 1 - 2 * stats.binom.cdf(k - 1, n, 0.5) >= 0.95
    assert 1 - 2 * stats.binom.cdf(k, n, 0.5) < 0.95
