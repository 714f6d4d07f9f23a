"""The bad-input contract (issue 14) as code, shared by tests/test_bad_input_contract.py's property tests and
benchmarks/bad_inputs.py's catalogue: a command's outcome is held to README's exit-status table, one
``edgebench: error:`` line (none on success), no traceback, no partial output and no stored run changed; and
the malformed inputs both feed it (mutated YAML, result files, places no output can be written to)."""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import shutil
import sqlite3
import tempfile
import xml.etree.ElementTree as ElementTree
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml
from hypothesis import strategies as st

from edgebench.cli import main
from edgebench.environment import Environment

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "edgebench" / "bundled" / "demo"
MODEL = DIGITS / "digits_cnn.onnx"
GOOD_ONNX = MODEL.read_bytes()
GOOD_NPZ = (DIGITS / "eval.npz").read_bytes()
DEMO_SPEC: dict[str, Any] = yaml.safe_load((DIGITS / "demo-sweep.yaml").read_text())
LOCAL_CPU: dict[str, Any] = yaml.safe_load((ROOT / "edgebench/bundled/profiles/local-cpu.yaml").read_text())
GATE_RESULT: dict[str, Any] = json.loads(gzip.decompress((ROOT / "tests/fixtures/gate/steady.json.gz").read_bytes()))
DOCUMENTED = {0, *range(2, 13)}  # README's table, less 1 (a regression), 130 and 143 (signals)
JUDGING = {"gate", "ab", "compare"}  # the commands whose 1 means "regressed" / "failed its criteria"
RAN_TO_THE_END = {0, 1, 11}  # statuses after which the outputs are written (complete)
SPEC_TIMING = {"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 20, "min_duration_s": 0.05,
               "max_duration_s": 5}


@dataclass(frozen=True)
class World:
    """What every case starts from: a store with one finished run, a spec that made it, a shared cache."""

    root: Path
    store: Path
    spec: Path
    cache: Path

    def spec_with(self, folder: Path, **changes: Any) -> Path:
        """The small spec with ``changes``, written in ``folder``."""
        data = {**yaml.safe_load(self.spec.read_text()), **changes}
        path = folder / "changed.yaml"
        path.write_text(yaml.safe_dump(data))
        return path


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: str
    stderr: str


def run(cwd: Path, argv: Sequence[str]) -> Outcome:
    env = Environment(stdout=io.StringIO(), stderr=io.StringIO(), environ=os.environ)
    before = os.getcwd()
    os.chdir(cwd)
    try:
        status = main([str(a) for a in argv], env)
    finally:
        os.chdir(before)
    return Outcome(int(status), env.stdout.getvalue(), env.stderr.getvalue())  # type: ignore[attr-defined]


def rows(store: Path) -> set[tuple[Any, ...]]:
    """Every run and result of ``store``, read without writing to it."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        return {("run", *r) for r in db.execute("SELECT * FROM runs")} | {
            ("result", *r) for r in db.execute("SELECT * FROM results")}


@contextmanager
def scratch(world: World) -> Iterator[Path]:
    """A fresh working folder holding a copy of the store (results.db); checked unchanged for the old runs."""
    folder = Path(tempfile.mkdtemp(dir=world.root))
    shutil.copy(world.store, folder / "results.db")
    before = rows(folder / "results.db")
    try:
        yield folder
        if (folder / "results.db").is_file():
            assert before <= rows(folder / "results.db"), "a run already in the store was changed or lost"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def complete(path: Path) -> None:
    """An output that was written is whole: it parses as what its name says."""
    if path.is_dir():
        return
    text = path.read_bytes()
    if path.suffix == ".json":
        json.loads(text)
    elif path.suffix == ".xml":
        ElementTree.fromstring(text)
    else:
        assert text, f"{path} is empty"


def holds(argv: Sequence[str], out: Outcome, outputs: Sequence[Path] = ()) -> None:
    """The contract, for one command line and what it did."""
    shown = f"edgebench {' '.join(map(str, argv))}\n→ {out.status}\n{out.stderr[-3000:]}"
    command = str(argv[0])
    assert out.status in DOCUMENTED or (out.status == 1 and command in JUDGING), shown
    assert "Traceback" not in out.stderr, shown
    errors = [line for line in out.stderr.splitlines() if line.startswith("edgebench: error: ")]
    assert len(errors) == (0 if out.status in (0, 1) else 1), shown
    for path in outputs:
        if out.status not in RAN_TO_THE_END:
            assert not path.exists(), f"{path} left behind\n{shown}"
        elif path.exists():
            complete(path)
        leftovers = [p.name for p in path.parent.glob(f".{path.name}.*")] if path.parent.is_dir() else []
        assert not leftovers, f"temporary files left: {leftovers}\n{shown}"


def check(world: World, cwd: Path, argv: Sequence[str | Path], outputs: Sequence[str] = ()) -> Outcome:
    args = [str(a) for a in argv]
    out = run(cwd, args)
    holds(args, out, [cwd / name for name in outputs])
    return out


ODD_VALUES = st.one_of(st.sampled_from([None, True, -1, 0, -0.5, 10**30, 2**63, 1e308, float("inf"), "", "x" * 300,
                                        [], {}, [[1]], {"k": "v"}, "../../etc/passwd", "1; rm -rf /"]),
                       st.integers(), st.text(max_size=10))


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at] if at else []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        found += _paths(child, (*at, key))
    return found


@st.composite
def mutated_yaml(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """``base`` with one value retyped, one key dropped or one unknown key added; or its text not UTF-8 or cut."""
    data = copy.deepcopy(base)
    kind = draw(st.sampled_from(["value", "value", "value", "drop", "unknown", "latin-1", "binary", "cut"]))
    if kind in ("value", "drop", "unknown"):
        *parents, last = draw(st.sampled_from(_paths(data)))
        node = data
        for key in parents:
            node = node[key]
        if kind == "value":
            node[last] = draw(ODD_VALUES)
        elif kind == "drop":
            del node[last]
        else:
            (node if isinstance(node, dict) else data)[draw(st.sampled_from(["colour", "thread", "Name", "x"]))] = 1
    text = yaml.safe_dump(data, allow_unicode=True).encode()
    if kind == "latin-1":
        return text.replace(b"name: ", "name: café".encode("latin-1"), 1)
    if kind == "binary":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at:]
    return text[:draw(st.integers(0, len(text)))] if kind == "cut" else text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
SMALL_RESULT = {**GATE_RESULT, "samples_ns": GATE_RESULT["samples_ns"][:60]}


@st.composite
def result_files(draw: st.DrawFn) -> bytes:
    """The real result with one value (at any depth) replaced, or dropped; or the file cut, wrapped, nested
    deeply or not UTF-8."""
    kind = draw(st.sampled_from(["value", "value", "value", "drop", "cut", "list", "deep", "latin-1"]))
    data = copy.deepcopy(SMALL_RESULT)
    if kind in ("value", "drop"):
        *parents, last = draw(st.sampled_from([p for p in _paths(data) if p[0] != "samples_ns" or len(p) < 3]))
        node = data
        for key in parents:
            node = node[key]
        if kind == "drop":
            del node[last]
        else:
            node[last] = draw(JSON_VALUES)
    text = json.dumps(data).encode()
    if kind == "cut":
        return text[:draw(st.integers(0, len(text) - 1))]
    if kind == "list":
        return json.dumps(draw(st.sampled_from([[], [data, data], [data, 1], {"results": [data]}]))).encode()
    if kind == "deep":
        depth = draw(st.sampled_from([50, 5000, 100_000]))
        return b"[" * depth + text + b"]" * depth
    return text.replace(b'"digits"', '"dígits"'.encode("latin-1")) if kind == "latin-1" else text


def place(cwd: Path, kind: str, disks: dict[str, Path]) -> Path:
    """A path no output can be written to, of ``kind``."""
    if kind == "parent is a file":
        (cwd / "a-file").write_text("x")
        return cwd / "a-file" / "out"
    if kind == "a folder":
        (cwd / "a-folder").mkdir()
        return cwd / "a-folder"
    if kind == "symlink loop":
        (cwd / "loop").symlink_to("loop")
        return cwd / "loop" / "out"
    if kind == "name too long":
        return cwd / ("x" * 300)
    return {"proc": Path("/proc/self/edgebench-out"), "device": Path("/dev/null/out")}.get(kind) or disks[kind] / "o"


