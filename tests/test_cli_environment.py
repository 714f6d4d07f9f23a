"""The CLI runs in process in an injected environment (streams, variables, clock): nothing it prints goes
to the process's own stdout or stderr, and it reads variables from the environment it is given."""

from __future__ import annotations

import io
import json

from edgebench import __version__
from edgebench.cli import main
from edgebench.environment import Environment
from edgebench.errors import ExitStatus


def captured(environ: dict[str, str] | None = None) -> Environment:
    return Environment(stdout=io.StringIO(), stderr=io.StringIO(), environ=environ or {}, clock=lambda: 0.0)


def test_output_goes_to_the_environments_stdout(capsys):
    env = captured()
    assert main(["--version"], env) == ExitStatus.OK
    assert main(["devices", "schema"], env) == ExitStatus.OK
    version, _, schema = env.stdout.getvalue().partition("\n")
    assert version == f"edgebench {__version__}" and json.loads(schema)["title"] == "DeviceProfile"
    assert capsys.readouterr() == ("", "")


def test_tables_print_on_the_environments_console(capsys):
    env = captured()
    assert main(["devices", "list"], env) == ExitStatus.OK
    assert "device profiles" in env.stdout.getvalue() and "local-cpu" in env.stdout.getvalue()
    assert capsys.readouterr() == ("", "")


def test_errors_go_to_the_environments_stderr_with_their_status(tmp_path, capsys):
    env = captured()
    assert main(["results", "list", "--store", str(tmp_path / "none.db")], env) == ExitStatus.NOT_FOUND
    assert env.stderr.getvalue().startswith("edgebench: error: no results store at ")
    assert main(["bnch"], env) == ExitStatus.USAGE  # click's own usage errors too
    assert "No such command 'bnch'. Did you mean 'bench'?" in env.stderr.getvalue()
    assert env.stdout.getvalue() == "" and capsys.readouterr() == ("", "")


def test_the_console_reads_the_injected_variables():
    assert captured().console.width == 200  # not a terminal: wide enough for the tables in logs
    assert captured({"NO_COLOR": "1"}).console.no_color and not captured().console.no_color


def test_step_summary_comes_from_the_injected_environ(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "process.md"))
    assert captured().step_summary is None  # the process's variables are not read
    assert captured({"GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")}).step_summary == tmp_path / "s.md"
    assert Environment().step_summary == tmp_path / "process.md"  # the default environment is the process's
