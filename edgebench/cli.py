"""The ``edgebench`` command: parse, call the library, render. No measurement logic lives here.

Commands are listed here by name, with the module that holds each and its one-line help: ``--help`` and
``--version`` import none of them, and a command's module (with numpy, onnx, rich tables …) is imported
only when that command runs.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
import traceback
from types import FrameType
from typing import Any, Callable, Sequence

import typer
from typer import _click as click  # the click typer vendors: its group and command types
from typer.core import TyperCommand, TyperGroup, TyperOption

from edgebench import __version__
from edgebench.environment import Environment
from edgebench.errors import EdgebenchError, ExitStatus, Terminated
from edgebench.text import one_line

# name: ("module:attribute", help). The attribute is a command function or, for a group, a typer.Typer;
# the help is the command's docstring (the group's help), as --help lists it (tests/test_cli_lazy.py checks).
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("edgebench.commands.bench:bench", "Benchmark one model or artifact on one device: latency, load and "
              "first inference, peak memory, top-1."),
    "convert": ("edgebench.commands.convert:convert", "Convert a model into deployment formats; a conversion "
                "already in the cache is not repeated."),
    "compare": ("edgebench.commands.compare:compare", "Run each format on the same data; compare every output with "
                "the fp32 ONNX reference (exit status 1\nif a format fails its precision's criteria)."),
    "compress": ("edgebench.commands.compress:compress", "Compress a model with a recipe in each format; print size, "
                 "gzip size, ratios vs fp32, sparsity,\nunique values and whether the produced file kept the "
                 "pruning/clustering."),
    "sweep": ("edgebench.commands.sweep:sweep", "Run a sweep spec: convert each (model, recipe, format) once, measure "
              "every cell, store each at once."),
    "demo": ("edgebench.commands.sweep:demo", "Run the bundled demo sweep (digits CNN × fp32/fp16/int8/prune+int8 × "
             "onnx/openvino/tflite on this CPU)\nand write its HTML report."),
    "gate": ("edgebench.commands.gate:gate", "Fail (exit 1) when the candidate regresses latency, memory, size or "
             "accuracy against the baseline."),
    "ab": ("edgebench.commands.gate:ab", "Measure A and B together, round by round, until a sequential"
           " test proves the latency verdict; then gate."),
    "report": ("edgebench.commands.report:report", "Write a self-contained HTML report and/or a Markdown summary of "
               "a run, or of each cell across runs."),
    "devices": ("edgebench.commands.devices:app", "Device profiles: list them, check a device, print the schema; "
                "who holds which device."),
    "results": ("edgebench.commands.results:app", "List, show and export the runs in the results store; their noise between runs."),
    "setup": ("edgebench.commands.setup:app", "Prepare the tools a conversion needs ahead of time (the ONNX → "
              "TFLite converter)."),
}


def load_command(name: str) -> click.Command:
    """The command ``name`` as click runs it, its module imported now."""
    module, _, attribute = COMMANDS[name][0].partition(":")
    target = getattr(importlib.import_module(module), attribute)
    if not isinstance(target, typer.Typer):
        single = typer.Typer(add_completion=False)
        single.command(name=name)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = name
    untyped_flags(command)
    return command


def untyped_flags(command: click.Command, parent: click.Context | None = None) -> None:
    """Typer's rich help prints ``<bool>`` beside every flag (its own --help included), as if the flag took
    a value; an empty metavar is what it prints instead. For ``command``, its --help and its subcommands."""
    ctx = click.Context(command, parent=parent)
    for param in [*command.params, command.get_help_option(ctx)]:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    for sub in command.commands.values() if isinstance(command, TyperGroup) else ():
        untyped_flags(sub, ctx)


class LazyGroup(TyperGroup):
    """The root group: lists every command from :data:`COMMANDS` and loads one only to run it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, (_, help_text) in COMMANDS.items():
            self.add_command(TyperCommand(name, help=help_text))  # what --help and "did you mean" read
        untyped_flags(self)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name, _, rest = super().resolve_command(ctx, args)
        return name, (load_command(name) if name else None), rest


app = typer.Typer(cls=LazyGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Convert, compress and benchmark neural networks on edge devices.")


def _version(ctx: typer.Context, value: bool) -> None:
    if value:
        ctx.ensure_object(Environment).stdout.write(f"edgebench {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    show_traceback: bool = typer.Option(False, "--traceback", help="Show the traceback of an error."),
) -> None:
    """edgebench: which format, precision and compression of your model runs best on each device."""


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> ExitStatus:
    """Run the CLI in ``env`` (default: this process's streams, variables and clock) and return its exit
    status; user errors print one line, no traceback."""
    env = Environment() if env is None else env
    args = list(sys.argv[1:] if argv is None else argv)
    sigterm = _SigtermRaises()
    try:
        code = app(args=args, prog_name="edgebench", standalone_mode=False, obj=env)
    except EdgebenchError as exc:
        if "--traceback" in args:
            traceback.print_exc(file=env.stderr)
        env.stderr.write(f"edgebench: error: {one_line(str(exc))}\n")  # a board's text: no escape codes
        return exc.status
    except typer.Exit as exc:
        return ExitStatus(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:  # a command or group given nothing: its help
        exc.show(file=env.stderr)
        return ExitStatus.USAGE
    except click.exceptions.UsageError as exc:  # click's own: one line too, naming the command's --help as the fix
        where = exc.ctx.command_path if exc.ctx is not None else "edgebench"
        env.stderr.write(f"edgebench: error: {one_line(exc.format_message()).rstrip('.')}: see '{where} --help'\n")
        return ExitStatus.USAGE
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        show(file=env.stderr) if show else env.stderr.write(f"edgebench: error: {exc.format_message()}\n")
        return ExitStatus.USAGE
    except (typer.Abort, KeyboardInterrupt):
        return _interrupted(env, sigterm.came)
    finally:
        sigterm.restore()
    if code == ExitStatus.INTERRUPTED:  # typer's answer to a KeyboardInterrupt (SIGTERM's too): Exit(130), returned
        return _interrupted(env, sigterm.came)
    # click returns the code of a typer.Exit raised inside a command (standalone_mode=False)
    return ExitStatus(code) if isinstance(code, int) else ExitStatus.OK


def _interrupted(env: Environment, terminated: bool) -> ExitStatus:
    env.stderr.write(f"edgebench: {'terminated (SIGTERM)' if terminated else 'interrupted'}\n")
    return ExitStatus.TERMINATED if terminated else ExitStatus.INTERRUPTED


class _SigtermRaises:
    """While ``main`` runs, SIGTERM (CI's cancel) raises :class:`Terminated` in the main thread, so it unwinds as
    Ctrl-C does (runs marked interrupted, runners stopped, temporary folders removed) instead of killing the
    process where it stands; ``came`` says whether it did. Off the main thread no handler can be set."""

    def __init__(self) -> None:
        self.came = False
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None
        self._installed = threading.current_thread() is threading.main_thread()
        if self._installed:
            self._previous = signal.signal(signal.SIGTERM, self._raise)

    def _raise(self, signum: int, frame: FrameType | None) -> None:
        self.came = True
        raise Terminated()

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if self._previous is None else self._previous)


def run() -> None:
    """Console-script entry point."""
    sys.exit(int(main()))
