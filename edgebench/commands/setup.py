"""`edgebench setup tflite [--check]`: prepare the tools a conversion needs ahead of time (in CI, to cache the
folder, or before going offline), or say which would be used."""

from __future__ import annotations

import typer
from rich.markup import escape

from edgebench.commands.common import environment
from edgebench.formats.tflite import convert_env

app = typer.Typer(add_completion=False, no_args_is_help=True)


@app.callback()
def setup() -> None:
    """Prepare the tools a conversion needs ahead of time (the ONNX → TFLite converter)."""


@app.command("tflite")
def tflite(ctx: typer.Context,
           check: bool = typer.Option(False, "--check", help="Only say which converter would be used; "
                                                              "prepare nothing.")) -> None:
    """Prepare the ONNX → TFLite converter (onnx2tf + TensorFlow) in its own environment, or with --check say
    which interpreter converts: $EDGEBENCH_TFLITE_PYTHON, this one, or the environment under the cache dir."""
    env = environment(ctx)
    console = env.console
    found = convert_env.current()
    if found is None and check:
        console.print(f"no converter ready: the first TFLite conversion (or 'edgebench setup tflite') prepares "
                      f"one in {escape(str(convert_env.env_dir()))} (~{convert_env.DOWNLOAD_MB} MB from PyPI; "
                      f"the folder: ${convert_env.CACHE_VAR})", soft_wrap=True)
        return
    if found is None:
        found = convert_env.prepare_env(convert_env.env_dir(), lambda line: console.print(escape(line),
                                                                                           soft_wrap=True))
    where = f" in {found.folder}" if found.folder else ""
    console.print(f"ONNX → TFLite converter: {found.source}{escape(where)}", soft_wrap=True)
    console.print(f"  python  {escape(str(found.python))}", soft_wrap=True)
    for dist, version in found.versions.items():
        console.print(f"  {dist:<15} {version}")
