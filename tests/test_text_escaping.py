"""Names and messages from outside reach Markdown and terminals as literal text: ``<script>``, an open ``<!--``,
``|`` and backticks in a model's or device's name change nothing else in a report or a job summary, and escape
codes in a board's message never reach the terminal."""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from rich.console import Console

from edgebench.cli import main
from edgebench.config import GateSpec
from edgebench.environment import Environment
from edgebench.errors import ExitStatus
from edgebench.pipeline.gate import GateReport, compare
from edgebench.pipeline.gate_report import gate_markdown, gate_table
from edgebench.report import build_report, render_markdown
from edgebench.result import Result, ResultError
from edgebench.text import markdown_text, one_line, printable
from tests.results_fixtures import real_results  # noqa: F401  (a fixture)

HOSTILE = "<script>alert(1)</script> <!-- `x` | y"


def _renamed(result: Result, model: str, device: str) -> Result:
    return dataclasses.replace(result, model=dataclasses.replace(result.model, name=model),
                               device=dataclasses.replace(result.device, profile=device))


def _columns(html: str) -> set[int]:
    """The number of cells of each table row in ``html``."""
    rows = html.split("<tr>")[1:]
    return {row.split("</tr>")[0].count("<td") + row.split("</tr>")[0].count("<th") for row in rows}


def _html_of(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)  # raw HTML passes, as on GitHub


def test_hostile_names_in_the_report_markdown_stay_text(real_results):
    measured, failed = real_results[0], real_results[3]
    bad = dataclasses.replace(failed, error=ResultError("invalid_model", "<!-- model <b>broken</b> | `x`"))
    md = render_markdown(build_report([_renamed(measured, HOSTILE, "<!--board"), _renamed(measured, "b", "<!--board"),
                                       _renamed(bad, HOSTILE, "dev|x")]))  # two models: labels name them
    html = _html_of(md + "\n\nTHE END\n")
    assert "<script>" not in html and "<!--" not in html and "<b>" not in html
    assert "THE END" in html  # nothing after the names was swallowed by an open comment
    assert "&lt;script&gt;" in html and "&lt;!--board" in html
    # a `|` in a name made no extra column: 9 in the device tables, variant + 2 devices in the matrix
    assert _columns(html) == {9, 3}, md


def test_hostile_names_in_the_gate_summary_stay_text(real_results):
    base = _renamed(real_results[0], HOSTILE, "<!--board")
    report = GateReport(checks=compare(base, base, GateSpec()), missing_cells=[HOSTILE + "`"],
                        new_cells=["<!-- unclosed"])
    md = gate_markdown(report)
    html = _html_of(md + "\nTHE END\n")
    assert "<script>" not in html and "<!--" not in html and "THE END" in html
    assert _columns(html) == {10}, md
    console = Console(file=io.StringIO(), width=300)
    console.print(gate_table(dataclasses.replace(report, checks=[
        dataclasses.replace(c, cell="[/red] [bold]x\x1b[2J") for c in report.checks])))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[/red] [bold]x" in shown and "\x1b[2J" not in shown


def test_a_cells_error_with_escape_codes_is_printed_clean(tmp_path):
    """A real failure whose message holds escape codes (the model path): one clean line on stderr."""
    model = tmp_path / "evil\x1b]0;pwned\x07\x1b[31m.onnx"
    model.write_bytes(b"not a model")
    env = Environment(stdout=io.StringIO(), stderr=io.StringIO(), environ=os.environ)
    status = main(["bench", str(model)], env=env)
    err = env.stderr.getvalue()  # type: ignore[attr-defined]
    assert status == ExitStatus.INVALID_MODEL
    assert err.startswith("edgebench: error: ") and err.count("\n") == 1 and "\x1b" not in err and "pwned" not in err


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",))))
def test_printable_and_markdown_text_hold_their_promises(text):
    clean = printable(text)
    assert not any(ord(c) < 32 and c not in "\t\n" or 0x7f <= ord(c) <= 0x9f for c in clean)
    line = one_line(text)
    assert "\n" not in line and "\r" not in line
    md = markdown_text(text)
    assert "<" not in md and ">" not in md and "\n" not in md
    assert all(md[i - 1] == "\\" for i, c in enumerate(md) if c in "|`")


@pytest.mark.parametrize("text, shown", [
    ("\x1b[31mred\x1b[0m", "red"), ("a\x1b]0;title\x07b", "ab"), ("tab\tok\nline", "tab\tok\nline"),
    ("bell\x07 nul\x00 c1\x9b2Jx", "bell nul c1x"),
])
def test_printable_examples(text, shown):
    assert printable(text) == shown


def test_a_model_named_like_markup_is_reported(tmp_path: Path):
    """The name reaches Markdown through the whole CLI too: ``report --md`` of a stored run."""
    spec_result = tmp_path / "r.json"
    env = Environment(stdout=io.StringIO(), stderr=io.StringIO(), environ=os.environ)
    model = Path(__file__).resolve().parent.parent / "edgebench" / "bundled" / "demo" / "digits_cnn.onnx"
    status = main(["bench", str(model), "--name", HOSTILE, "--threads", "1", "--min-iterations", "5",
                   "--min-duration-s", "0.01", "--warmup-s", "0", "--store", str(tmp_path / "r.db"),
                   "--json", str(spec_result)], env=env)
    assert status == ExitStatus.OK, env.stderr.getvalue()  # type: ignore[attr-defined]
    status = main(["report", "--last", "--store", str(tmp_path / "r.db"), "--md", str(tmp_path / "r.md")], env=env)
    assert status == ExitStatus.OK, env.stderr.getvalue()  # type: ignore[attr-defined]
    html = _html_of((tmp_path / "r.md").read_text() + "\nTHE END\n")
    assert "<script>" not in html and "<!--" not in html and "THE END" in html
