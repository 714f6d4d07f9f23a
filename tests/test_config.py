"""Device profiles load typed, and their errors name the file, the field and the fix."""

from __future__ import annotations

import pytest

from edgebench.config import known_profiles, load_profile
from edgebench.errors import EdgebenchError, ExitStatus


def test_bundled_local_cpu_profile_loads():
    profile = load_profile("local-cpu")
    assert profile.name == "local-cpu" and profile.connection.type == "local" and profile.accelerator == "cpu"
    assert "local-cpu" in known_profiles()


def test_profile_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nthreads: 2\n")
    assert load_profile(str(path)).threads == 2


@pytest.mark.parametrize("yaml_text, message", [
    ("name: x\nthreads: four\n", r"field 'threads'.*got 'four'.*fix the value"),
    ("name: x\nthred: 2\n", r"unknown field 'thred'.*remove it or fix its spelling"),
    ("threads: 2\n", r"field 'name' is required"),
    ("name: x\nconnection: {type: ssh}\n", r"field 'connection'.*needs 'host'"),
    ("name: x\nconnection: {type: ssh, host: h, host_key_policy: yolo}\n", r"connection.host_key_policy"),
    ("name: [unclosed\n", r"invalid YAML at line"),
    ("- just\n- a list\n", r"expected a mapping"),
])
def test_profile_errors_name_file_field_and_fix(tmp_path, yaml_text, message):
    path = tmp_path / "board.yaml"
    path.write_text(yaml_text)
    with pytest.raises(EdgebenchError, match=message) as err:
        load_profile(str(path))
    assert str(path) in str(err.value) and err.value.status == ExitStatus.CONFIG
    assert "\n" not in str(err.value)


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(EdgebenchError, match=r"unknown device 'nope'.*local-cpu") as err:
        load_profile("nope")
    assert err.value.status == ExitStatus.CONFIG
