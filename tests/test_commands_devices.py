"""`edgebench devices list | check | schema`, the bundled profiles, and their documentation."""

from __future__ import annotations

import json
import re

import onnxruntime
import pytest
import yaml

from edgebench.cli import main
from edgebench.config import Connection, DeviceProfile, Power, Thermal, known_profiles, load_profile
from edgebench.errors import ExitStatus
from pathlib import Path


BUNDLED = ["local-cpu", "raspberry-pi-5", "jetson-orin-nano", "intel-core-ultra-npu", "x86-server-ssh"]


def test_every_bundled_profile_loads_and_is_listed(capsys):
    assert main(["devices", "list"]) == ExitStatus.OK
    listed = capsys.readouterr().out
    for name in BUNDLED:
        profile = load_profile(name)
        assert profile.name == name and name in known_profiles() and name in listed
    assert load_profile("jetson-orin-nano").accelerator == "gpu"
    assert load_profile("intel-core-ultra-npu").accelerator == "npu"
    assert load_profile("raspberry-pi-5").thermal.max_start_c == 60


def test_every_profile_field_is_documented():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "devices.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_.]+)` \|", doc, flags=re.M))
    fields = {f for f in DeviceProfile.model_fields}
    fields |= {f"connection.{f}" for f in Connection.model_fields} | {f"thermal.{f}" for f in Thermal.model_fields}
    fields |= {f"power.{f}" for f in Power.model_fields}
    fields -= {"connection", "thermal", "power"}
    assert fields == rows
    for model in (DeviceProfile, Connection, Thermal, Power):
        assert all(f.description for f in model.model_fields.values()), model.__name__


def test_schema_is_generated_from_the_model(capsys, tmp_path):
    assert main(["devices", "schema"]) == ExitStatus.OK
    schema = json.loads(capsys.readouterr().out)
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False
    conn = schema["$defs"]["Connection"]["properties"]
    assert conn["host_key_policy"]["enum"] == ["strict", "accept-new"] and "description" in conn["known_hosts"]
    assert main(["devices", "schema", "-o", str(tmp_path / "s.json")]) == ExitStatus.OK
    assert json.loads((tmp_path / "s.json").read_text()) == schema


def test_check_local_reports_runtimes(capsys):
    assert main(["devices", "check", "local-cpu", "--json"]) == ExitStatus.OK
    report = json.loads(capsys.readouterr().out)
    assert report["runtimes"]["onnxruntime"]["version"] == onnxruntime.__version__
    assert report["runtimes"]["numpy"]["ok"] and report["python"] and report["cores"] >= 1
    assert main(["devices", "check", "local-cpu"]) == ExitStatus.OK
    table = capsys.readouterr().out
    assert "onnxruntime" in table and "reachable" in table and "memory" in table


def test_check_names_a_missing_runtime_and_the_pip_command(tmp_path, capsys):
    path = tmp_path / "trt.yaml"
    path.write_text(yaml.safe_dump({"name": "no-trt", "runtimes": ["onnxruntime", "tensorrt"]}))
    try:
        import tensorrt  # noqa: F401
        pytest.skip(reason="tensorrt is installed here")
    except ImportError:
        pass
    assert main(["devices", "check", str(path)]) == ExitStatus.RUNTIME_MISSING
    err = capsys.readouterr().err
    assert "device no-trt: tensorrt does not import" in err and "-m pip install tensorrt" in err


@pytest.mark.parametrize("data, message", [
    ({"name": "b", "connection": {"type": "ssh"}}, "field 'connection': Value error, an ssh connection needs 'host'"),
    ({"name": "b", "conection": {}}, "unknown field 'conection': remove it or fix its spelling"),
    ({"name": "b", "connection": {"type": "ssh", "host": "h", "host_key_policy": "yes"}},
     "field 'connection.host_key_policy'"),
    ({"name": "b", "connection": {"type": "ssh", "host": "h", "password": "hunter2"}},
     "unknown field 'connection.password'"),
    ({"name": "b", "thermal": {"max_start_c": "hot"}}, "field 'thermal.max_start_c'"),
])
def test_profile_errors_name_file_field_and_fix(tmp_path, capsys, data, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["devices", "check", str(path)]) == ExitStatus.CONFIG
    err = capsys.readouterr().err
    assert str(path) in err and message in err and "hunter2" not in err


def test_unknown_device_lists_known_ones(capsys):
    assert main(["devices", "check", "no-such-board"]) == ExitStatus.CONFIG
    err = capsys.readouterr().err
    assert "unknown device 'no-such-board'" in err and "raspberry-pi-5" in err
