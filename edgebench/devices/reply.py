"""The runner's reply, checked before anything reads it: exactly one JSON object on stdout, of the form
docs/design.md's runner protocol gives. A board's broken or foreign runner, a python that prints to stdout,
a reply cut short: each is one line naming what was wrong (exit 9), never a traceback further on."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.text import one_line

RUNNER_KINDS = {
    "runtime_missing": ExitStatus.RUNTIME_MISSING,
    "invalid_model": ExitStatus.INVALID_MODEL,
    "data_mismatch": ExitStatus.DATA_MISMATCH,
    "usage": ExitStatus.USAGE,
    "config": ExitStatus.CONFIG,
}
PROTOCOL_FIX = ("the device runs another runner than this edgebench's, or something on it printed to the runner's "
                "stdout: remove the profile's workdir on the device so that edgebench pushes its runner again")

Number = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Readings = dict[str, Annotated[float, Field(strict=True, allow_inf_nan=False)]]  # sensor or clock → °C or MHz


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Runtime(_Part):
    name: str
    version: str | None = None


class _Validity(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    min_iterations_met: StrictBool
    min_duration_met: StrictBool
    stopped_by_max_duration: StrictBool


class _Memory(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    baseline: Number | None = None
    after_load: Number | None = None
    peak: Number | None = None


class _Energy(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    source: str
    avg_power_w: Number
    idle_power_w: Number
    energy_mj_per_inference: Number
    window_s: Number
    samples: Annotated[int, Field(strict=True, ge=1)]


class _Environment(_Part):
    hostname: str | None = None
    governor: str | None = None
    temperatures_c: Readings | None = None
    temperatures_c_after: Readings | None = None
    frequency_mhz: Readings | None = None
    frequency_mhz_after: Readings | None = None


class _Thermal(_Part):
    sensor: str | None = None
    temperature_c_start: Annotated[float, Field(strict=True)] | None = None
    temperature_c_end: Annotated[float, Field(strict=True)] | None = None
    throttle_events: StrictInt | None = None


class OkReply(_Part):
    """What the host reads of a reply with status ``ok`` (other keys pass through untouched)."""

    status: str
    runtime: _Runtime
    samples_ns: list[Annotated[int, Field(strict=True, gt=0)]] = Field(min_length=1)
    duration_s: Number
    load_ms: Number
    first_inference_ms: Number
    validity: _Validity
    memory_mb: _Memory
    environment: _Environment = Field(default_factory=_Environment)  # optional parts: absent, never null
    thermal: _Thermal = Field(default_factory=_Thermal)
    warmup: dict[str, Any] = Field(default_factory=dict)
    distinct_inputs: StrictInt | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    energy: _Energy | None = None  # with a profile's power source (runner/power.py)
    energy_note: str | None = None


class _ErrorDetail(_Part):
    kind: str = "runner_failed"
    message: str = "unknown error"


def _protocol_error(device: str, what: str) -> EdgebenchError:
    return EdgebenchError(f"the runner on {device} broke the protocol: {what}: {PROTOCOL_FIX}",
                          ExitStatus.RUNNER_FAILED)


def _field_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    got = err.get("input")
    got_text = f" (got {one_line(repr(got))[:80]})" if not isinstance(got, (dict, list)) else ""
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"field {where!r}: {err['msg']}{got_text}{more}"


def _json_lines(stdout: str) -> tuple[list[Any], list[str]]:
    """The stdout lines that are JSON values, and why each line that looked like one did not parse."""
    values: list[Any] = []
    broken: list[str] = []
    for line in stdout.splitlines():
        text = line.strip()
        if not text.startswith(("{", "[")):
            continue
        try:
            values.append(json.loads(text))
        except RecursionError:
            broken.append("nested too deeply")
        except ValueError as exc:
            broken.append(str(exc))
    return values, broken


def read_reply(stdout: str, stderr: str, returncode: int | None, device: str, died: str) -> dict[str, Any]:
    """The runner's one reply, checked; ``died`` is how the process ended (for the message when it left
    none). Raises EdgebenchError: exit 9 for a runner that died or broke the protocol, the error's own kind's
    status for a runner that reported an error."""
    values, broken = _json_lines(stdout)
    killed = returncode is None or returncode < 0
    if not values and (not broken or killed):
        tail = one_line((stderr.strip().splitlines() or ["no output"])[-1])[:300]
        hint = ("the device may have run out of memory (check dmesg) or the process was killed"
                if killed else "check the device's python and numpy")
        raise EdgebenchError(f"the runner on {device} died ({died}) without a result; "
                             f"last stderr line: {tail!r}: {hint}", ExitStatus.RUNNER_FAILED)
    if broken:
        raise _protocol_error(device, f"a reply line is not valid JSON ({one_line(broken[0])[:200]})")
    if len(values) > 1:
        raise _protocol_error(device, f"{len(values)} JSON replies where the protocol allows exactly one")
    payload = values[0]
    if not isinstance(payload, dict):
        raise _protocol_error(device, f"the reply is a JSON {type(payload).__name__}, not an object")
    status = payload.get("status")
    if status == "error":
        try:
            error = _ErrorDetail.model_validate(payload.get("error") or {})
        except ValidationError as exc:
            raise _protocol_error(device, f"error reply {_field_problem(exc)}") from None
        raise EdgebenchError(f"runner on {device}: {one_line(error.message)}",
                             RUNNER_KINDS.get(error.kind, ExitStatus.RUNNER_FAILED))
    if status != "ok":
        raise _protocol_error(device, f"status {one_line(repr(status))[:80]}, expected 'ok' or 'error'")
    try:
        OkReply.model_validate(payload)
        if "partner" in payload:  # a paired job (ab): the second model's part has the same shape
            OkReply.model_validate(payload["partner"])
    except ValidationError as exc:
        raise _protocol_error(device, _field_problem(exc)) from None
    return payload
