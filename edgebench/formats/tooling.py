"""Keeping third-party converters and quantizers to edgebench's own lines: their console noise silenced,
their error messages cut to one line without temporary paths."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from edgebench.text import one_line


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """onnxruntime.quantization logs advice on the root logger and its histogram calibrators print() to
    stdout; keep the CLI's output (and JSON on stdout) to edgebench's own lines."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)  # quant_pre_process logs a failed optional step as an error, then goes on
    with contextlib.suppress(ImportError):
        import onnxruntime

        onnxruntime.set_default_logger_severity(4)  # calibration sessions log to stderr; errors come back raised
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Native libraries' chatter on file descriptor 2 (LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate",
    TensorFlow's and absl's log lines) kept out of edgebench's output: captured while the block runs and shown
    only if it fails. The descriptor is the process's, so use it around short, single-threaded calls."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def tool_message(exc: BaseException, limit: int = 600) -> str:
    """A tool's whole message on one line (its cause is often on the last line; past ``limit`` characters its
    start and end), the temporary and cache paths it may name cut to file names (node names such as
    ``/conv1/Conv`` are left as they are)."""
    text = one_line(str(exc), limit) or type(exc).__name__
    ours = (tempfile.gettempdir(), "/.edgebench/", "/edgebench-")

    def short(m: re.Match[str]) -> str:
        path = m.group(0)
        return Path(path).name if path.startswith(ours[0]) or any(o in path for o in ours[1:]) else path

    return re.sub(r"(?<![\w.])/[^\s'\"():,]+", short, text)
