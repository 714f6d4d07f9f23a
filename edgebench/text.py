"""Text from outside (a board's error message, a model's or device's name) made safe where it is shown: a
terminal, where escape codes would recolour, move the cursor or retitle the window, and Markdown, where
``<script>``, an open ``<!--`` or a ``|`` would change what the rest of a job summary shows."""

from __future__ import annotations

import re

# ESC-introduced sequences first (CSI ``ESC [ … final``, OSC ``ESC ] … BEL/ST``, two-byte ``ESC x``), so that
# no ``[31m`` is left behind; then any other C0 control but tab and newline, DEL and the C1 controls.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_MARKDOWN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "`": "\\`", "\n": " ", "\r": " "})


def printable(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tab and newline kept)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def one_line(text: str, limit: int = 1500) -> str:
    """``text`` made printable, its lines joined with ``"; "`` and runs of blanks made one space: the whole
    message (an error's cause is often on its last line), on the one line the error contract promises; past
    ``limit`` characters its start and its end (where a converter or runtime puts the cause)."""
    lines = (" ".join(line.split()) for line in printable(text).splitlines())
    flat = "; ".join(line for line in lines if line)
    return flat if len(flat) <= limit else f"{flat[:limit // 2]} … {flat[-(limit // 2):]}"


def markdown_text(text: str) -> str:
    """``text`` as literal Markdown inline text (a table cell, a list item): HTML and a comment opener become
    entities, ``|`` and backticks are escaped, line breaks become spaces; control characters are dropped."""
    return printable(text).translate(_MARKDOWN)
