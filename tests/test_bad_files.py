"""Odd files and gate inputs: non-UTF-8, binary and deeply nested specs and profiles, a folder passed as a spec,
two profiles of one name, profile paths in a spec, result files with wrong types, and ``ab`` keeping the
status ``bench`` gives. Every case is one line on stderr with README's exit status, never a traceback; the
property tests generate malformed YAML and result files and hold every one to that contract."""

from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgebench.cli import main
from edgebench.environment import Environment
from edgebench.errors import ExitStatus
from tests.conftest import QUICK_TIMING

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "edgebench" / "bundled" / "demo" / "digits_cnn.onnx"
LOCAL_CPU = ROOT / "edgebench" / "bundled" / "profiles" / "local-cpu.yaml"
BINARY = bytes(range(256)) * 4  # not UTF-8, NULs and escape codes included


def run(*argv: str) -> tuple[int, str, str]:
    env = Environment(stdout=io.StringIO(), stderr=io.StringIO(), environ=os.environ)
    status = main(list(argv), env=env)
    return int(status), env.stdout.getvalue(), env.stderr.getvalue()  # type: ignore[attr-defined]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgebench: error: ") and "Traceback" not in err, err
    return lines[0]


def spec_text(devices: list[str]) -> str:
    return json.dumps({"name": "odd", "models": [{"name": "digits", "path": str(DIGITS)}], "recipes": ["fp32"],
                       "formats": ["onnx"], "devices": devices})


# --- odd spec and profile files ------------------------------------------------------------------------


@pytest.mark.parametrize("content, needle", [
    ("name: caf\xe9\n".encode("latin-1"), "not a UTF-8 text file"),
    (BINARY, "not a UTF-8 text file"),
    (("[" * 20_000 + "]" * 20_000).encode(), "nested too deeply"),
])
def test_an_odd_spec_or_profile_is_one_line_exit_6(tmp_path, content, needle):
    odd = tmp_path / "odd.yaml"
    odd.write_bytes(content)
    for argv in (["sweep", str(odd), "--dry-run"], ["bench", str(DIGITS), "--device", str(odd)]):
        status, _, err = run(*argv)
        assert status == ExitStatus.CONFIG and needle in one_line(err)


def test_a_folder_passed_as_a_spec_is_named_as_a_folder(tmp_path):
    status, _, err = run("sweep", str(tmp_path), "--dry-run")
    line = one_line(err)
    assert status == ExitStatus.CONFIG and "is a directory" in line and "not found" not in line


def test_a_broken_profile_in_device_profiles_is_skipped_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "device_profiles"
    folder.mkdir()
    (folder / "junk.yaml").write_bytes(BINARY)
    (folder / "board.yaml").write_text(LOCAL_CPU.read_text().replace("name: local-cpu", "name: board"))
    status, out, err = run("devices", "list")
    assert status == ExitStatus.OK and not err, err
    assert "warning: skipped an invalid profile" in out and "junk.yaml" in out and "local-cpu" in out
    status, _, err = run("bench", str(DIGITS), "--device", "junk")  # only using it is an error
    assert status == ExitStatus.CONFIG and "not a UTF-8 text file" in one_line(err)


def test_two_profiles_of_one_name_are_named_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "device_profiles"
    folder.mkdir()
    board = LOCAL_CPU.read_text().replace("name: local-cpu", "name: board")
    for file in ("board.yaml", "board.yml", "twin.yaml"):
        (folder / file).write_text(board)
    status, out, _ = run("devices", "list")
    flat = " ".join(out.split())
    assert status == ExitStatus.OK
    assert "two profiles named 'board'" in flat and "board.yaml, board.yml" in flat
    assert "board.yaml and" in flat and "twin.yaml both have name: board" in flat
    status, _, err = run("bench", str(DIGITS), "--device", "board")
    line = one_line(err)
    assert status == ExitStatus.CONFIG and "ambiguous" in line and "board.yml" in line


def test_profile_paths_in_a_spec_are_relative_to_the_spec(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "boards").mkdir(parents=True)
    (project / "boards" / "mine.yaml").write_text(LOCAL_CPU.read_text().replace("name: local-cpu", "name: mine"))
    spec = project / "sweep.yaml"
    spec.write_text(spec_text(["boards/mine.yaml"]))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    status, out, err = run("sweep", str(spec), "--dry-run")
    assert status == ExitStatus.OK, err
    assert "mine" in out


# --- ab keeps bench's statuses ------------------------------------------------------------------------


def test_ab_exits_as_bench_does(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    model = str(DIGITS)
    cases = {ExitStatus.NOT_FOUND: [str(tmp_path / "nope.onnx")], ExitStatus.INVALID_MODEL: [str(broken)],
             ExitStatus.DATA_MISMATCH: [model, "--shape", "nope:1x2"], ExitStatus.CONFIG: [model, "--device", "nodev"]}
    for expected, (first, *options) in cases.items():
        bench_status, _, bench_err = run("bench", first, *options)
        ab_status, _, ab_err = run("ab", "-b", first, "-c", model, "--max-rounds", "1", *options)
        assert bench_status == ab_status == expected, (expected, bench_err, ab_err)
        one_line(ab_err)


# --- gate inputs --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("gate") / "good.json"
    status, _, err = run("bench", str(DIGITS), "--threads", "1", *QUICK_TIMING, "--json", str(out))
    assert status == ExitStatus.OK, err
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def _with(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    edited = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = edited
    for key in parents:
        node = node[key]
    node[last] = value
    return edited


BAD_RESULTS = {
    "string samples": ("samples_ns", ["a", "b"], "'samples_ns.0'"),
    "samples a number": ("samples_ns", 3, "'samples_ns'"),
    "negative sample": ("samples_ns", [1000, -5], "0 ns or less"),
    "device a number": ("device", 12345, "device"),
    "peak a string": ("memory_mb.peak", "x", "'peak'"),
    "top1 a string": ("accuracy", {"top1": "x"}, "'top1'"),
    "options a list": ("options", [1], "'options'"),
    "flag an integer": ("validity.cv_ok", 1, "'cv_ok'"),
    "status a number": ("status", 7, "'status'"),
    "round sizes of text": ("extra.round_sizes", ["x"], "'round_sizes.0'"),
}


@pytest.mark.parametrize("case", list(BAD_RESULTS))
def test_a_result_of_wrong_types_is_exit_2_naming_file_and_field(good, tmp_path, case):
    field, value, needle = BAD_RESULTS[case]
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps(_with(good, field, value)))
    for pair in (("good.json", "bad.json"), ("bad.json", "good.json")):
        status, _, err = run("gate", "-b", str(tmp_path / pair[0]), "-c", str(tmp_path / pair[1]))
        line = one_line(err)
        assert status == ExitStatus.USAGE and "bad.json" in line and needle in line, line


def test_null_memory_is_an_empty_part_and_deep_nesting_is_refused(good, tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "null.json").write_text(json.dumps({**good, "memory_mb": None}))
    status, out, err = run("gate", "-b", str(tmp_path / "good.json"), "-c", str(tmp_path / "null.json"))
    assert status == ExitStatus.OK and not err and "missing" in out  # the candidate lost a measurement: said
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    status, _, err = run("gate", "-b", str(tmp_path / "good.json"), "-c", str(tmp_path / "deep.json"))
    assert status == ExitStatus.USAGE and "nested too deeply" in one_line(err)


# --- property-based: malformed result files, specs and profiles ---------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10)
RESULT_FIELDS = ["model", "model.name", "model.size_bytes", "device", "device.profile", "status", "error",
                 "samples_ns", "samples_ns.0", "latency_ms", "latency_ms.p50", "memory_mb", "memory_mb.peak",
                 "accuracy", "validity", "validity.throttled", "options", "extra", "extra.round_sizes",
                 "provenance", "schema_version", "batch", "iterations", "runtime", "duration_s"]


@st.composite
def result_files(draw: st.DrawFn, base: dict[str, Any]) -> str:
    """The good result with one field (or one list item) replaced by any JSON value; or any text."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.text(max_size=60))
    data = copy.deepcopy(base)
    head, _, rest = draw(st.sampled_from(RESULT_FIELDS)).partition(".")
    value = draw(JSON_VALUES)
    container = data.get(head)
    if rest and isinstance(container, dict):
        container[rest] = value
    elif rest and isinstance(container, list) and container:
        container[0] = value
    else:
        data[head] = value
    return json.dumps(data)


def test_any_malformed_result_file_passes_fails_or_is_one_line_exit_2(good, tmp_path):
    small = {**good, "samples_ns": good["samples_ns"][:20]}
    base = tmp_path / "good.json"
    base.write_text(json.dumps(small))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=result_files(small))
    def check(text: str) -> None:
        candidate = tmp_path / "candidate.json"
        candidate.write_text(text, encoding="utf-8", errors="surrogatepass")
        status, _, err = run("gate", "-b", str(base), "-c", str(candidate), "--rules", str(RULES))
        assert status in (ExitStatus.OK, ExitStatus.REGRESSION, ExitStatus.USAGE), err
        if status == ExitStatus.USAGE:
            one_line(err)
        else:
            assert "Traceback" not in err

    RULES = tmp_path / "rules.yaml"
    RULES.write_text("resamples: 200\n")
    check()


YAML_TEXT = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                     st.sampled_from(["name", "models", "recipes", "formats", "devices", "path", "connection",
                                      "runtimes", "threads", "options", "x"]), inner, max_size=4),
                 max_leaves=12).map(lambda v: json.dumps(v).encode()),
)


def test_any_malformed_spec_or_profile_is_one_line_with_a_documented_status(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "device_profiles").mkdir()
    odd = tmp_path / "device_profiles" / "odd.yaml"
    uses_it = tmp_path / "spec.yaml"
    uses_it.write_text(spec_text(["odd"]))

    @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(content=YAML_TEXT)
    def check(content: bytes) -> None:
        odd.write_bytes(content)
        status, _, err = run("sweep", str(odd), "--dry-run")
        assert status in (ExitStatus.USAGE, ExitStatus.NOT_FOUND, ExitStatus.CONFIG), err
        one_line(err)
        status, _, err = run("sweep", str(uses_it), "--dry-run")  # the profile used by name: refused, or planned
        assert status in (ExitStatus.OK, ExitStatus.CONFIG), err
        if status != ExitStatus.OK:
            one_line(err)
        status, out, err = run("devices", "list")
        assert status == ExitStatus.OK and not err and "local-cpu" in out, err

    check()
