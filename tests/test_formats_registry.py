"""The format registry: formats are imported when used, and adding one is one folder plus one registry line.

The toy format (tests/onnx_basic/: a second ONNX Runtime flavour, basic graph optimizations saved) is
registered by one line and then goes through everything a built-in format does: --to/--format parsing,
device profiles' runtimes, sweep planning, and a real bench of the digits model on the onnxruntime backend.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgebench import formats
from edgebench.pipeline.bench import BenchRequest, execute
from edgebench.config import DeviceProfile, SweepSpec, TimingSpec
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.pipeline.sweep.plan import Plan
from edgebench.pipeline.sweep.cells import build_plan
from edgebench.runner.edgebench_runner import load_backend
from tests.conftest import DIGITS, ROOT

QUICK = TimingSpec.model_validate({"warmup_s": 0.01, "warmup_iterations": 2, "min_iterations": 20,
                                   "min_duration_s": 0.05, "max_duration_s": 5})
TOOLCHAINS = ("openvino", "nncf", "tensorflow", "onnx2tf", "ai_edge_litert", "tensorrt", "onnxruntime")


@pytest.fixture
def onnx_basic(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(formats.REGISTRY, "onnx-basic", "tests.onnx_basic:OnnxBasicFormat")  # the one line
    return "onnx-basic"


def profile(runtimes: list[str]) -> DeviceProfile:
    return DeviceProfile.model_validate({"name": "board", "runtimes": runtimes})


def plan_for(formats: list[str], tmp_path: Path) -> Plan:
    model = {"name": "digits", "path": str(DIGITS / "digits_cnn.onnx")}
    spec = SweepSpec.model_validate({"name": "s", "models": [model], "formats": formats, "devices": ["local-cpu"]})
    return build_plan(spec, tmp_path, "spec.yaml")


def imported_after(code: str) -> list[str]:
    """The toolchains and format packages a fresh interpreter holds after running ``code``."""
    probe = (f"import sys, json\n{code}\nprint(json.dumps(sorted(m for m in sys.modules "
             f"if m.split('.')[0] in {TOOLCHAINS!r} or m.startswith('edgebench.formats.'))))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


def test_formats_are_imported_only_when_used() -> None:
    base = ["edgebench.formats.base", "edgebench.formats.registry", "edgebench.formats.tensors"]
    assert imported_after("import edgebench.formats") == base
    # naming formats and runtimes loads each format's class, never its toolchain
    loaded = imported_after("import pathlib, edgebench.formats as f; f.runtimes(); f.format_of(pathlib.Path('m.xml'))")
    assert not [m for m in loaded if m.split(".")[0] in TOOLCHAINS]
    assert "edgebench.formats.openvino" in loaded and "edgebench.formats.openvino.convert" not in loaded
    # the artifact cache and the CLI's bench path import no format toolchain until a conversion runs
    assert not [m for m in imported_after("import edgebench.artifacts.cache, edgebench.pipeline.bench")
                if m.split(".")[0] in TOOLCHAINS and m != "onnxruntime"]


def test_registry_answers_for_every_builtin_format() -> None:
    assert formats.names() == ["onnx", "openvino", "tflite", "tensorrt"]
    assert formats.runtimes() == ["onnxruntime", "openvino", "tflite", "tensorrt"]
    assert formats.format_of(Path("m.tflite")) == "tflite" and formats.get(" OpenVINO ").name == "openvino"
    assert formats.get("tflite").install_hint() == "pip install 'edgebench[tflite]'"
    with pytest.raises(EdgebenchError, match="unknown format 'coreml': choose one of onnx, openvino, tflite, "
                                             "tensorrt$") as err:
        formats.parse_formats("onnx,coreml")
    assert err.value.status == ExitStatus.USAGE


@pytest.mark.parametrize("fmt, given, taken", [
    ("onnx", {"graph_optimization_level": "disable", "execution_providers": ["CPUExecutionProvider"],
              "inter_op_threads": 2}, None),
    ("openvino", {"performance_hint": "latency", "num_streams": 1, "cache_dir": "/tmp/b", "inference_precision": "f32",
                  "warm_compile": "false"}, {"warm_compile": False}),
    ("openvino", {"num_streams": "AUTO"}, None),
    ("tflite", {"xnnpack": "false", "delegate": "/lib/d.so", "delegate_options": {"k": 1}}, {"xnnpack": False}),
    ("tensorrt", {"engine_cache": "/tmp/e", "workspace_mb": 512}, None),
])
def test_runner_options_accepted_today_are_accepted(fmt: str, given: dict[str, object],
                                                    taken: dict[str, object] | None) -> None:
    assert formats.get(fmt).check_runner_options(given) == {**given, **(taken or {})}


def test_unknown_runner_option_is_refused_naming_the_accepted_keys() -> None:
    with pytest.raises(EdgebenchError) as err:
        formats.get("tensorrt").check_runner_options({"workspace_mb": 64, "engine_cahce": "/tmp"})
    assert str(err.value) == ("unknown --option 'engine_cahce' for the tensorrt backend: it accepts engine_cache, "
                              "precision, workspace_mb")
    assert err.value.status == ExitStatus.USAGE
    with pytest.raises(EdgebenchError, match=r"^bad --option workspace_mb='big' for the tensorrt backend: .*integer"):
        formats.get("tensorrt").check_runner_options({"workspace_mb": "big"})


@pytest.mark.parametrize("fmt", formats.names())
def test_host_options_are_the_runner_backends_own(fmt: str) -> None:
    """The host's typed --option model is built from the backend the runner loads for the format's runtime:
    the same keys, so a key the host lets through is one the runner takes, and the other way round."""
    chosen = formats.get(fmt)
    backend = load_backend(chosen.runtime)
    assert set(chosen.runner_options.model_fields) == set(backend.option_types)
    for key in chosen.job_options("fp32"):  # what the artifact adds to a job passes both ends too
        assert key in backend.option_types


def test_a_new_format_is_one_folder_plus_one_registry_line(onnx_basic: str, tmp_path: Path) -> None:
    assert formats.parse_formats(f"onnx,{onnx_basic}") == ["onnx", onnx_basic]
    assert formats.get(onnx_basic).runtime == "onnxruntime"
    assert profile(formats.runtimes()).runtimes == formats.runtimes()
    plan = plan_for(["onnx", onnx_basic], tmp_path)
    assert [c.format for c in plan.cells] == ["onnx", onnx_basic] and not plan.skipped
    assert plan.conversions == [("digits", "fp32", onnx_basic)]

    req = BenchRequest(model=DIGITS / "digits_cnn.onnx", format=onnx_basic, dataset=DIGITS / "eval.npz",
                       cache_dir=tmp_path / "cache", timing=QUICK, threads=1,
                       backend_options={"graph_optimization_level": "disable"})
    outcome = execute(req)
    result = outcome.result
    assert result.model.format == onnx_basic and result.model.precision == "fp32"
    assert result.runtime["name"] == "onnxruntime" and result.accuracy.top1 >= 0.97
    assert result.runtime["options"]["graph_optimization_level"] == "disable"
    assert outcome.target.meta.details["optimize"] == "basic"
    assert result.model.costs["params"] > 0  # its weights read back
    with pytest.raises(EdgebenchError) as err:
        execute(BenchRequest(model=DIGITS / "digits_cnn.onnx", format=onnx_basic, cache_dir=tmp_path / "cache",
                             timing=QUICK, backend_options={"performance_hint": "latency"}))
    assert str(err.value) == ("unknown --option 'performance_hint' for the onnxruntime backend: it accepts "
                              "execution_providers, graph_optimization_level, inter_op_threads")
    with pytest.raises(EdgebenchError, match=f"format {onnx_basic} does not support precision 'fp16'"):
        execute(BenchRequest(model=DIGITS / "digits_cnn.onnx", format=onnx_basic, precision="fp16",
                             cache_dir=tmp_path / "cache", timing=QUICK))


def test_a_format_with_its_own_runtime_reaches_profiles_and_plans(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown runtime 'toyrt': use one of onnxruntime, openvino, tflite, "
                                         "tensorrt"):
        profile(["toyrt"])
    monkeypatch.setitem(formats.REGISTRY, "onnx-toyrt", "tests.onnx_basic:ToyRuntimeFormat")
    assert profile(["toyrt"]).runtimes == ["toyrt"]
    plan = plan_for(["onnx", "onnx-toyrt"], tmp_path)
    assert [c.format for c in plan.cells] == ["onnx"]
    assert [reason for _, reason in plan.skipped] == ["local-cpu has no toyrt (its profile's runtimes: onnxruntime, "
                                                     "openvino, tflite)"]
