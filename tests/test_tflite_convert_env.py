"""The ONNX → TFLite converter's interpreter: $EDGEBENCH_TFLITE_PYTHON, else this one when it holds onnx2tf, else
the environment edgebench prepares with pip on first use (edgebench/formats/tflite/convert_env.py).

The other interpreters here are real ones: a venv whose site-packages links the dev venv's packages, all but
those a test leaves out (edgebench itself, or the converter), so each test picks what is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from edgebench.data.accuracy import rel_l2
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.tflite import convert_env
from edgebench.formats.tflite.convert import convert
from tests.conftest import DIGITS, ROOT

CONVERTER = ("onnx2tf", "onnxsim", "tensorflow")


def linked_python(folder: Path, leave_out: Callable[[str], bool]) -> Path:
    """A venv whose site-packages holds the dev venv's entries (symlinked) except those ``leave_out`` names."""
    venv.create(folder, with_pip=False)
    site = next((folder / "lib").glob("python*/site-packages"))
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not leave_out(entry.name):
            (site / entry.name).symlink_to(entry)
    return folder / "bin" / "python"


@pytest.fixture(scope="module")
def without_converter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An interpreter with edgebench and its extras but no onnx2tf, onnxsim or TensorFlow."""
    return linked_python(tmp_path_factory.mktemp("no-converter"),
                         lambda name: name.lower().startswith(CONVERTER))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (convert_env.PYTHON_VAR, "PYTHONPATH")}
    return {**env, **extra}


def current_in(python: Path, cache: Path) -> dict[str, object] | None:
    """What ``convert_env.current()`` answers under ``python`` with the tools cache at ``cache``."""
    code = ("import json, dataclasses\nfrom edgebench.formats.tflite import convert_env\n"
            "found = convert_env.current()\n"
            "print(json.dumps(found and {**dataclasses.asdict(found), 'python': str(found.python), "
            "'folder': str(found.folder)}))")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=clean_env(**{convert_env.CACHE_VAR: str(cache)}))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, without_converter: Path) -> None:
    # 1. the user's interpreter comes first, its versions probed there
    monkeypatch.setenv(convert_env.PYTHON_VAR, sys.executable)
    given = convert_env.resolve()
    assert given.source == convert_env.PYTHON_VAR and given.python == Path(sys.executable)
    assert given.versions["onnx2tf"] and given.versions["onnxsim"]
    # 2. unset: this interpreter, which holds the converter (the dev venv), with the same versions
    monkeypatch.delenv(convert_env.PYTHON_VAR)
    here = convert_env.resolve()
    assert here.source == "this interpreter" and here.versions == given.versions
    # 3. an interpreter without the converter: the prepared environment, only once its marker is written
    assert current_in(without_converter, tmp_path) is None
    code = ("from edgebench.formats.tflite import convert_env; print(convert_env.env_dir())")
    folder = Path(subprocess.run([str(without_converter), "-c", code], capture_output=True, text=True, check=True,
                                 env=clean_env(**{convert_env.CACHE_VAR: str(tmp_path)})).stdout.strip())
    assert folder.parent == tmp_path and folder.name.startswith("tflite-convert-py3")
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").symlink_to(sys.executable)
    assert current_in(without_converter, tmp_path) is None  # half-made: no marker, so it is rebuilt
    (folder / convert_env.MARKER).write_text(json.dumps({"versions": {"onnx2tf": "1.29.24"}}))
    found = current_in(without_converter, tmp_path)
    assert found == {"python": str(folder / "bin" / "python"), "source": "prepared",
                     "versions": {"onnx2tf": "1.29.24"}, "folder": str(folder)}


def test_a_given_interpreter_without_the_converter_is_refused_in_one_line(
        monkeypatch: pytest.MonkeyPatch, without_converter: Path) -> None:
    monkeypatch.setenv(convert_env.PYTHON_VAR, str(without_converter))
    with pytest.raises(EdgebenchError) as err:
        convert_env.resolve()
    assert err.value.status == ExitStatus.RUNTIME_MISSING and "\n" not in str(err.value)
    assert str(err.value).startswith(f"{convert_env.PYTHON_VAR}={without_converter} lacks onnx2tf, onnxsim, "
                                     "tensorflow: install the converter there")
    monkeypatch.setenv(convert_env.PYTHON_VAR, "/nonexistent/python3")
    with pytest.raises(EdgebenchError, match=r"^cannot run /nonexistent/python3 .*: set EDGEBENCH_TFLITE_PYTHON"):
        convert_env.resolve()


def test_the_worker_converts_under_an_interpreter_without_edgebench(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    """The worker is a self-contained script: run by path under a Python that cannot import edgebench, from a
    folder outside the checkout, it converts the digits model faithfully."""
    python = linked_python(tmp_path / "venv", lambda name: "edgebench" in name)
    proc = subprocess.run([str(python), "-c", "import edgebench"], capture_output=True, text=True, cwd=tmp_path,
                          env=clean_env())
    assert "No module named 'edgebench'" in proc.stderr
    monkeypatch.setenv(convert_env.PYTHON_VAR, str(python))
    (tmp_path / "out").mkdir()
    artifact = convert(DIGITS / "digits_cnn.onnx", "fp32", tmp_path / "out", DIGITS / "calib.npz")
    assert artifact.main.is_file() and artifact.meta["sample_rel_err"]["logits"] < 1e-5
    assert artifact.meta["tool_versions"]["onnx2tf"] == convert_env.probe(python)[1]["onnx2tf"]


def test_the_worker_computes_rel_l2_as_edgebench_does() -> None:
    """The worker keeps its own copy of the agreement maths it needs (it imports nothing of edgebench)."""
    namespace: dict[str, object] = {}
    exec(compile(convert_env.WORKER.read_text(), str(convert_env.WORKER), "exec"), namespace)
    worker_rel_l2 = namespace["rel_l2"]
    rng = np.random.default_rng(0)
    for out, ref in [(rng.random((3, 4)), rng.random((3, 4))), (np.zeros(5), np.zeros(5)),
                     (rng.random(7).astype(np.float32), np.zeros(7, np.float32))]:
        assert worker_rel_l2(out, ref) == rel_l2(out, ref)


def test_preparing_without_the_index_fails_in_one_line(tmp_path: Path, without_converter: Path) -> None:
    """pip cannot reach the index (a closed port, no local wheels or config): exit 7 and one line naming
    `edgebench setup tflite` and EDGEBENCH_TFLITE_PYTHON; nothing half-made is left."""
    env = clean_env(**{convert_env.CACHE_VAR: str(tmp_path), "PIP_CONFIG_FILE": os.devnull,
                       "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "", "PIP_RETRIES": "0",
                       "PIP_TIMEOUT": "5", "PIP_NO_CACHE_DIR": "1"})
    proc = subprocess.run([str(without_converter), "-m", "edgebench", "setup", "tflite"], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == ExitStatus.RUNTIME_MISSING, proc.stdout + proc.stderr
    assert "preparing the ONNX → TFLite converter environment once" in proc.stdout
    error = proc.stderr.strip()
    assert "\n" not in error and "Traceback" not in error
    assert "could not prepare the ONNX → TFLite converter environment" in error
    assert "run 'edgebench setup tflite' where PyPI is reachable" in error and convert_env.PYTHON_VAR in error
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []


@pytest.mark.slow
def test_an_install_without_the_converter_prepares_it_once_and_converts(tmp_path: Path,
                                                                       without_converter: Path) -> None:
    """`edgebench convert --to tflite` under an interpreter without the converter: on first use the environment
    is prepared from the registries into the user's tools cache, later uses reuse it; the .tflite agrees with
    onnxruntime on the labelled digits. The cache is the one an installed edgebench uses (tests/test_wheel.py
    shares it), so a fresh machine such as CI prepares it here once, from PyPI, and a warm one reuses it."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    folder = convert_env.env_dir()
    prepared_before = (folder / convert_env.MARKER).is_file()
    env = clean_env(**{convert_env.CACHE_VAR: str(convert_env.tools_cache())})
    proc = subprocess.run([str(without_converter), "-m", "edgebench", "convert", str(DIGITS / "digits_cnn.onnx"),
                           "--to", "tflite", "--precision", "fp32", "--calibration", str(DIGITS / "calib.npz"),
                           "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=1500, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    announced = "preparing the ONNX → TFLite converter environment once" in proc.stderr
    assert announced is not prepared_before, proc.stderr
    marker = json.loads((folder / convert_env.MARKER).read_text())
    meta = json.loads((tmp_path / "out" / "tflite-fp32" / "meta.json").read_text())
    assert meta["tool_versions"] == marker["versions"] and marker["versions"]["onnx2tf"] == "1.29.24"
    data = np.load(DIGITS / "eval.npz")
    inputs = data["inputs"]
    reference = ort.InferenceSession(str(DIGITS / "digits_cnn.onnx")).run(None, {"input": inputs})[0]
    interp = Interpreter(model_path=str(tmp_path / "out" / "tflite-fp32" / "model.tflite"))
    interp.allocate_tensors()
    (detail,) = interp.get_input_details()
    shape = tuple(detail["shape"][1:])
    outputs = []
    for sample in inputs:
        x = sample[None] if sample.shape == shape else np.transpose(sample[None], (0, 2, 3, 1))
        interp.set_tensor(detail["index"], np.ascontiguousarray(x))
        interp.invoke()
        outputs.append(interp.get_tensor(interp.get_output_details()[0]["index"])[0])
    tflite = np.stack(outputs)
    assert np.array_equal(tflite.argmax(1), reference.argmax(1))
    assert rel_l2(tflite, reference) < 1e-5
