"""The bad-input contract, for every command (issue 14): whatever a hostile or unlucky user hands edgebench —
a model that is random bytes, truncated or has a broken graph, a mangled dataset, a mutated spec or profile
(wrong types, unknown keys, negative or huge numbers, not UTF-8), a recipe strung from the grammar's alphabet,
a result file with wrong types, odd option values, a damaged store, a bad place for an output — the command
ends with a status from README's table (1 only where a gate or comparison judges), one ``edgebench: error:``
line on stderr (none on success), never a traceback, no partial output file, and the runs already in the
store as they were.

Hypothesis generates the cases, derandomized (the same cases on every run, so CI never flakes on a new one);
each kept ``@example`` is a case that broke the contract once and was fixed. Commands run in process
(``edgebench.cli.main`` with captured streams) from a fresh working folder holding a copy of a real store."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import onnx
import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tests.conftest import QUICK_TIMING
from tests.contract import (DEMO_SPEC, DIGITS, GOOD_NPZ, GOOD_ONNX, LOCAL_CPU, MODEL, SMALL_RESULT, SPEC_TIMING,
                            World, check, mutated_yaml, place, result_files, run, scratch)

CI = settings(derandomize=True, database=None, deadline=None, max_examples=25, print_blob=True,
              suppress_health_check=list(HealthCheck))
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, recipe_cache: Path) -> World:
    root = tmp_path_factory.mktemp("contract")
    spec = root / "small.yaml"
    spec.write_text(yaml.safe_dump({"name": "small", "models": [{"name": "digits", "path": str(MODEL),
                                                                  "dataset": str(DIGITS / "eval.npz")}],
                                    "recipes": ["fp32"], "formats": ["onnx"], "devices": ["local-cpu"],
                                    "options": {"threads": [1]}, "timing": SPEC_TIMING}))
    made = run(root, ["sweep", str(spec), "--store", str(root / "results.db"), "--cache-dir", str(recipe_cache)])
    assert made.status == 0, made.stderr
    return World(root, root / "results.db", spec, recipe_cache)


# --- models -------------------------------------------------------------------------------------------------

@st.composite
def broken_graphs(draw: st.DrawFn) -> bytes:
    """The digits model, valid protobuf, with one thing in its graph broken."""
    model = onnx.load_from_string(GOOD_ONNX)
    graph = model.graph
    node = graph.node[draw(st.integers(0, len(graph.node) - 1))]
    kind = draw(st.sampled_from(["drop node", "dangling input", "unknown op", "initializer dims", "opset",
                                 "no outputs", "input type", "duplicate output", "ir version", "no inputs"]))
    if kind == "drop node":
        graph.node.remove(node)
    elif kind == "dangling input":
        node.input[0] = "nowhere"
    elif kind == "unknown op":
        node.op_type = draw(st.sampled_from(["NoSuchOp", "", "Conv2D"]))
    elif kind == "initializer dims":
        graph.initializer[0].dims[0] += draw(st.sampled_from([1, -1, 2**40]))
    elif kind == "opset":
        model.opset_import[0].version = draw(st.sampled_from([0, 1, 999]))
    elif kind == "no outputs":
        del graph.output[:]
    elif kind == "input type":
        graph.input[0].type.tensor_type.elem_type = draw(st.integers(0, 25))
    elif kind == "duplicate output":
        node.output[0] = graph.node[0].output[0] if node is not graph.node[0] else graph.input[0].name
    elif kind == "ir version":
        model.ir_version = draw(st.sampled_from([0, 1, 99]))
    else:
        del graph.input[:]
    return model.SerializeToString()


MODELS = st.one_of(
    st.tuples(st.just(".onnx"), st.binary(max_size=2000)),
    st.tuples(st.just(".onnx"), st.integers(0, len(GOOD_ONNX) - 1).map(lambda n: GOOD_ONNX[:n])),
    st.tuples(st.just(".onnx"), broken_graphs()),
    st.tuples(st.just(".xml"), st.sampled_from([b"<?xml version='1.0'?><net name='m' version='11'></net>",
                                                  b"<net", b""])),
    st.tuples(st.just(".tflite"), st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))),
)
MODEL_COMMANDS: dict[str, Callable[[World, Path], list[Any]]] = {
    "bench": lambda w, m: ["bench", m, "--threads", "1", *QUICK_TIMING, "--json", "out.json", "--store",
                           "results.db"],
    "convert": lambda w, m: ["convert", m, "--to", "onnx", "--precision", "fp16", "--cache-dir", w.cache,
                             "--out", "outdir"],
    "compress": lambda w, m: ["compress", m, "-r", "prune:0.5", "--to", "onnx", "--cache-dir", w.cache, "--json",
                              "out.json"],
    "compare": lambda w, m: ["compare", m, "--formats", "onnx", "--cache-dir", w.cache, "--json", "out.json"],
    "ab": lambda w, m: ["ab", "-b", MODEL, "-c", m, "--max-rounds", "1", *QUICK_TIMING, "--json", "out.json", "--md",
                        "ab.md"],
    "sweep": lambda w, m: ["sweep", w.spec_with(m.parent, models=[{"name": "m", "path": str(m)}]), "--store",
                           "results.db", "--json", "out.json", "--cache-dir", w.cache],
}
OUTPUTS = ["out.json", "outdir", "ab.md"]


@settings(CI, max_examples=40)
@given(model=MODELS, command=st.sampled_from(sorted(MODEL_COMMANDS)))
def test_any_malformed_model(world: World, model: tuple[str, bytes], command: str) -> None:
    suffix, content = model
    with scratch(world) as cwd:
        path = cwd / f"model{suffix}"
        path.write_bytes(content)
        check(world, cwd, MODEL_COMMANDS[command](world, path), OUTPUTS)


# --- datasets -----------------------------------------------------------------------------------------------

def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _inputs() -> np.ndarray:
    return np.load(io.BytesIO(GOOD_NPZ))["inputs"][:32]


ARRAYS = st.sampled_from([
    ("inputs", lambda: _inputs().astype(np.float64)), ("inputs", lambda: _inputs()[:, :, :4]),
    ("inputs", lambda: np.full_like(_inputs(), np.nan)), ("inputs", lambda: _inputs()[:0]),
    ("inputs", lambda: np.array(["a"] * 32)), ("inputs", lambda: np.array([{"a": 1}] * 32, dtype=object)),
    ("labels", lambda: np.arange(32) * 1000), ("labels", lambda: -np.ones(32, np.int64)),
    ("labels", lambda: np.full(32, 0.5)), ("labels", lambda: np.zeros((32, 2), np.int64)),
    ("labels", lambda: np.zeros(5, np.int64)), ("extra", lambda: np.zeros(3)), ("inputs", None), ("labels", None),
])


@st.composite
def datasets(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["cut", "flip", "array", "array", "text"]))
    if kind == "cut":
        return GOOD_NPZ[:draw(st.integers(0, len(GOOD_NPZ) - 1))]
    if kind == "flip":
        data = bytearray(GOOD_NPZ)
        for at, value in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1,
                                       max_size=4)):
            data[at] = value
        return bytes(data)
    if kind == "text":
        return draw(st.text(max_size=40)).encode("utf-8", "surrogatepass")
    arrays = {"inputs": _inputs(), "labels": np.load(io.BytesIO(GOOD_NPZ))["labels"][:32]}
    key, make = draw(ARRAYS)
    if make is None:
        arrays.pop(key)
    else:
        arrays[key] = make()
    return npz(**arrays)


DATA_COMMANDS: dict[str, Callable[[World, Path], list[Any]]] = {
    "bench": lambda w, d: ["bench", MODEL, "--dataset", d, "--threads", "1", *QUICK_TIMING, "--json", "out.json"],
    "compare": lambda w, d: ["compare", MODEL, "--formats", "onnx", "--dataset", d, "--cache-dir", w.cache,
                             "--json", "out.json"],
    "convert": lambda w, d: ["convert", MODEL, "--to", "onnx", "--precision", "int8", "--calibration", d,
                             "--cache-dir", w.cache, "--out", "outdir"],
    "compress": lambda w, d: ["compress", MODEL, "-r", "int8", "--to", "onnx", "--calibration", d, "--cache-dir",
                              w.cache, "--json", "out.json"],
    "ab": lambda w, d: ["ab", "-b", MODEL, "-c", MODEL, "--dataset", d, "--max-rounds", "1", *QUICK_TIMING,
                        "--json", "out.json"],
    "sweep": lambda w, d: ["sweep", w.spec_with(d.parent, models=[{"name": "m", "path": str(MODEL),
                                                                   "dataset": str(d)}]),
                           "--store", "results.db", "--json", "out.json", "--cache-dir", w.cache],
}


@settings(CI, max_examples=40)
@given(data=datasets(), command=st.sampled_from(sorted(DATA_COMMANDS)))
def test_any_mangled_dataset(world: World, data: bytes, command: str) -> None:
    with scratch(world) as cwd:
        path = cwd / "data.npz"
        path.write_bytes(data)
        check(world, cwd, DATA_COMMANDS[command](world, path), OUTPUTS)


# --- specs and profiles -------------------------------------------------------------------------------------

def _demo_spec() -> dict[str, Any]:
    spec = copy.deepcopy(DEMO_SPEC)
    for model in spec["models"]:
        for key in ("path", "dataset", "calibration"):
            model[key] = str(DIGITS / model[key])
    return {**spec, "timing": SPEC_TIMING}


@settings(CI, max_examples=60)
@given(content=mutated_yaml(_demo_spec()))
def test_any_mutated_spec(world: World, content: bytes) -> None:
    with scratch(world) as cwd:
        (cwd / "spec.yaml").write_bytes(content)
        planned = check(world, cwd, ["sweep", "spec.yaml", "--dry-run"])
        if planned.status != 0:  # refused: a real run is refused alike, before touching store or outputs
            ran = check(world, cwd, ["sweep", "spec.yaml", "--store", "results.db", "--json", "out.json",
                                     "--cache-dir", world.cache], ["out.json"])
            assert ran.status == planned.status, (planned, ran)
        check(world, cwd, ["sweep", "spec.yaml", "--resume", "small", "--store", "results.db", "--dry-run"])


PROFILE_COMMANDS: dict[str, Callable[[World, Path], list[Any]]] = {
    "bench": lambda w, p: ["bench", MODEL, "--device", p, "--threads", "1", *QUICK_TIMING, "--json", "out.json"],
    "devices check": lambda w, p: ["devices", "check", p],
    "sweep": lambda w, p: ["sweep", w.spec_with(p.parent, devices=[str(p)]), "--dry-run"],
}


@settings(CI, max_examples=30)
@given(content=mutated_yaml(LOCAL_CPU), command=st.sampled_from(sorted(PROFILE_COMMANDS)))
def test_any_mutated_profile(world: World, content: bytes, command: str) -> None:
    with scratch(world) as cwd:
        (cwd / "device_profiles").mkdir()
        path = cwd / "device_profiles" / "board.yaml"
        path.write_bytes(content)
        listed = check(world, cwd, ["devices", "list"])  # one bad profile never breaks the list of the others
        assert listed.status == 0 and "local-cpu" in listed.stdout, listed
        check(world, cwd, PROFILE_COMMANDS[command](world, path), ["out.json"])


# --- recipes ------------------------------------------------------------------------------------------------

STEP_KINDS = ["fp32", "fp16", "int8", "int8-dynamic", "prune", "prune-layer", "prune-filters", "cluster", "FP16",
              "Prune", "", "quant"]
STEP_VALUES = ["0.5", "0.9", "0", "1", "-1", "2", "16", "65537", "1000000", "1e309", "nan", "inf", "0x10", "", " 4",
               "minmax", "entropy", "linear", "kmeans++", "density", "random"]
STEPS = st.one_of(st.builds(lambda kind, values: ":".join([kind, *values]), st.sampled_from(STEP_KINDS),
                            st.lists(st.sampled_from(STEP_VALUES), max_size=2)),
                  st.sampled_from(["fp32", "fp16", "int8-dynamic", "prune:0.5", "prune-filters:0.25", "cluster:4",
                                   "cluster:16:linear", "cluster:1000000"]))
RECIPES = st.one_of(
    st.builds(lambda steps, joiner: joiner.join(steps), st.lists(STEPS, max_size=4),
              st.sampled_from(["+", "+", "+", " + ", ",", "++"])),
    st.text(alphabet=sorted(set("".join(STEP_KINDS + STEP_VALUES) + "+:")), max_size=20),
)
RECIPE_COMMANDS: dict[str, Callable[[World, str], list[Any]]] = {
    "compress": lambda w, r: ["compress", MODEL, "-r", r, "--to", "onnx", "--cache-dir", w.cache, "--json",
                              "out.json"],
    "convert": lambda w, r: ["convert", MODEL, "-r", r, "--to", "onnx", "--cache-dir", w.cache, "--out", "outdir"],
    "bench": lambda w, r: ["bench", MODEL, "--format", "onnx", "-r", r, "--cache-dir", w.cache, "--threads", "1",
                           *QUICK_TIMING],
    "sweep": lambda w, r: ["sweep", w.spec_with(w.root, recipes=[r]), "--dry-run"],
}


@settings(CI, max_examples=60)
@given(recipe=RECIPES, command=st.sampled_from(sorted(RECIPE_COMMANDS)))
def test_any_recipe_string(world: World, recipe: str, command: str) -> None:
    with scratch(world) as cwd:
        check(world, cwd, RECIPE_COMMANDS[command](world, recipe), OUTPUTS)


# --- result files for the gate ------------------------------------------------------------------------------

@settings(CI, max_examples=60)
@given(content=result_files(), side=st.sampled_from(["candidate", "baseline", "against the store"]))
@example(content=b"[]", side="candidate")  # was a PASS over nothing: an empty result file gates nothing
def test_any_malformed_result_file(world: World, content: bytes, side: str) -> None:
    with scratch(world) as cwd:
        (cwd / "good.json").write_text(json.dumps(SMALL_RESULT))
        (cwd / "bad.json").write_bytes(content)
        pair = {"candidate": ["-b", "good.json", "-c", "bad.json"], "baseline": ["-b", "bad.json", "-c", "good.json"],
                "against the store": ["-b", "small", "-c", "bad.json", "--store", "results.db"]}[side]
        out = check(world, cwd, ["gate", *pair, "--md", "out.md", "--junit", "out.xml"], ["out.md", "out.xml"])
        if content.strip() == b"[]":
            assert out.status == 2, out  # a gate over no results is no pass


# --- option values ------------------------------------------------------------------------------------------

NUMBERS = ["-1", "0", "1", "2", "8", "9", "4096", "100000", str(2**31), str(2**63), "abc", "", "1.5", " 1", "0x2"]
OPTION_VALUES: dict[str, st.SearchStrategy[str]] = {
    "--threads": st.sampled_from(NUMBERS),
    "--batch": st.sampled_from(NUMBERS),
    "--shape": st.builds(lambda name, dims: f"{name}:{'x'.join(dims)}", st.sampled_from(["input", "x", "", "a:b"]),
                         st.lists(st.sampled_from(["1", "0", "-5", "8", str(2**31), "batch", "", "1.5"]),
                                  max_size=5)),
    "--input-range": st.builds(lambda name, low, high: ":".join(p for p in (name, low, high) if p is not None),
                               st.sampled_from(["input", "x", ""]),
                               st.sampled_from(["0", "5", "-1e309", "nan", "inf", "x", "", None]),
                               st.sampled_from(["0", "1", "5", "1e309", "nan", "", None])),
    "--input-value": st.builds("{}={}".format, st.sampled_from(["input", "x", ""]),
                               st.sampled_from(["0", "1.5", "nan", "1e309", "x", ""])),
    "--option": st.builds("{}={}".format, st.sampled_from(["graph_optimization_level", "execution_providers",
                                                          "inter_op_threads", "intra_op_threads", "x", ""]),
                          st.sampled_from(["all", "basic", "bogus", "1", "-1", "[]", "CPUExecutionProvider", "",
                                           "=", str(2**70), "[[1]]"])),
}
TAKES = {"bench": set(OPTION_VALUES), "compare": {"--threads", "--shape", "--input-range", "--input-value"},
         "ab": {"--threads", "--batch", "--shape", "--input-range", "--input-value"}}


@st.composite
def option_lines(draw: st.DrawFn) -> tuple[str, list[str]]:
    command = draw(st.sampled_from(sorted(TAKES)))
    flags = draw(st.lists(st.sampled_from(sorted(TAKES[command])), min_size=1, max_size=3))
    return command, [item for flag in flags for item in (flag, draw(OPTION_VALUES[flag]))]


@settings(CI, max_examples=50)
@given(line=option_lines())
def test_any_option_values(world: World, line: tuple[str, list[str]]) -> None:
    command, options = line
    head = {"bench": ["bench", MODEL, *QUICK_TIMING, "--json", "out.json"],
            "compare": ["compare", MODEL, "--formats", "onnx", "--cache-dir", world.cache, "--json", "out.json"],
            "ab": ["ab", "-b", MODEL, "-c", MODEL, "--max-rounds", "1", *QUICK_TIMING, "--json", "out.json"]}[command]
    with scratch(world) as cwd:
        check(world, cwd, [*head, *options], ["out.json"])


# --- stores and run references ------------------------------------------------------------------------------

@st.composite
def stores(draw: st.DrawFn, good: bytes) -> bytes:
    kind = draw(st.sampled_from(["good", "cut", "flip", "flip", "random", "empty"]))
    if kind == "cut":
        return good[:draw(st.integers(1, len(good) - 1))]
    if kind == "flip":
        data = bytearray(good)
        for at in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=16)):
            data[at] ^= 0xFF
        return bytes(data)
    return {"good": good, "random": draw(st.binary(min_size=1, max_size=4096)), "empty": b""}[kind]


REFS = st.one_of(st.sampled_from(["1", "small", "0", "-1", "999", "last", "", "1; DROP TABLE runs", "9" * 30]),
                 st.text(max_size=10))
READING: dict[str, Callable[[str], list[str]]] = {
    "results list": lambda ref: ["results", "list", "--store", "s.db"],
    "results show": lambda ref: ["results", "show", ref, "--store", "s.db"],
    "results export": lambda ref: ["results", "export", ref, "--store", "s.db", "--json", "out.json", "--csv",
                                   "out.csv"],
    "report": lambda ref: ["report", ref, "--store", "s.db", "--md", "out.md", "--html", "out.html"],
    "report --last": lambda ref: ["report", "--last", "--store", "s.db", "--md", "out.md"],
    "gate": lambda ref: ["gate", "-b", ref, "-c", "small", "--store", "s.db", "--md", "out.md"],
}


@settings(CI, max_examples=60)
@given(mangle=st.data(), ref=REFS, command=st.sampled_from(sorted(READING)))
@example(mangle=None, ref="9" * 30, command="gate")  # was OverflowError: past SQLite's INTEGER
@example(mangle=None, ref="²", command="results show")  # a digit to str.isdigit, not to int()
@example(mangle=b"status", ref="1", command="report")  # one flipped byte in the schema: "no such column"
@example(mangle=b"TABLE", ref="1", command="results list")  # … and SQLite's message is not UTF-8
@example(mangle=b"small", ref="1", command="gate")  # a run's name not UTF-8
def test_any_store_and_run_reference(world: World, mangle: Any, ref: str, command: str) -> None:
    good = world.store.read_bytes()
    if isinstance(mangle, bytes):  # a kept example: that text in the schema spoiled by one flipped byte
        at = good.index(mangle)
        content = good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1:]
    else:
        content = good if mangle is None else mangle.draw(stores(good))
    with scratch(world) as cwd:
        (cwd / "s.db").write_bytes(content)
        check(world, cwd, READING[command](ref), ["out.json", "out.csv", "out.md", "out.html"])
        assert (cwd / "s.db").read_bytes() == content, "a reading command changed the store"


# --- bad places for outputs, and the commands with little else to get wrong ---------------------------------

@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A read-only disk and a full one where this machine lets the tests mount them; none elsewhere."""
    from tests.mounts import mounted_tmpfs

    factory = mounted_tmpfs(tmp_path_factory.mktemp("mnt"))
    make = next(factory)
    try:
        ro, full = make(size=1 << 20, name="ro"), make(size=256 << 10, name="full")
    except pytest.skip.Exception:
        yield {}
        return
    ro.remount("ro")
    full.fill()
    yield {"read-only disk": ro.path, "full disk": full.path}
    next(factory, None)


PLACES = ["parent is a file", "symlink loop", "name too long", "proc", "device", "read-only disk", "full disk"]
FILE_PLACES = [*PLACES, "a folder"]
WRITERS: dict[str, tuple[Callable[[World, Path], list[Any]], bool]] = {  # the command line, OUT a folder?
    "demo --dir": (lambda w, o: ["demo", "--dir", o, "--store", "results.db"], True),
    "demo --store": (lambda w, o: ["demo", "--store", o, "--dir", "demo"], False),
    "demo --html": (lambda w, o: ["demo", "--html", o, "--dir", "demo"], False),
    "demo --json": (lambda w, o: ["demo", "--json", o, "--dir", "demo"], False),
    "devices schema -o": (lambda w, o: ["devices", "schema", "-o", o], False),
    "sweep --json": (lambda w, o: ["sweep", w.spec, "--json", o, "--store", "results.db"], False),
    "sweep --resume --store": (lambda w, o: ["sweep", w.spec, "--resume", "small", "--store", o], False),
    "bench --store": (lambda w, o: ["bench", MODEL, *QUICK_TIMING, "--store", o], False),
    "ab --md": (lambda w, o: ["ab", "-b", MODEL, "-c", MODEL, "--max-rounds", "1", *QUICK_TIMING, "--md", o], False),
    "convert --out": (lambda w, o: ["convert", MODEL, "--to", "onnx", "--cache-dir", w.cache, "--out", o], True),
    "compress --cache-dir": (lambda w, o: ["compress", MODEL, "-r", "prune:0.5", "--to", "onnx", "--cache-dir",
                                           o], True),
    "results export --csv": (lambda w, o: ["results", "export", "small", "--store", "results.db", "--csv", o],
                             False),
    "report --html": (lambda w, o: ["report", "--last", "--store", "results.db", "--html", o], False),
    "gate --junit": (lambda w, o: ["gate", "-b", "small", "-c", "small", "--store", "results.db", "--junit", o],
                     False),
}


@settings(CI, max_examples=50)
@given(writer=st.sampled_from(sorted(WRITERS)), kind=st.sampled_from(FILE_PLACES))
@example(writer="ab --md", kind="device")  # was StopIteration: no parent of /dev/null/out is a plain file
@example(writer="demo --dir", kind="parent is a file")  # was not checked up front, and exit 2
def test_any_output_in_a_place_that_cannot_take_it(world: World, disks: dict[str, Path], writer: str,
                                                     kind: str) -> None:
    line, folder = WRITERS[writer]
    assume(not (folder and kind == "a folder") and (kind in disks or "disk" not in kind))
    with scratch(world) as cwd:
        out = check(world, cwd, line(world, place(cwd, kind, disks)), ["demo"])
        assert out.status == 12, out  # refused, never measured for nothing: nothing else made
        assert not (cwd / "demo").exists() and not (cwd / ".edgebench").exists(), sorted(cwd.iterdir())


NOISE = st.lists(st.sampled_from(["--json", "--bogus", "-x", "extra", "--threads", "1", "--", "--check", "-o"]),
                 max_size=2)
SMALL_COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "devices check": lambda name: ["devices", "check", name],
    "devices list": lambda name: ["devices", "list"],
    "devices schema": lambda name: ["devices", "schema"],
    "setup tflite --check": lambda name: ["setup", "tflite", "--check"],
    "results list": lambda name: ["results", "list", "--store", "results.db", "--limit", name],
}


@settings(CI, max_examples=40)
@given(command=st.sampled_from(sorted(SMALL_COMMANDS)), noise=NOISE,
       name=st.one_of(st.sampled_from(["", "-1", "0", "nope", "../x.yaml", "/dev/null", "/proc/self/status", "."]),
                      st.text(max_size=12)))
def test_any_names_and_stray_arguments(world: World, command: str, noise: list[str], name: str) -> None:
    with scratch(world) as cwd:
        check(world, cwd, [*SMALL_COMMANDS[command](name), *noise])
