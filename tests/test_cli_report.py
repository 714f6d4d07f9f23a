"""`edgebench report` end to end: the HTML opened in headless Chromium (a real screenshot, no console
errors), with 1 cell, with a real run of several cells and an error, and with ~50 cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.cli import main
from edgebench.errors import ExitStatus
from edgebench.result import Result
from edgebench.store.db import SqliteStore
from tests.browser import distinct_colours, needs_chromium, open_in_chromium
from tests.results_fixtures import real_results  # noqa: F401  (session fixture)

def report(store: Path, tmp: Path, *args: str) -> tuple[ExitStatus, Path, Path]:
    html, md = tmp / "report.html", tmp / "report.md"
    return main(["report", *args, "--store", str(store), "--html", str(html), "--md", str(md)]), html, md


@pytest.fixture
def store_path(tmp_path, real_results):
    path = tmp_path / "results.db"
    with SqliteStore(path) as store:
        run = store.create_run("nightly", {"recipes": ["fp32"], "formats": ["onnx"], "devices": ["local-cpu"]})
        for r in real_results:
            store.add_result(run, r)
        store.finish_run(run)
    return path


@needs_chromium
def test_the_console_check_catches_a_script_error(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><p>x</p><script>notDefined()</script></body></html>")
    _, console, _ = open_in_chromium(page, tmp_path)
    assert any("Uncaught ReferenceError" in line for line in console)


@needs_chromium
def test_report_of_a_real_run_renders_in_chromium(store_path, tmp_path, capsys):
    status, html, md = report(store_path, tmp_path, "--last")
    assert status == 0
    out = capsys.readouterr().out
    assert "best on local-cpu: digits-cnn · fp32 · onnx" in out
    png, console, dom = open_in_chromium(html, tmp_path)
    assert console == []
    assert distinct_colours(png) > 200  # text, plots and badges, not a blank page
    assert dom.count("<svg") == 3 and "Device: local-cpu" in dom and "not a readable ONNX model" in dom
    assert "| cell | p50 ms" in md.read_text()


@needs_chromium
def test_report_of_one_cell_and_of_fifty_cells_render(tmp_path, real_results):
    path = tmp_path / "results.db"
    with SqliteStore(path) as store:
        single = store.create_run("single", {})
        store.add_result(single, real_results[0])
        many = store.create_run("many", {})
        for i in range(48):  # the same real measurements under 48 cell keys: a layout check at scale
            source = real_results[i % 3].to_dict()
            store.add_result(many, Result.from_dict({**source, "options": {**source["options"], "variant": i}}))
        store.add_result(many, real_results[3])
    for run, rows in (("single", 1), ("many", 49)):
        status, html, _ = report(path, tmp_path / run, run)
        assert status == 0
        png, console, dom = open_in_chromium(html, tmp_path / run)
        assert console == [] and distinct_colours(png) > 100
        # device table rows + its header, the sizes table (1 artifact) + its header, and the device × variant matrix:
        # a header and one row per variant (every cell here is a variant of its own)
        assert dom.count("<tr") == (rows + 1) + 2 + (rows + 1)


def test_report_defaults_to_the_newest_run_next_to_the_store(store_path):
    assert main(["report", "--store", str(store_path)]) == 0
    assert (store_path.parent / "reports" / "run-1.html").is_file()


def test_report_last_writes_html_and_markdown_and_says_where(store_path, real_results, capsys):
    assert main(["report", "--last", "--store", str(store_path)]) == 0
    html, md = store_path.parent / "reports" / "run-1.html", store_path.parent / "reports" / "run-1.md"
    out = capsys.readouterr().out
    assert f"HTML report written to {html}" in out and f"Markdown summary written to {md}" in out
    top1 = next(r.accuracy.top1 for r in real_results if r.ok)
    for text in (html.read_text(), md.read_text(), out):  # top-1 as a percentage with one decimal everywhere
        assert f"{top1:.1%}" in text and f"{top1:.2%}" not in text
    assert "| cell | p50 ms" in md.read_text()


def test_report_refuses_a_run_and_last_together(store_path, capsys):
    assert main(["report", "1", "--last", "--store", str(store_path)]) == ExitStatus.USAGE
    assert "not both" in capsys.readouterr().err


def test_report_of_an_unknown_run_lists_recent_runs(store_path, tmp_path, capsys):
    status, html, _ = report(store_path, tmp_path, "7")
    assert status == ExitStatus.NOT_FOUND and not html.exists()
    assert "recent: 1 (nightly" in capsys.readouterr().err


def test_report_of_an_empty_store(tmp_path, capsys):
    SqliteStore(tmp_path / "empty.db").close()
    status, _, _ = report(tmp_path / "empty.db", tmp_path)
    assert status == ExitStatus.NOT_FOUND and "holds no runs yet" in capsys.readouterr().err
