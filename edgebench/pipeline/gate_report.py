"""The gate's verdicts as a rich table (terminal), Markdown (GitHub step summary, PR comment) and JUnit XML
(one testcase per cell × metric, so CI systems show each regression as a failed test)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from edgebench.pipeline.gate import Check, GateReport
from edgebench.text import markdown_text, printable

COLOURS = {"pass": "green", "improved": "cyan", "regression": "red", "error": "red",
           "inconclusive": "yellow", "missing": "yellow"}
ORDER = {"error": 0, "regression": 1, "inconclusive": 2, "missing": 3, "regression (warn)": 4,
         "inconclusive (warn)": 5, "missing (warn)": 6, "improved": 7, "pass": 8}
ICONS = {"pass": "✅", "improved": "🚀", "regression": "❌", "error": "💥", "inconclusive": "❔", "missing": "❔"}


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:.4f} ms"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "%":
        return f"{value:.1f}%"
    return f"{value:.1f} {unit}"


def change(check: Check) -> str:
    if check.delta_points is not None:
        return f"{check.delta_points:+.2f} pt"
    return "—" if check.ratio is None else f"{check.ratio - 1:+.1%}"


def ci_text(check: Check) -> str:
    return "—" if check.ci is None else f"[{check.ci[0] - 1:+.1%}, {check.ci[1] - 1:+.1%}]"


def p_text(check: Check) -> str:
    if check.p is None:
        return "—"
    return "<1e-16" if check.p < 1e-16 else f"{check.p:.2g}"


def label(check: Check) -> str:
    """The verdict, marked when a rule of severity ``warn`` kept it from failing the gate."""
    return f"{check.verdict} (warn)" if check.verdict in ("regression", "inconclusive", "missing") \
        and not check.failed else check.verdict


def summary_line(report: GateReport) -> str:
    labels = Counter(label(c) for c in report.checks)
    counts = ", ".join(f"{n} {name}" for name, n in sorted(labels.items(), key=lambda kv: ORDER.get(kv[0], 9)))
    unmatched = []
    if report.missing_cells:
        unmatched.append(f"{len(report.missing_cells)} baseline cell(s) missing from the candidate")
    if report.new_cells:
        unmatched.append(f"{len(report.new_cells)} new cell(s) without a baseline")
    verdict = "FAIL" if report.failed else "PASS"
    return f"{verdict}: {len(report.checks)} checks ({counts or 'none'})" + \
        ("; " + "; ".join(unmatched) if unmatched else "")


def settle_lines(report: GateReport) -> list[tuple[str, str]]:
    """(what, how) for each cell left inconclusive: the cell with its inconclusive metrics, and the command
    that would decide them (or why none can be run here)."""
    metrics: dict[tuple[str, str], list[str]] = {}
    for check in report.checks:
        if check.settle:
            metrics.setdefault((check.cell, check.settle), []).append(check.metric)
    return [(f"{cell} ({', '.join(names)})", how) for (cell, how), names in metrics.items()]


def floor_lines(report: GateReport) -> list[str]:
    """Each gated device's noise floor between stored runs (only when stored runs were gated)."""
    return [f"{floor.device}: {floor.describe()}" for floor in report.noise_floors]


def terminal_notes(report: GateReport) -> list[str]:
    """Plain lines printed under the terminal table: the noise floors, then what decides each inconclusive cell."""
    return [f"noise floor on {line}" for line in floor_lines(report)] + \
        [f"to decide {what}: {how}" for what, how in settle_lines(report)]


def _fenced(lines: list[str]) -> list[str]:
    """``lines`` as a shell code block, its fence longer than any run of backticks in them."""
    fence = "`" * max([3] + [len(run) + 1 for line in lines for run in re.findall("`+", line)])
    return [fence + "sh", *lines, fence]


def _row(check: Check) -> list[str]:
    return [check.cell, check.metric, _value(check.baseline, check.unit), _value(check.candidate, check.unit),
            change(check), ci_text(check), p_text(check), check.rule, label(check), check.message]


HEADERS = ["cell", "metric", "baseline", "candidate", "change", "CI", "p", "rule", "verdict", "note"]


def gate_table(report: GateReport) -> Table:
    table = Table(title="edgebench gate", caption=summary_line(report))
    for h in HEADERS:
        table.add_column(h, justify="right" if h in ("baseline", "candidate", "change", "p") else "left")
    for check in report.checks:
        row = [escape(printable(text)) for text in _row(check)]  # names are the user's: not markup, no codes
        colour = COLOURS.get(check.verdict, "white") if check.failed or check.verdict in ("pass", "improved") \
            else "yellow"
        row[8] = f"[{colour}]{label(check)}[/{colour}]"
        table.add_row(*row)
    return table


def gate_markdown(report: GateReport, title: str = "edgebench gate") -> str:
    """GitHub-flavoured Markdown; regressions and errors first so they are seen without scrolling."""
    lines = [f"### {'❌' if report.failed else '✅'} {markdown_text(title)}: {summary_line(report)}", ""]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for check in sorted(report.checks, key=lambda c: ORDER.get(label(c), 9)):
        row = _row(check)
        row[8] = f"{ICONS.get(check.verdict, '') if check.failed or check.verdict in ('pass', 'improved') else '⚠️'} "\
            f"{label(check)}"
        lines.append("| " + " | ".join(markdown_text(cell) for cell in row) + " |")  # no HTML, no open <!--
    for heading, cells in (("Baseline cells missing from the candidate", report.missing_cells),
                           ("New cells without a baseline", report.new_cells),
                           ("Noise floor between stored runs", floor_lines(report))):
        if cells:
            lines += ["", f"**{heading}:**", *[f"- {markdown_text(c)}" for c in cells]]
    settle = settle_lines(report)
    if settle:
        lines += ["", "**To decide the inconclusive verdicts:**", ""]
        lines += _fenced([printable(line) for what, how in settle for line in
                          (f"# {what}", how if how.startswith("edgebench ") else f"# {how}")])
    return "\n".join(lines) + "\n"


def write_markdown(report: GateReport, path: Path, append: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as f:
        f.write(gate_markdown(report) + ("\n" if append else ""))


def gate_junit(report: GateReport) -> ET.ElementTree:
    failures = sum(c.failed for c in report.checks)
    suites = ET.Element("testsuites", name="edgebench gate", tests=str(len(report.checks)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name="edgebench gate", tests=str(len(report.checks)),
                          failures=str(failures), errors="0", skipped="0")
    for check in report.checks:
        case = ET.SubElement(suite, "testcase", classname=check.cell, name=check.metric, time="0")
        detail = (f"baseline {_value(check.baseline, check.unit)}, candidate {_value(check.candidate, check.unit)}, "
                  f"change {change(check)}, CI {ci_text(check)}, p {p_text(check)}, rule {check.rule or '—'}"
                  + (f"; {check.message}" if check.message else "")
                  + (f"; to decide: {check.settle}" if check.settle else ""))
        if check.failed:
            failure = ET.SubElement(case, "failure", type=check.verdict, message=f"{check.verdict}: {change(check)}")
            failure.text = detail
        else:
            ET.SubElement(case, "system-out").text = f"{label(check)}: {detail}"
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(report: GateReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    gate_junit(report).write(path, encoding="utf-8", xml_declaration=True)
