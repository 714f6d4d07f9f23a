"""Every command's --help renders, and shows flags as flags: no ``<bool>`` beside --dry-run, --last,
--all-layers, --traceback or --help, as if they took a value."""

from __future__ import annotations

import pytest
from typer.core import TyperGroup

from edgebench.cli import COMMANDS, load_command, main


def command_lines() -> list[list[str]]:
    """The root, every command and every subcommand of a group, as argv."""
    found: list[list[str]] = [[]]
    for name in COMMANDS:
        found.append([name])
        command = load_command(name)
        if isinstance(command, TyperGroup):
            found += [[name, sub] for sub in command.commands]
    return found


@pytest.mark.parametrize("argv", command_lines(), ids=lambda argv: " ".join(argv) or "edgebench")
def test_help_renders_and_shows_flags_as_flags(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: edgebench" in out and "--help" in out
    assert "<bool>" not in out, [line for line in out.splitlines() if "<bool>" in line]
