"""Typed record parts: the strict checks a result's JSON parts go through when read back (``from_dict``).

A part that is not what edgebench writes (a hand-edited or foreign file) is refused in one line naming the field.
"""

from __future__ import annotations

import functools
from dataclasses import fields
from typing import Any, Mapping, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError

from edgebench.errors import EdgebenchError, ExitStatus


class RecordError(EdgebenchError):
    """A result part that is not what edgebench writes (a hand-edited or foreign file)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitStatus.USAGE)


def known(cls: type, data: Mapping[str, Any], part: str) -> dict[str, Any]:
    """``data``'s keys that are ``cls``'s fields, each of its field's type; any other key is refused, naming it."""
    if not isinstance(data, Mapping):
        raise RecordError(f"result {part}: expected an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = [k for k in data if k not in names]
    if unknown:
        raise RecordError(f"result {part}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(names))})")
    return typed(cls, data, part)


@functools.cache
def field_types(cls: type) -> dict[str, TypeAdapter[Any]]:
    """A strict checker per field of the dataclass ``cls``: JSON's types as the field declares them, no "1"
    for 1 and no 0 for False."""
    hints, parts = get_type_hints(cls), getattr(cls, "_PARTS", {})  # a Result's parts check themselves
    return {f.name: TypeAdapter(hints[f.name], config=ConfigDict(strict=True)) for f in fields(cls)
            if f.name not in parts}


def typed(cls: type, data: Mapping[str, Any], part: str) -> dict[str, Any]:
    """``data`` (unchanged) once each of its keys that is a field of ``cls`` holds that field's type."""
    checks = field_types(cls)
    for key, value in data.items():
        if key in checks:
            try:
                checks[key].validate_python(value)
            except ValidationError as exc:
                raise RecordError(f"result {part + ': ' if part else ''}field {_where(key, exc)}: pass a result "
                                  "as edgebench writes it (bench/sweep --json, results export)") from None
    return dict(data)


def _where(key: str, exc: ValidationError) -> str:
    """The first problem ``exc`` found under ``key``, as ``'samples_ns.3': Input should be … (got 'a')``."""
    err = exc.errors()[0]
    where = ".".join([key, *(str(p) for p in err["loc"])])
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) else f" (got {repr(got)[:60]})"
    return f"{where!r}: {err['msg']}{shown}"
