"""The ``edgebench`` command: parse, call the library, render. No measurement logic lives here."""

from __future__ import annotations

import sys
import traceback

import typer

from edgebench import __version__
from edgebench.commands import register
from edgebench.commands.common import console
from edgebench.errors import EdgebenchError, ExitStatus

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Convert, compress and benchmark neural networks on edge devices.")


def _version(value: bool) -> None:
    if value:
        console.print(f"edgebench {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    show_traceback: bool = typer.Option(False, "--traceback", help="Show the traceback of an error."),
) -> None:
    """edgebench: which format, precision and compression of your model runs best on each device."""


register(app)


def main(argv: list[str] | None = None) -> ExitStatus:
    """Run the CLI and return its exit status; user errors print one line, no traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=argv, prog_name="edgebench", standalone_mode=False)
    except EdgebenchError as exc:
        if "--traceback" in argv:
            traceback.print_exc()
        sys.stderr.write(f"edgebench: error: {exc}\n")
        return exc.status
    except typer.Exit as exc:
        return ExitStatus(exc.exit_code)
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        show() if show else sys.stderr.write(f"edgebench: error: {exc.format_message()}\n")
        return ExitStatus.USAGE
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("edgebench: interrupted\n")
        return ExitStatus.INTERRUPTED
    # click returns the code of a typer.Exit raised inside a command (standalone_mode=False)
    return ExitStatus(code) if isinstance(code, int) else ExitStatus.OK


def run() -> None:
    """Console-script entry point."""
    sys.exit(int(main()))
