"""Where profile names are looked up (EDGEBENCH_PROFILES, ./device_profiles, the user config dir, bundled), which
file wins, and what `edgebench devices list` says about it: real files in tmp folders, the user config dir
redirected with XDG_CONFIG_HOME (platformdirs' Linux rule)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from edgebench.cli import main
from edgebench.config import find_profiles, known_profiles, load_profile, profile_dirs, user_profiles_dir
from edgebench.errors import ExitStatus
from edgebench.paths import bundled_profiles_dir

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the user config dir is redirected with "
                                "XDG_CONFIG_HOME, which platformdirs reads on Linux only")


def _profile(folder: Path, name: str, description: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "description": description}))
    return path


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A project folder as cwd, a user config dir and two EDGEBENCH_PROFILES folders, all empty."""
    project, config = tmp_path / "project", tmp_path / "xdg"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    env1, env2 = tmp_path / "env1", tmp_path / "env2"
    monkeypatch.setenv("EDGEBENCH_PROFILES", os.pathsep.join([str(env1), "", str(env2)]))
    return {"env1": env1, "env2": env2, "cwd": project / "device_profiles",
            "user": config / "edgebench" / "profiles"}


def test_lookup_order_and_sources(places: dict[str, Path]) -> None:
    assert user_profiles_dir() == places["user"]
    assert [(d.source, d.path) for d in profile_dirs()] == [
        ("EDGEBENCH_PROFILES", places["env1"]), ("EDGEBENCH_PROFILES", places["env2"]),
        ("./device_profiles", places["cwd"]), ("user config dir", places["user"]),
        ("bundled", bundled_profiles_dir())]
    # The same name at every level: each removal uncovers the next folder down.
    files = {where: _profile(places[where], "board", where) for where in ("env1", "env2", "cwd", "user")}
    _profile(places["user"], "local-cpu", "mine")
    for where in ("env1", "env2", "cwd", "user"):
        assert known_profiles()["board"] == files[where]
        assert load_profile("board").description == where
        files[where].unlink()
    assert "board" not in known_profiles()
    found = {p.name: p for p in find_profiles()}
    assert found["local-cpu"].path == places["user"] / "local-cpu.yaml"
    assert found["local-cpu"].source == "user config dir"
    assert [d.source for d in found["local-cpu"].overrides] == ["bundled"]
    assert found["raspberry-pi-5"].source == "bundled" and not found["raspberry-pi-5"].overrides


def test_a_folder_named_twice_is_searched_once(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEBENCH_PROFILES", os.pathsep.join([str(places["cwd"]), "device_profiles"]))
    _profile(places["cwd"], "board", "here")
    assert [d.source for d in profile_dirs()] == ["EDGEBENCH_PROFILES", "user config dir", "bundled"]
    (found,) = [p for p in find_profiles() if p.name == "board"]
    assert found.source == "EDGEBENCH_PROFILES" and not found.overrides


def _row(out: str, name: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith(f"│ {name} ")]
    return line


def test_devices_list_says_where_each_profile_came_from(places: dict[str, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _profile(places["env2"], "lab-board", "from the env")
    _profile(places["cwd"], "local-cpu", "project override")
    _profile(places["user"], "local-cpu", "user override")
    _profile(places["user"], "my-pi", "the user's")
    (places["cwd"] / "broken.yaml").write_text("name: broken\nthreads: four\n")
    assert main(["devices", "list"]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert "EDGEBENCH_PROFILES" in _row(out, "lab-board")
    assert "./device_profiles (overrides user config dir, bundled)" in _row(out, "local-cpu")
    assert "user config dir" in _row(out, "my-pi")
    assert "bundled" in _row(out, "jetson-orin-nano")
    assert "invalid" in _row(out, "broken") and "./device_profiles" in _row(out, "broken")
    searched = out[out.index("folders searched, first match wins:"):].splitlines()
    bundled = bundled_profiles_dir()
    assert searched[1:6] == [
        f"  EDGEBENCH_PROFILES  {places['env1']}  (absent)",
        f"  EDGEBENCH_PROFILES  {places['env2']}  (1 profile)",
        f"  ./device_profiles   {places['cwd']}  (2 profiles)",
        f"  user config dir     {places['user']}  (2 profiles)",
        f"  bundled             {bundled}  ({len(list(bundled.glob('*.yaml')))} profiles)"]
    assert f"{places['user']}/NAME.yaml (this user)" in searched[6]


def test_unknown_device_points_at_the_listing(places: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "check", "my-board"]) == ExitStatus.CONFIG
    err = capsys.readouterr().err
    assert "unknown device 'my-board'" in err and "'edgebench devices list' shows the folders searched" in err
