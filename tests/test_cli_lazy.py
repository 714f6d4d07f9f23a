"""Commands are imported when called: ``--version`` and ``--help`` import no command module and none of the
heavy libraries, and ``--help`` still lists every command with its help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgebench.cli import COMMANDS, load_command

HEAVY = ("numpy", "onnx", "onnxruntime", "pydantic", "yaml", "edgebench.config", "edgebench.commands")


def modules_after(*argv: str) -> tuple[set[str], str]:
    """The modules a fresh interpreter holds after running the CLI with ``argv``, and what it printed."""
    script = ("import json, sys\nfrom edgebench.cli import main\nstatus = main(sys.argv[1:])\n"
              "print('\\nMODULES ' + json.dumps(sorted(sys.modules)))\nsys.exit(int(status))\n")
    proc = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    printed, _, listing = proc.stdout.rpartition("\nMODULES ")
    return set(json.loads(listing)), printed


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_version_imports_no_command_and_no_heavy_library():
    modules, printed = modules_after("--version")
    assert printed.strip().startswith("edgebench ")
    assert heavy(modules) == [] and "rich" not in modules  # the console is built on first use


def test_help_lists_every_command_without_importing_them():
    modules, printed = modules_after("--help")
    assert heavy(modules) == []  # typer renders the help with rich: that much rich is imported
    for name, (_, help_text) in COMMANDS.items():
        assert f" {name} " in printed and help_text.split()[1] in printed, name


def test_a_command_imports_only_its_own_module():
    modules, printed = modules_after("devices", "schema")
    assert json.loads(printed)["title"] == "DeviceProfile"
    commands = sorted(m for m in modules if m.startswith("edgebench.commands."))
    assert commands == ["edgebench.commands.common", "edgebench.commands.devices"]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_listed_help_is_the_commands_own(name):
    """The help --help lists (from COMMANDS) is the docstring or group help of the command that runs."""
    assert load_command(name).help == COMMANDS[name][1]
