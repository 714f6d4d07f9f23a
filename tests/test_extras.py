"""The pip extras install what they promise: every "not installed" message names an extra that exists, the
markers are valid, and the converter's pins have one source (the package's requirement files)."""

from __future__ import annotations

import subprocess
import tomllib

import pytest
from packaging.requirements import Requirement

from edgebench import formats
from edgebench.errors import ExitStatus
from edgebench.formats.tflite import convert_env
from tests.conftest import ROOT
from tests.test_tflite_convert_env import clean_env, linked_python

EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_every_format_names_an_extra_that_exists() -> None:
    for name in formats.names():
        fmt = formats.get(name)
        assert fmt.extra in EXTRAS, name
        assert fmt.install_hint() == f"pip install 'edgebench[{fmt.extra}]'"
    assert {"onnx", "openvino", "tflite", "tensorrt", "ssh", "all"} <= set(EXTRAS)
    assert "tflite-convert" not in EXTRAS and "report" not in EXTRAS


def test_extras_and_converter_requirements_parse_and_target_their_platforms() -> None:
    linux_x86 = {"sys_platform": "linux", "platform_machine": "x86_64", "python_version": "3.11"}
    mac_intel = {"sys_platform": "darwin", "platform_machine": "x86_64", "python_version": "3.11"}
    litert = Requirement(EXTRAS["tflite"][0])
    assert litert.name == "ai-edge-litert" and litert.marker is not None
    assert litert.marker.evaluate(linux_x86) and not litert.marker.evaluate(mac_intel)  # no wheels there
    pins = {}
    for path in (convert_env.REQUIREMENTS, convert_env.NODEPS):
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                req = Requirement(line)
                if req.marker is None or req.marker.evaluate(linux_x86):
                    pins[req.name] = str(req.specifier)
    # the tested combination on Linux x86_64 / CPython 3.11: exactly one TensorFlow, and onnx2tf's pins
    assert pins["tensorflow-cpu"] == "==2.21.0" and "tensorflow" not in pins
    assert pins["onnx2tf"] == "==1.29.24" and pins["onnxsim"] == "==0.4.36" and pins["tf-keras"] == "==2.21.0"


def test_the_makefile_installs_the_packages_requirement_files() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for path in (convert_env.REQUIREMENTS, convert_env.NODEPS):
        assert str(path.relative_to(ROOT)) in makefile
    assert "--no-deps -r $(NODEPS)" in makefile and "-r $(CONVERTER)" in makefile


def test_an_ssh_device_without_paramiko_names_the_ssh_extra(tmp_path_factory: pytest.TempPathFactory) -> None:
    python = linked_python(tmp_path_factory.mktemp("no-paramiko"), lambda name: name.startswith("paramiko"))
    proc = subprocess.run([str(python), "-m", "edgebench", "devices", "check", "raspberry-pi-5"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=clean_env())
    assert proc.returncode == ExitStatus.RUNTIME_MISSING, proc.stdout + proc.stderr
    assert proc.stderr.strip() == ("edgebench: error: device 'raspberry-pi-5' is reached over SSH, which needs paramiko: "
                                   "pip install 'edgebench[ssh]'")
