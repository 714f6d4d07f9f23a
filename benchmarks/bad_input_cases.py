"""The cases of benchmarks/bad_inputs.py, by issue 14's classes. A case sets up its working folder and returns the
command lines to run there (the last one is judged), the statuses README's table gives for it, and optionally a
check of what it printed or left behind (a message when that is wrong)."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import yaml

from tests.contract import DIGITS, GOOD_NPZ, GOOD_ONNX, LOCAL_CPU, MODEL, SMALL_RESULT, SPEC_TIMING, place
from tests.test_data_bad_inputs import write_bomb
from tests.test_outputs_unwritable import COMMANDS as OUTPUT_COMMANDS
from tests.test_runner_reply import _board as board

if TYPE_CHECKING:
    from benchmarks.bad_inputs import Context

Argv = list[str]
Q = ["--warmup-s", "0.01", "--warmup-iterations", "2", "--min-iterations", "20", "--min-duration-s", "0.05",
     "--max-duration-s", "5"]
M = str(MODEL)


@dataclass
class Case:
    cls: str
    name: str
    argv: Callable[[Path, Context], list[Argv]]
    expect: frozenset[int]
    verify: Callable[[Path, int, str, str], str | None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 180
    signal_after: float | None = None
    signal: int = signal.SIGTERM
    alone: bool = False

    @property
    def command(self) -> str:
        return self.name.split()[0]


def write_spec(path: Path, **changes: Any) -> Path:
    spec = {"name": "small", "models": [{"name": "digits", "path": M, "dataset": str(DIGITS / "eval.npz")}],
            "recipes": ["fp32"], "formats": ["onnx"], "devices": ["local-cpu"], "options": {"threads": [1]},
            "timing": SPEC_TIMING}
    path.write_text(yaml.safe_dump({**spec, **changes}))
    return path


def npz(path: Path, **arrays: Any) -> Path:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    return path


def files(**content: bytes | str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        for name, data in content.items():
            (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)
    return make


def case(cls: str, name: str, argv: Argv | Callable[[Path, Context], Argv | list[Argv]], expect: set[int],
         **more: Any) -> Case:
    def lines(folder: Path, ctx: Context) -> list[Argv]:
        got = argv(folder, ctx) if callable(argv) else argv
        return [list(map(str, line)) for line in (got if got and isinstance(got[0], list) else [got])]
    return Case(cls, name, lines, frozenset(expect), **more)


# --- outputs × places ---------------------------------------------------------------------------------------

def output_cases(ctx: Context) -> list[Case]:
    writers: dict[str, tuple[list[str], bool]] = {**OUTPUT_COMMANDS}
    writers.update({f"demo {o}": (["demo", o, "OUT", *(["--dir", "WORK/demo"] if o != "--dir" else [])], o == "--dir")
                    for o in ("--dir", "--store", "--html", "--json")})
    writers["gate --md"] = (["gate", "-b", "1", "-c", "1", "--store", "WORK/none.db", "--md", "OUT"], False)
    writers["devices schema -o (twice)"] = (["devices", "schema", "--out", "OUT"], False)
    places = ["parent is a file", "symlink loop", "name too long", "proc", "device", *ctx.disks]
    found = []
    for name, (line, folder) in writers.items():
        for kind in [*places, *([] if folder else ["a folder"])]:
            def argv(work: Path, c: Context, line: list[str] = line, kind: str = kind) -> Argv:
                out = str(place(work, kind, c.disks))
                return [out if a == "OUT" else str(c.spec) if a == "SPEC" else a.replace("WORK", str(work / "w"))
                        for a in line]
            found.append(case("outputs", f"{name} → {kind}", argv, {12}, verify=nothing_made))
    return found


def nothing_made(folder: Path, status: int, out: str, err: str) -> str | None:
    made = sorted(p.name for p in (folder / "w").rglob("*")) if (folder / "w").exists() else []
    return f"work done before the refusal: {made}" if made else None


# --- disks, stores ------------------------------------------------------------------------------------------

def disk_cases(ctx: Context) -> list[Case]:
    if "full disk" not in ctx.disks:
        return []
    full = ctx.disks["full disk"]
    return [
        case("disk full", "sweep --store on a full disk", ["sweep", ctx.spec, "--store", full / "r.db"], {12}),
        case("disk full", "bench --json on a full disk", ["bench", M, *Q, "--json", full / "r.json"], {12}),
        case("disk full", "convert --cache-dir on a full disk",
             ["convert", M, "--to", "onnx", "--precision", "fp16", "--cache-dir", full / "c"], {12}),
        case("disk full", "report --html on a full disk",
             ["report", "--last", "--store", ctx.store, "--html", full / "r.html"], {12}),
        case("disk full", "results export --json on a full disk",
             ["results", "export", "1", "--store", ctx.store, "--json", full / "r.json"], {12}),
    ]


def damaged(ctx: Context, kind: str) -> bytes:
    good = ctx.store.read_bytes()
    flip = {"flipped schema": b"status", "name not UTF-8": b"small", "schema not text": b"TABLE"}
    if kind in flip:
        at = good.index(flip[kind])
        return good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1:]
    return {"cut": good[: len(good) // 2], "random": bytes(range(256)) * 16, "empty": b"", "text": b"hello\n",
            "header only": good[:100]}[kind]


def store_cases(ctx: Context) -> list[Case]:
    readers = {"results list": ["results", "list"], "results show": ["results", "show", "1"],
               "results export": ["results", "export", "1", "--json", "o.json"],
               "report": ["report", "1", "--md", "o.md"],
               "gate": ["gate", "-b", "1", "-c", "1"]}
    found = []
    for kind in ("cut", "flipped schema", "name not UTF-8", "schema not text", "random", "empty", "text",
                 "header only", "a folder"):
        for name, line in readers.items():
            def argv(work: Path, c: Context, line: list[str] = line, kind: str = kind) -> Argv:
                store = work / "s.db"
                store.mkdir() if kind == "a folder" else store.write_bytes(damaged(c, kind))
                return [*line, "--store", store]
            found.append(case("stores", f"{name} on a {kind} store", argv, {2, 12},
                              verify=no_partial("o.json", "o.md")))
    if "read-only disk" in ctx.disks:
        ro = ctx.disks["read-only disk"] / "results.db"
        for name, line in readers.items():
            found.append(case("stores", f"{name} on a read-only store", lambda w, c, line=line: [*line, "--store", ro],
                              {0, 1}))
        found += [case("stores", "sweep into a read-only store", ["sweep", ctx.spec, "--store", ro], {12}),
                  case("stores", "bench --store into a read-only store", ["bench", M, *Q, "--store", ro], {12})]
    return found


def team_cases(ctx: Context) -> list[Case]:
    """Issue 18's: a team store that cannot be used, a shard spec that is not one."""
    newer = "newer schema"

    def newer_store(work: Path, c: Context) -> Argv:
        import sqlite3

        store = work / "n.db"
        store.write_bytes(c.store.read_bytes())
        conn = sqlite3.connect(store)
        conn.execute("PRAGMA user_version=99")
        conn.commit()
        conn.close()
        return ["sweep", c.spec, "--store", store]
    found = [
        case("team", "sweep --store a URL no server answers", ["sweep", ctx.spec, "--store",
                                                               "postgresql://ci:pw@127.0.0.1:1/edgebench"], {12},
             verify=lambda f, s, o, e: "password shown" if ":pw@" in o + e else None),
        case("team", "results list --store a URL that is not one", ["results", "list", "--store",
                                                                    "postgresql://ci@127.0.0.1:5432/db?nope=1"], {2}),
        case("team", f"sweep into a store with a {newer}", newer_store, {2}),
    ]
    for shard in ("3/2", "0/2", "a/b", "2", "1/0", "-1/2"):
        found.append(case("team", f"sweep --shard {shard}", lambda w, c, shard=shard: [
            "sweep", c.spec, "--shard", shard, "--run", "ci", "--store", w / "r.db"], {2},
            verify=nothing_made_at("r.db")))
    return found


def source_cases(ctx: Context) -> list[Case]:
    """Issue 19's: a source model that is not what its name says."""
    found = []
    for name, data in {"a text file": b"these are notes\n", "a zip of something else": b"PK\x05\x06" + bytes(18),
                       "empty": b""}.items():
        for suffix in (".keras", ".h5", ".pt2", ".pt"):
            found.append(case("sources", f"bench {name} named model{suffix}", lambda w, c, data=data, suffix=suffix: [
                "bench", _write(w / f"model{suffix}", data), *Q], {4}))
    found.append(case("sources", "bench a folder that is not a SavedModel", lambda w, c: (
        (w / "exported").mkdir(), ["bench", w / "exported", *Q])[-1], {2, 3, 4}))
    return found


def nothing_made_at(*names: str) -> Callable[[Path, int, str, str], str | None]:
    def verify(folder: Path, status: int, out: str, err: str) -> str | None:
        made = [n for n in names if (folder / n).exists()]
        return f"made before the refusal: {made}" if made else None
    return verify


def no_partial(*names: str) -> Callable[[Path, int, str, str], str | None]:
    def verify(folder: Path, status: int, out: str, err: str) -> str | None:
        left = [n for n in names if (folder / n).exists()]
        return f"left behind after a failure: {left}" if left and status not in (0, 1, 11) else None
    return verify


# --- data ---------------------------------------------------------------------------------------------------

def _good() -> dict[str, np.ndarray]:
    data = np.load(io.BytesIO(GOOD_NPZ))
    return {"inputs": data["inputs"][:64], "labels": data["labels"][:64]}


def _with(key: str, value: Any) -> Callable[[Path], Path]:
    return lambda folder: npz(folder / "d.npz", **{**_good(), key: value})


def data_cases(ctx: Context) -> list[Case]:
    x = _good()["inputs"]
    nan = x.copy()
    nan[3, 0, 0, 0] = np.nan
    inf = x.copy()
    inf[5, 0, 1, 1] = np.inf
    datasets: dict[str, Callable[[Path], Path]] = {
        "labels past the classes": _with("labels", np.full(64, 1000)),
        "negative labels": _with("labels", -np.ones(64, np.int64)),
        "non-integer labels": _with("labels", np.full(64, 0.5)),
        "2-D labels": _with("labels", np.zeros((64, 3), np.int64)),
        "labels of another count": _with("labels", np.zeros(7, np.int64)),
        "NaN in eval data": _with("inputs", nan),
        "Inf in eval data": _with("inputs", inf),
        "all-NaN eval data": _with("inputs", np.full_like(x, np.nan)),
        "object array (pickled)": _with("inputs", np.array([{"a": 1}] * 64, dtype=object)),
        "5-byte text": lambda f: _write(f / "d.npz", b"hello"),
        "empty file": lambda f: _write(f / "d.npz", b""),
        "truncated": lambda f: _write(f / "d.npz", GOOD_NPZ[:5000]),
        "zip bomb": zip_bomb,
        "wrong dtype": _with("inputs", np.array(["a"] * 64)),
        "no samples": _with("inputs", x[:0]),
    }
    found = [case("data", f"bench --dataset {name}", lambda w, c, make=make: ["bench", M, *Q, "--dataset", make(w),
                                                                               "--json", "o.json"],
                  {5}, verify=no_partial("o.json")) for name, make in datasets.items()]
    for name in ("NaN in eval data", "Inf in eval data", "object array (pickled)", "5-byte text", "zip bomb"):
        make = datasets[name]
        found.append(case("data", f"convert int8 --calibration {name}", lambda w, c, make=make: [
            "convert", M, "--to", "onnx", "--precision", "int8", "--calibration", make(w), "--cache-dir", w / "c"],
            {5}))
        found.append(case("data", f"compress int8 --calibration {name}", lambda w, c, make=make: [
            "compress", M, "-r", "int8", "--to", "onnx", "--calibration", make(w), "--cache-dir", w / "c"], {5}))
    found.append(case("data", "5-byte text .npz is not called pickled", lambda w, c: [
        "bench", M, *Q, "--dataset", datasets["5-byte text"](w)], {5},
        verify=lambda f, s, o, e: "says pickled" if "pickle" in e else None))
    return found


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def zip_bomb(folder: Path) -> Path:
    """2 GiB of zeros declared, ~2 MB on disk: refused from its header (past the 1 GiB default), never inflated."""
    write_bomb(folder / "d.npz", "inputs", (1 << 23, 1, 8, 8))
    return folder / "d.npz"


# --- limits -------------------------------------------------------------------------------------------------

def limit_cases(ctx: Context) -> list[Case]:
    options = {
        "--threads 100000": ["--threads", "100000"], "--threads -1": ["--threads", "-1"],
        "--threads 2**63": ["--threads", str(2**63)], "--batch 2**31": ["--batch", str(2**31)],
        "--batch 0": ["--batch", "0"], "--input-range x:5:1": ["--input-range", "x:5:1"],
        "--input-range input:5:1": ["--input-range", "input:5:1"], "--input-range input:nan:1":
        ["--input-range", "input:nan:1"], "--shape dim 2**31": ["--shape", f"input:{2**31}x1x8x8"],
        "--shape dim -5": ["--shape", "input:-5x1x8x8"],
        "--option unknown": ["--option", "graph_optimisation_level=all"],
        "--option bad value": ["--option", "graph_optimization_level=bogus"], "--option no =": ["--option", "threads"],
        "--input-value nan": ["--input-value", "input=nan"],
    }
    found = [case("limits", f"bench {name}", ["bench", M, *Q, *line], {2, 5, 6}) for name, line in options.items()]
    for recipe in ("cluster:1000000", "", "+", "prune:1.5", "cluster:1", "prune:0.5+prune:0.5", "int8+prune:0.5"):
        found.append(case("limits", f"compress -r {recipe!r}", ["compress", M, "-r", recipe, "--to", "onnx",
                                                                "--cache-dir", ctx.cache], {2, 5}))
    for name, change in {"threads: [-1]": {"options": {"threads": [-1]}}, "batch: [0]": {"options": {"batch": [0]}},
                         "threads: [100000]": {"options": {"threads": [100000]}},
                         "unknown option": {"options": {"threads": [1], "colour": [1]}},
                         "timing negative": {"timing": {**SPEC_TIMING, "min_iterations": -5}},
                         "runtime option misspelt": {"runtime_options": {"onnxruntime": {"graph_optimisation": "all"}}},
                         "empty recipe": {"recipes": [""]}}.items():
        found.append(case("limits", f"spec {name}", lambda w, c, change=change: [
            "sweep", write_spec(w / "s.yaml", **change), "--dry-run"], {6}))
    found.append(case("limits", "profile threads 100000", lambda w, c: [
        "bench", M, *Q, "--device", _profile(w / "p.yaml", threads=100000)], {6}))
    return found


def _profile(path: Path, **changes: Any) -> Path:
    path.write_text(yaml.safe_dump({**LOCAL_CPU, "name": path.stem, **changes}))
    return path


# --- processes ----------------------------------------------------------------------------------------------

def _long_spec(folder: Path) -> Path:
    return write_spec(folder / "long.yaml", options={"threads": [1, 2, 3, 4]},
                      timing={**SPEC_TIMING, "min_duration_s": 2.0, "max_duration_s": 3})


def _run_state(folder: Path, status: int, out: str, err: str) -> str | None:
    import sqlite3

    with sqlite3.connect(f"file:{folder / 'r.db'}?mode=ro", uri=True) as db:
        state = db.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    if not state or state[0] != "interrupted":
        return f"run left as {state}"
    if "--store" not in err:
        return "the resume hint leaves out --store"
    left = subprocess.run(["pgrep", "-f", f"{folder}.*edgebench_runner"], capture_output=True, text=True).stdout
    return f"runner left behind: {left.split()}" if left.strip() else None


def process_cases(ctx: Context) -> list[Case]:
    sweep = lambda w, c: ["sweep", _long_spec(w), "--store", w / "r.db", "--cache-dir", c.cache]  # noqa: E731
    return [
        case("processes", "sweep SIGTERM mid-run", sweep, {143}, verify=_run_state, signal_after=4.0, alone=True),
        case("processes", "sweep SIGINT mid-run", sweep, {130}, verify=_run_state, signal_after=4.0,
             signal=signal.SIGINT, alone=True),
        case("processes", "sweep --resume with a changed spec", lambda w, c: [
            ["sweep", write_spec(w / "s.yaml"), "--store", w / "r.db", "--cache-dir", c.cache],
            ["sweep", write_spec(w / "s2.yaml", options={"threads": [2]}), "--store", w / "r.db", "--resume", "1"]],
            {2, 6}),
        case("processes", "two sweeps on one device (--device-wait 0)", _two_sweeps, {8, 11}, alone=True,
             timeout=240),
    ]


def _two_sweeps(folder: Path, ctx: Context) -> list[Argv]:
    """The first one started in the background here (it holds local-cpu for ~8 s); the judged second one waits 0 s."""
    import os

    first = subprocess.Popen([sys.executable, "-m", "edgebench", "sweep", str(_long_spec(folder)), "--store",
                              str(folder / "a.db"), "--cache-dir", str(ctx.cache)], cwd=folder,
                             env={**os.environ, "EDGEBENCH_LOCK_DIR": str(ctx.root / "locks")},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import time

    time.sleep(3.0)
    assert first.poll() is None
    (folder / "first.pid").write_text(str(first.pid))
    return [["sweep", str(write_spec(folder / "b.yaml")), "--store", str(folder / "b.db"), "--cache-dir",
             str(ctx.cache), "--device-wait", "0"]]


# --- runner protocol ----------------------------------------------------------------------------------------

def _board(folder: Path, stdout: str, stderr: str = "", rc: int = 0) -> Path:
    """A local board whose runner prints ``stdout`` (tests/test_runner_reply.py's fake python)."""
    (folder / "reply.txt").write_text(stdout)
    return board(folder, "board", {"REPLY_FILE": str(folder / "reply.txt"), "REPLY_ERR": stderr, "REPLY_RC": str(rc)})


REPLY = {"status": "ok", "samples_ns": [1000, 1100, 1200] * 10, "duration_s": 0.1, "load_ms": 1.0,
         "first_inference_ms": 1.0, "runtime": {"name": "onnxruntime", "version": "1"}}


def protocol_cases(ctx: Context) -> list[Case]:
    replies = {
        "string samples": json.dumps({**REPLY, "samples_ns": ["a"]}),
        "two JSON objects": json.dumps(REPLY) + "\n" + json.dumps(REPLY),
        "two objects on one line": json.dumps(REPLY) * 2,
        "a list": json.dumps([REPLY]),
        "unknown status": json.dumps({**REPLY, "status": "maybe"}),
        "deeply nested": "[" * 100_000 + "]" * 100_000,
        "empty stdout": "",
        "not JSON": "hello board\n",
        "negative sample": json.dumps({**REPLY, "samples_ns": [5, -3]}),
        "cut short": json.dumps(REPLY)[:40],
        "memory a string": json.dumps({**REPLY, "memory_mb": {"peak": "lots"}}),
    }
    found = [case("protocol", f"bench on a board replying {name}",
                  lambda w, c, text=text: ["bench", M, "--threads", "1", *Q, "--device", _board(w, text)], {9})
             for name, text in replies.items()]
    found.append(case("protocol", "bench on a board whose runner dies", lambda w, c: [
        "bench", M, *Q, "--device", _board(w, "", "Killed", 137)], {9}))
    return found


# --- odd files ----------------------------------------------------------------------------------------------

BINARY = bytes(range(256)) * 4


def odd_file_cases(ctx: Context) -> list[Case]:
    found = []
    for name, content in {"non-UTF-8": "name: caf\xe9\n".encode("latin-1"), "binary": BINARY,
                          "deeply nested": ("[" * 20_000 + "]" * 20_000).encode(), "empty": b"",
                          "a list": b"- a\n- b\n", "tabs": b"name:\tx\n\tmodels: [\n"}.items():
        found.append(case("odd files", f"sweep --dry-run of a {name} spec", lambda w, c, content=content: [
            "sweep", _write(w / "s.yaml", content), "--dry-run"], {6}))
        found.append(case("odd files", f"bench --device a {name} profile", lambda w, c, content=content: [
            "bench", M, *Q, "--device", _write(w / "p.yaml", content)], {6}))
        found.append(case("odd files", f"devices list beside a {name} profile", lambda w, c, content=content: (
            (w / "device_profiles").mkdir(), _write(w / "device_profiles" / "odd.yaml", content),
            ["devices", "list"])[-1], {0}, verify=lambda f, s, o, e: None if "local-cpu" in o and "odd.yaml" in o + e
            else "the bad profile not named, or the good ones not listed"))
    found.append(case("odd files", "two profiles of one name (board.yaml, board.yml): bench --device", lambda w, c: (
        (w / "device_profiles").mkdir(), _profile(w / "device_profiles" / "board.yaml"),
        _profile(w / "device_profiles" / "board.yml"), ["bench", M, *Q, "--device", "board"])[-1], {6}))
    found.append(case("odd files", "two profiles of one name: devices list", lambda w, c: (
        (w / "device_profiles").mkdir(), _profile(w / "device_profiles" / "board.yaml", name="board"),
        _profile(w / "device_profiles" / "twin.yaml", name="board"), ["devices", "list"])[-1], {0},
        verify=lambda f, s, o, e: None if "both have name: board" in " ".join((o + e).split()) else "not said"))
    found.append(case("odd files", "a folder passed as the spec", lambda w, c: ["sweep", w, "--dry-run"], {2, 6}))
    found.append(case("odd files", "a folder passed as the model", lambda w, c: ["bench", w, *Q], {2, 3, 4}))
    found.append(case("odd files", "a text file passed as the .tflite", lambda w, c: [
        "bench", _write(w / "m.tflite", b"not a model"), *Q], {4, 7}))
    found.append(case("odd files", "an .xml without its .bin", lambda w, c: [
        "bench", _write(w / "m.xml", b"<?xml version='1.0'?><net name='m' version='11'></net>"), *Q], {3, 4, 7}))
    for n in (0, 100, 100_000):
        found.append(case("odd files", f"ONNX cut at {n} bytes", lambda w, c, n=n: [
            "bench", _write(w / "m.onnx", GOOD_ONNX[:n]), *Q], {4}))
    return found


# --- gate inputs --------------------------------------------------------------------------------------------

def gate_cases(ctx: Context) -> list[Case]:
    bad = {
        "string samples": ({**SMALL_RESULT, "samples_ns": ["a", "b"]}, {2}),
        "memory_mb null": ({**SMALL_RESULT, "memory_mb": None}, {0, 1}),
        "device 12345": ({**SMALL_RESULT, "device": 12345}, {2}),
        "deeply nested": ("[" * 100_000 + "]" * 100_000, {2}),
        "an empty list": ([], {2}),
        "a number": (5, {2}),
        "not JSON": ("hello", {2}),
        "cut short": (json.dumps(SMALL_RESULT)[:100], {2}),
        "latency a string": ({**SMALL_RESULT, "latency_ms": "fast"}, {2}),
        "schema_version 99": ({**SMALL_RESULT, "schema_version": 99}, {2}),
        "no model": ({k: v for k, v in SMALL_RESULT.items() if k != "model"}, {2}),
        "NaN samples": (json.dumps({**SMALL_RESULT, "samples_ns": [float("nan")] * 5}), {2}),
        "not UTF-8": (b"\xff\xfe{}", {2}),
    }
    found = []
    for name, (content, expect) in bad.items():
        data = content if isinstance(content, (str, bytes)) else json.dumps(content)
        for side in ("candidate", "baseline"):
            def argv(w: Path, c: Context, data: str | bytes = data, side: str = side) -> Argv:
                _write(w / "good.json", json.dumps(SMALL_RESULT).encode())
                _write(w / "bad.json", data if isinstance(data, bytes) else data.encode())
                pair = ["-c", "bad.json", "-b", "good.json"] if side == "candidate" else ["-b", "bad.json", "-c",
                                                                                          "good.json"]
                return ["gate", *pair, "--md", "o.md", "--junit", "o.xml"]
            found.append(case("gate inputs", f"gate {side} {name}", argv, expect, verify=no_partial("o.md", "o.xml")))
    return found


# --- text ---------------------------------------------------------------------------------------------------

def _raw(*needles: str) -> Callable[[Path, int, str, str], str | None]:
    def verify(folder: Path, status: int, out: str, err: str) -> str | None:
        text = (folder / "o.md").read_text() if (folder / "o.md").exists() else ""
        raw = [n for n in needles if n in text or n in err]
        return f"raw in the Markdown or on the terminal: {raw}" if raw else None
    return verify


def text_cases(ctx: Context) -> list[Case]:
    found = []
    for name in ("<!-- hidden", "<script>alert(1)</script>", "a|b\n# heading", "\x1b[31mred"):
        def argv(w: Path, c: Context, name: str = name) -> list[Argv]:
            spec = write_spec(w / "s.yaml", models=[{"name": name, "path": M}])
            return [["sweep", str(spec), "--store", str(w / "r.db"), "--cache-dir", str(c.cache)],
                    ["report", "--last", "--store", str(w / "r.db"), "--md", "o.md"]]
        found.append(case("text", f"a model named {name!r} in report --md", argv, {0, 6},
                          verify=_raw("<!--", "<script>", "\x1b")))
    found.append(case("text", "a board's error with escape codes", lambda w, c: [
        "bench", M, *Q, "--device", _board(w, json.dumps({"status": "error", "error": {
            "kind": "runtime", "message": "\x1b[2J\x1b[31mboom\x07"}}))], {9, 10},
        verify=lambda f, s, o, e: "escape codes printed" if "\x1b" in e or "\x07" in e else None))
    found.append(case("text", "a runner's stderr with escape codes", lambda w, c: [
        "bench", M, *Q, "--device", _board(w, "", "\x1b]0;pwned\x07died", 1)], {9},
        verify=lambda f, s, o, e: "escape codes printed" if "\x1b" in e else None))
    return found


# --- messages -----------------------------------------------------------------------------------------------

def message_cases(ctx: Context) -> list[Case]:
    said = lambda *needles: lambda f, s, o, e: (  # noqa: E731
        None if all(n in e for n in needles) else f"the message misses {needles}: {e.strip()[-200:]!r}")
    return [
        case("messages", "ab with a missing model (as bench: 3)", ["ab", "-b", M, "-c", "missing.onnx", *Q], {3}),
        case("messages", "ab with a non-ONNX model (as bench: 4)", lambda w, c: [
            "ab", "-b", M, "-c", _write(w / "m.onnx", b"junk"), *Q], {4}),
        case("messages", "ab with an unknown device (as bench: 6)", ["ab", "-b", M, "-c", M, "-d", "nope", *Q], {6}),
        case("messages", "a folder passed as the spec is not 'not found'", lambda w, c: ["sweep", w], {2, 6},
             verify=lambda f, s, o, e: "said not found" if "not found" in e else None),
        case("messages", "a runtime error keeps its cause", lambda w, c: [
            "bench", M, *Q, "--device", _board(w, json.dumps({"status": "error", "error": {
                "kind": "runtime", "message": "first line\ncaused by: the real cause"}}))], {9, 10},
            verify=said("the real cause")),
        case("messages", "a profile path in a spec resolves from the spec's folder", lambda w, c: (
            (w / "sub").mkdir(), _profile(w / "sub" / "board.yaml"),
            ["sweep", write_spec(w / "sub" / "s.yaml", devices=["board.yaml"]), "--dry-run"])[-1], {0}),
        case("messages", "a missing model names the path", ["bench", "nowhere.onnx"], {3}, verify=said("nowhere.onnx")),
        case("messages", "a usage error is one line naming --help", ["bench", M, "--threads", "x"], {2},
             verify=said("--help")),
        case("messages", "an unknown command says which", ["bnch"], {2}, verify=said("bench")),
    ]


def all_cases(ctx: Context) -> list[Case]:
    return [*output_cases(ctx), *disk_cases(ctx), *store_cases(ctx), *team_cases(ctx), *source_cases(ctx),
            *data_cases(ctx), *limit_cases(ctx),
            *process_cases(ctx), *protocol_cases(ctx), *odd_file_cases(ctx), *gate_cases(ctx), *text_cases(ctx),
            *message_cases(ctx)]
