"""`edgebench report --history`: a real store of five runs built from real measurements, one cell made twice as
slow in run 4 (on a newer runtime, as a real regression comes) and another's top-1 cut by 5 points in run 3;
the gate must flag exactly those two points, in the HTML and the Markdown, and nothing on the steady cells."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.environment import Environment
from edgebench.errors import ExitStatus
from edgebench.pipeline.stats import summarize_ns
from edgebench.report.history import commit_tag
from edgebench.result import Result
from edgebench.store.db import SqliteStore
from tests.browser import distinct_colours, needs_chromium, open_in_chromium
from tests.results_fixtures import real_results  # noqa: F401  (session fixture)

RUNS = 5
SLOW_RUN, SLOW_CELL = 4, 0  # real_results[0]: threads 1, batch 1
WORSE_RUN, WORSE_CELL = 3, 1  # real_results[1]: threads 2, batch 1
STEADY_CELL = 2  # real_results[2]: threads 1, batch 4; real_results[3] is an error in every run


def slower(result: Result, factor: float) -> Result:
    samples = [int(s * factor) for s in result.samples_ns]
    runtime = {**result.runtime, "version": f"{result.runtime.get('version')}.post1"}  # another artifact: no A/A pair
    return dataclasses.replace(result, samples_ns=samples, latency_ms=summarize_ns(samples), runtime=runtime)


def less_accurate(result: Result, points: float) -> Result:
    metrics = {**result.accuracy.metrics, "top1": result.accuracy.metrics["top1"] - points / 100}
    return dataclasses.replace(result, accuracy=dataclasses.replace(result.accuracy, metrics=metrics))


def run(argv: list[str]) -> tuple[ExitStatus, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, env=Environment(stdout=out, stderr=err, environ={}))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, real_results: list[Result]) -> Path:  # noqa: F811
    path = tmp_path_factory.mktemp("history") / "results.db"
    with SqliteStore(path) as db:
        for number in range(1, RUNS + 1):
            run_id = db.create_run(f"nightly-{number}", {})
            for i, result in enumerate(real_results):
                if (number, i) == (SLOW_RUN, SLOW_CELL):
                    result = slower(result, 2.0)
                elif (number, i) == (WORSE_RUN, WORSE_CELL):
                    result = less_accurate(result, 5)
                db.add_result(run_id, result)
            db.finish_run(run_id)
    return path


def history(store: Path, out: Path, *args: str) -> tuple[ExitStatus, str, str]:
    return run(["report", "--history", "--store", str(store), "--out", str(out), *args])


def md_rows(text: str) -> dict[str, list[str]]:
    """The cells × runs table: each cell's label and its per-run entries."""
    rows = {}
    for line in text.split("## Gated regressions")[0].splitlines():
        if line.startswith("| ") and not line.startswith("| cell"):
            label, *points = [part.strip() for part in line.strip("| ").split(" | ")]
            rows[label] = points
    return rows


def test_markdown_marks_the_two_regressions_and_nothing_steady(store, tmp_path, real_results):  # noqa: F811
    status, out, err = history(store, tmp_path / "h.md")
    assert status == ExitStatus.OK and err == ""
    assert "2 points the gate fails" in out
    text = (tmp_path / "h.md").read_text(encoding="utf-8")
    with SqliteStore(store, read_only=True) as db:
        runs = list(reversed(db.runs()))
    heads = [f"{info.id} `{commit_tag(info)}`" if commit_tag(info) else str(info.id) for info in runs]
    assert "| cell | " + " | ".join(heads) + " |" in text  # the run id and its short commit, oldest first
    rows = md_rows(text)
    labels = list(rows)
    assert len(rows) == 4
    slow, worse, steady, broken = (next(label for label in labels if label.startswith(prefix)) for prefix in (
        "digits-cnn/fp32/onnx@local-cpu batch=1 threads=1", "digits-cnn/fp32/onnx@local-cpu batch=1 threads=2",
        "digits-cnn/fp32/onnx@local-cpu batch=4", "broken/"))
    marked = {label: [i + 1 for i, p in enumerate(points) if "✗" in p] for label, points in rows.items()}
    assert marked == {slow: [SLOW_RUN], worse: [WORSE_RUN], steady: [], broken: []}
    assert rows[broken] == ["error"] * RUNS  # a failed cell: a gap, never a figure
    p50 = real_results[SLOW_CELL].p50
    assert rows[slow][0].startswith(f"{p50:.3g}") and rows[slow][SLOW_RUN - 1].startswith(f"**{2 * p50:.3g}")
    table = text.split("## Gated regressions (2)")[1]
    assert re.search(rf"\| {re.escape(slow)} \| {SLOW_RUN} .*\| {SLOW_RUN - 1} .*\| latency_p50 \| \+100\.0% "
                     r"\| regression \|", table)
    assert re.search(rf"\| {re.escape(worse)} \| {WORSE_RUN} .*\| accuracy_top1 \| -5\.00 pt \| regression \|", table)


def test_html_marks_the_regressed_points_red_with_their_verdicts(store, tmp_path):
    status, _, _ = history(store, tmp_path / "h.html")
    assert status == ExitStatus.OK
    page = (tmp_path / "h.html").read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")  # self-contained
    figures = re.findall(r"<figure>(.*?)</figure>", page, flags=re.S)
    assert len(figures) == 4
    by_cell = {re.search(r'aria-label="history of ([^"]+)"', f)[1]: f for f in figures}  # type: ignore[index]
    slow = by_cell[next(k for k in by_cell if "threads=1" in k and "batch=1" in k)]
    steady = by_cell[next(k for k in by_cell if "batch=4" in k)]
    broken = by_cell[next(k for k in by_cell if k.startswith("broken/"))]
    assert "#dc2626" in slow and "#dc2626" not in steady  # the red point, and none on a steady cell
    assert f"gate against run {SLOW_RUN - 1}: latency_p50 regression" in slow
    assert "95% CI" in steady and "gate against run 1: pass" in steady
    assert "error: " in broken and "p50" not in broken.split("<title>", 1)[1].split("</title>")[0]
    regressions = page.split('id="regressions"')[1].split("</section>")[0]
    assert "Gated regressions (2)" in regressions and regressions.count("<tr>") == 3
    assert "+100.0%" in regressions and "-5.00 pt" in regressions


@needs_chromium
def test_html_renders_in_chromium(store, tmp_path):
    assert history(store, tmp_path / "h.html")[0] == ExitStatus.OK
    png, console, dom = open_in_chromium(tmp_path / "h.html", tmp_path)
    assert console == [] and distinct_colours(png) > 100
    assert dom.count('<svg class="plot"') == 4 and "Gated regressions (2)" in dom


def test_the_window_is_the_newest_runs_and_its_first_is_not_judged(store, tmp_path):
    status, out, _ = history(store, tmp_path / "h.md", "--runs", "3")
    assert status == ExitStatus.OK
    text = (tmp_path / "h.md").read_text(encoding="utf-8")
    assert "runs 3–5 (3 runs)" in text
    # run 3, first of the window, has nothing earlier to be judged by: only run 4's slowdown remains
    assert "1 point the gate fails" in out and "## Gated regressions (1)" in text


def test_filters_pick_cells_and_name_what_exists_when_nothing_matches(store, tmp_path):
    status, _, _ = history(store, tmp_path / "h.md", "--model", "digits-cnn", "--device", "local-cpu")
    assert status == ExitStatus.OK
    rows = md_rows((tmp_path / "h.md").read_text(encoding="utf-8"))
    assert len(rows) == 3 and all(label.startswith("digits-cnn/") for label in rows)
    status, _, err = history(store, tmp_path / "none.md", "--model", "resnet")
    assert status == ExitStatus.NOT_FOUND and err.count("\n") == 1 and not (tmp_path / "none.md").exists()
    assert "--model 'resnet'" in err and "'broken', 'digits-cnn'" in err and "'local-cpu'" in err
    status, _, err = history(store, tmp_path / "none.md", "--device", "jetson")
    assert status == ExitStatus.NOT_FOUND and "--device 'jetson'" in err and "'local-cpu'" in err


def test_reading_leaves_the_store_as_it_was(store, tmp_path):
    before = {p.name: p.read_bytes() for p in store.parent.iterdir()}
    assert history(store, tmp_path / "h.md")[0] == ExitStatus.OK
    assert {p.name: p.read_bytes() for p in store.parent.iterdir()} == before


def test_default_output_is_next_to_the_store(store, tmp_path):
    copy = tmp_path / "results.db"
    copy.write_bytes(store.read_bytes())
    status, out, _ = run(["report", "--history", "--store", str(copy), "--runs", "2"])
    assert status == ExitStatus.OK and f"written to {tmp_path / 'reports' / 'history.html'}" in out


def test_one_run_renders_with_nothing_judged(tmp_path, real_results):  # noqa: F811
    path = tmp_path / "one.db"
    with SqliteStore(path) as db:
        db.add_result(db.create_run("only", {}), real_results[0])
    status, out, _ = history(path, tmp_path / "h.md")
    assert status == ExitStatus.OK and "0 points the gate fails" in out
    assert "one run, so nothing is judged yet" in (tmp_path / "h.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("argv, status, says", [
    (["--history", "1"], ExitStatus.USAGE, "takes no run '1'"),
    (["--history", "--last"], ExitStatus.USAGE, "takes no --last"),
    (["--history", "--html", "x.html"], ExitStatus.USAGE, "--out FILE.html or --out FILE.md"),
    (["--history", "--out", "x.txt"], ExitStatus.USAGE, "name a .html or .md file"),
    (["--model", "digits-cnn"], ExitStatus.USAGE, "--model goes with --history"),
    (["--out", "x.html", "--runs", "2"], ExitStatus.USAGE, "--out, --runs go with --history"),
])
def test_options_that_do_not_fit_are_one_line(store, tmp_path, monkeypatch, argv, status, says):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["report", *argv, "--store", str(store)])
    assert code == status and says in err and err.count("\n") == 1 and list(tmp_path.iterdir()) == []


def test_stores_without_runs_or_no_store_at_all(tmp_path):
    SqliteStore(tmp_path / "empty.db").close()
    status, _, err = history(tmp_path / "empty.db", tmp_path / "h.md")
    assert status == ExitStatus.NOT_FOUND and "holds no runs yet" in err and err.count("\n") == 1
    status, _, err = history(tmp_path / "missing.db", tmp_path / "h.md")
    assert status == ExitStatus.NOT_FOUND and "no results store" in err
    (tmp_path / "notes.db").write_text("not a store")
    status, _, err = history(tmp_path / "notes.db", tmp_path / "h.md")
    assert status == ExitStatus.USAGE and "not an edgebench results store" in err
    assert not (tmp_path / "h.md").exists()
