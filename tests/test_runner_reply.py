"""The runner protocol, checked on the host: a board whose runner replies with malformed JSON, two replies, wrong
types or escape codes gives one line and exit 9 (or the error's own kind's status), never a traceback.

The "board" is a real local device profile whose ``python`` is a shell script printing a chosen reply; the
well-formed reply the cases start from is recorded from the real runner measuring the digits model."""

from __future__ import annotations

import copy
import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgebench.cli import main
from edgebench.devices.base import parse_reply
from edgebench.environment import Environment
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.runner.edgebench_runner import RunnerError, stage
from tests.conftest import QUICK_TIMING

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "edgebench" / "bundled" / "demo" / "digits_cnn.onnx"
FAKE = """#!/bin/sh
# A board: prints the reply in $REPLY_FILE (and $REPLY_ERR on stderr), or records the real runner's.
if [ -n "$RECORD" ]; then "$REAL_PYTHON" "$@" > "$RECORD"; rc=$?; cat "$RECORD"; exit $rc; fi
cat "$REPLY_FILE"
printf '%s\\n' "$REPLY_ERR" >&2
exit "${REPLY_RC:-0}"
"""
# Exit statuses a runner's reply may lead to (README's table): its error kinds' and 9.
REPLY_STATUSES = {ExitStatus.USAGE, ExitStatus.INVALID_MODEL, ExitStatus.DATA_MISMATCH, ExitStatus.CONFIG,
                  ExitStatus.RUNTIME_MISSING, ExitStatus.RUNNER_FAILED}


def _board(folder: Path, name: str, env: dict[str, str]) -> Path:
    script = folder / "fake-python.sh"
    if not script.exists():
        script.write_text(FAKE)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    profile = folder / f"{name}.yaml"
    profile.write_text(json.dumps({"name": name, "connection": {"type": "local"}, "python": str(script),
                                   "runtimes": ["onnxruntime"], "env": env}))
    return profile


def _bench(profile: Path) -> tuple[int, str]:
    env = Environment(stdout=io.StringIO(), stderr=io.StringIO(), environ=os.environ)
    status = main(["bench", str(DIGITS), "--device", str(profile), "--threads", "1", *QUICK_TIMING], env=env)
    return int(status), env.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The real runner's reply to a real job, through the fake board's recording mode."""
    folder = tmp_path_factory.mktemp("record")
    record = folder / "reply.json"
    status, err = _bench(_board(folder, "recorder", {"RECORD": str(record), "REAL_PYTHON": sys.executable}))
    assert status == ExitStatus.OK, err
    reply: dict[str, Any] = json.loads(record.read_text())
    assert reply["status"] == "ok" and reply["samples_ns"]
    return reply


def _reply_case(folder: Path, stdout: str, stderr: str = "", rc: int = 0) -> tuple[int, str]:
    folder.mkdir(parents=True, exist_ok=True)
    reply = folder / "reply.txt"
    reply.write_text(stdout, encoding="utf-8")
    return _bench(_board(folder, "board", {"REPLY_FILE": str(reply), "REPLY_ERR": stderr, "REPLY_RC": str(rc)}))


def _edited(reply: dict[str, Any], path: str, value: Any) -> str:
    data = copy.deepcopy(reply)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return json.dumps(data) + "\n"


def _one_clean_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgebench: error: "), err
    assert "Traceback" not in err and not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f for c in lines[0]), err
    return lines[0]


BAD_REPLIES = {
    "string samples": (lambda r: _edited(r, "samples_ns", ["a", "b"]), "'samples_ns.0'"),
    "no samples": (lambda r: _edited(r, "samples_ns", []), "'samples_ns'"),
    "negative sample": (lambda r: _edited(r, "samples_ns", [5, -3]), "'samples_ns.1'"),
    "boolean sample": (lambda r: _edited(r, "samples_ns", [True]), "'samples_ns.0'"),
    "samples missing": (lambda r: _edited(r, "samples_ns", ...), "'samples_ns'"),
    "memory a string": (lambda r: _edited(r, "memory_mb.peak", "lots"), "'memory_mb.peak'"),
    "validity unknown flag": (lambda r: _edited(r, "validity.fast", True), "'validity.fast'"),
    "runtime not an object": (lambda r: _edited(r, "runtime", "onnxruntime"), "'runtime'"),
    "two replies": (lambda r: json.dumps(r) + "\n" + json.dumps(r) + "\n", "2 JSON replies"),
    "two objects on one line": (lambda r: json.dumps(r) + json.dumps(r) + "\n", "not valid JSON"),
    "a list": (lambda r: json.dumps([r]) + "\n", "a JSON list"),
    "unknown status": (lambda r: _edited(r, "status", "maybe"), "status 'maybe'"),
    "nested too deeply": (lambda r: "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
}


@pytest.mark.parametrize("case", list(BAD_REPLIES))
def test_a_malformed_reply_is_a_protocol_error(recorded, tmp_path, case):
    make, needle = BAD_REPLIES[case]
    status, err = _reply_case(tmp_path, make(recorded))
    line = _one_clean_line(err)
    assert status == ExitStatus.RUNNER_FAILED, line
    assert "broke the protocol" in line and needle in line, line


def test_the_recorded_reply_replayed_is_accepted(recorded, tmp_path):
    status, err = _reply_case(tmp_path, json.dumps(recorded) + "\n")
    assert status == ExitStatus.OK, err


def test_a_board_error_keeps_its_kind_and_cause_without_escape_codes(tmp_path):
    message = "\x1b[31mcannot load model\x1b[0m\x07\n  at layer 3:\n  Conv weights have 5 dims \x1b]0;owned\x07(cause)"
    reply = {"status": "error", "error": {"kind": "invalid_model", "message": message}}
    status, err = _reply_case(tmp_path, json.dumps(reply) + "\n")
    line = _one_clean_line(err)
    assert status == ExitStatus.INVALID_MODEL
    assert "cannot load model; at layer 3:; Conv weights have 5 dims (cause)" in line, line
    assert "owned" not in line and "[31m" not in line


def test_a_died_runner_shows_its_stderr_without_escape_codes(tmp_path):
    status, err = _reply_case(tmp_path, "", stderr="Segmentation fault \x1b[2J\x1b[Hgone", rc=3)
    line = _one_clean_line(err)
    assert status == ExitStatus.RUNNER_FAILED and "died (exit status 3)" in line and "gone" in line, line


def test_the_runner_keeps_a_runtime_errors_cause():
    """A runtime's message often names the cause on its last line; the runner sends all of it, on one line."""
    with pytest.raises(RunnerError) as caught:
        with stage("data_mismatch", "the inputs do not fit the model: "):
            raise ValueError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions\n"
                             " index: 1 Got: 3 Expected: 1\n Please fix either the inputs or the model.")
    message = str(caught.value)
    assert caught.value.kind == "data_mismatch" and "\n" not in message
    assert "index: 1 Got: 3 Expected: 1" in message and message.endswith("the inputs or the model.")


# --- property-based: any stdout a board may print --------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
FIELDS = ["status", "samples_ns", "samples_ns.0", "duration_s", "load_ms", "first_inference_ms", "runtime",
          "runtime.name", "validity", "validity.min_iterations_met", "memory_mb", "memory_mb.peak", "environment",
          "environment.temperatures_c", "environment.frequency_mhz", "thermal", "thermal.sensor",
          "thermal.throttle_events", "warmup", "extra", "distinct_inputs", "outputs", "error"]


@st.composite
def replies(draw: st.DrawFn, base: dict[str, Any]) -> str:
    """A board's stdout: the good reply with one field replaced by any JSON value or removed, printed once,
    twice or broken off; or lines of any text."""
    kind = draw(st.sampled_from(["edit", "edit", "edit", "text", "twice", "cut"]))
    if kind == "text":
        lines = draw(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=40), max_size=4))
        return "\n".join(lines) + "\n"
    field = draw(st.sampled_from(FIELDS))
    data = copy.deepcopy(base)
    head, _, rest = field.partition(".")
    value = draw(st.none() | JSON_VALUES | st.just(...))
    container = data.get(head)
    if rest and isinstance(container, dict):
        if value is ...:
            container.pop(rest, None)
        else:
            container[rest] = value
    elif rest and isinstance(container, list) and container:
        if value is ...:
            del container[0]
        else:
            container[0] = value
    elif value is ...:
        data.pop(head, None)
    else:
        data[head] = value
    text = json.dumps(data)
    if kind == "twice":
        return text + "\n" + text + "\n"
    if kind == "cut":
        return text[: draw(st.integers(1, len(text) - 1))] + "\n"
    return text + "\n"


@pytest.fixture(scope="module")
def small_reply(recorded) -> dict[str, Any]:
    return {**recorded, "samples_ns": recorded["samples_ns"][:30]}


def test_any_board_stdout_gives_a_checked_reply_or_one_clean_line(small_reply):
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(stdout=replies(small_reply), rc=st.sampled_from([0, 1, None, -9]))
    def check(stdout: str, rc: int | None) -> None:
        try:
            reply = parse_reply(stdout, "", rc, "board")
        except EdgebenchError as exc:
            message = str(exc)
            assert exc.status in REPLY_STATUSES and "\n" not in message, message
            assert not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f for c in message), message
            return
        assert reply["status"] == "ok" and all(type(s) is int and s > 0 for s in reply["samples_ns"])

    check()


def test_any_reply_through_a_real_bench_exits_by_the_table(small_reply, tmp_path):
    """End to end, bounded: whatever the board prints, bench exits 0 or a reply status, with one line."""
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(stdout=replies(small_reply))
    def check(stdout: str) -> None:
        status, err = _reply_case(tmp_path / "case", stdout)
        if status == ExitStatus.OK:
            assert "Traceback" not in err
            return
        assert status in REPLY_STATUSES, err
        _one_clean_line(err)

    check()
