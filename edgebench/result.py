"""The result record: plain data with ``to_dict``/``from_dict``, named as DESIGN.md's contract.

Reports, gates and users' scripts read these names, so they change only with ``SCHEMA_VERSION``.
Raw samples travel with every result: aggregates are recomputed from samples, never averaged.
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgebench import __version__
from edgebench.errors import EdgebenchError, ExitStatus

SCHEMA_VERSION = 1


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_commit(path: Path = Path(__file__).resolve().parent) -> dict[str, Any] | None:
    """The edgebench checkout's commit and whether it has uncommitted changes; None outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"sha": sha, "dirty": bool(dirty)}


@dataclass
class Result:
    model: dict[str, Any]
    device: dict[str, Any]
    status: str = "ok"
    error: dict[str, Any] | None = None
    runtime: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, float] | None = None
    samples_ns: list[int] = field(default_factory=list)
    iterations: int = 0
    duration_s: float = 0.0
    batch: int = 1
    load_ms: float | None = None
    first_inference_ms: float | None = None
    throughput_per_s: float | None = None
    memory_mb: dict[str, float | None] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    validity: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    edgebench_version: str = __version__
    created_utc: str = field(default_factory=utc_now)
    commit: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cell_key(self) -> tuple[str, ...]:
        """What identifies a cell across runs: model, recipe, format, device and options."""
        m = self.model
        opts = json.dumps(self.options, sort_keys=True)
        return (str(m.get("name")), str(m.get("recipe")), str(m.get("format")),
                str(self.device.get("profile")), opts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "result") -> "Result":
        if not isinstance(data, dict):
            raise EdgebenchError(f"{source}: expected a result object, got {type(data).__name__}",
                                 ExitStatus.INVALID_MODEL)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise EdgebenchError(f"{source}: result schema_version {version!r}, this edgebench reads "
                                 f"{SCHEMA_VERSION}: re-run the benchmark with this version",
                                 ExitStatus.USAGE)
        missing = [k for k in ("model", "device", "status") if k not in data]
        if missing:
            raise EdgebenchError(f"{source}: not an edgebench result (missing {', '.join(missing)})",
                                 ExitStatus.USAGE)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def write_results(results: list[Result], path: Path, always_list: bool = False) -> None:
    """One result as an object (``bench --json``), several — or any number with ``always_list``, as
    sweeps and exports write them — as a list; ``read_results`` and ``gate`` take both."""
    single = len(results) == 1 and not always_list
    payload: Any = results[0].to_dict() if single else [r.to_dict() for r in results]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)


def read_results(path: Path) -> list[Result]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgebenchError(f"result file not found: {path}", ExitStatus.NOT_FOUND) from None
    except (OSError, ValueError) as exc:
        raise EdgebenchError(f"{path} is not a JSON result file ({exc}): pass a file written by "
                             "'edgebench bench --json' or 'edgebench sweep --json'", ExitStatus.USAGE) from None
    items = data if isinstance(data, list) else [data]
    return [Result.from_dict(item, f"{path}[{i}]") for i, item in enumerate(items)]
