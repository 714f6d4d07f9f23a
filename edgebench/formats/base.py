"""What a deployment format is to edgebench: one ``Format`` subclass per format package.

A format converts the hub form (ONNX) into its artifact, with its own quantizer for the int8 precisions;
reads an artifact's tensors (``describe``), weights (for cost metrics and preservation checks) and
precision back from the file; names the runner backend that executes it, the pip extra that installs
its tools, and the runner options that backend accepts; and says what an artifact adds to a runner job
(files beside the main one, options such as the precision an engine is built at).

A format package's ``__init__`` holds only its ``Format`` subclass: the toolchain (onnx2tf, OpenVINO,
TensorRT …) is imported by the methods that need it, so a format costs nothing until it is used.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.formats.tensors import Artifact, TensorIO
from edgebench.runner.backends.base import BaseBackend

Weights = dict[str, np.ndarray]


class RunnerOptions(BaseModel):
    """The ``--option KEY=VALUE`` a runner backend accepts (one model per backend, ``runner_options_for``,
    every field optional); an unknown key is refused on the host, before the job is sent. The values' own
    checks (an unknown optimization level …) stay with the backend, which knows the runtime's choices."""

    model_config = ConfigDict(extra="forbid")


def runner_options_for(backend: type[BaseBackend]) -> type[RunnerOptions]:
    """The typed ``--option`` model of a runner backend, built from the keys and value types the backend
    declares (``option_types``): the runner, which cannot import the host, holds the one list."""
    fields: dict[str, Any] = {}
    for name, kind in backend.option_types.items():
        kinds = kind if isinstance(kind, tuple) else (kind,)
        fields[name] = (Union[(*kinds, None)], None)
    return create_model(f"{backend.runtime_name}Options", __base__=RunnerOptions, **fields)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing, or a module without a spec
        return False


class Format(ABC):
    name: ClassVar[str]  # as --to / --format / sweep specs spell it
    runtime: ClassVar[str]  # the runner backend that executes its artifacts (a device profile's runtimes)
    extra: ClassVar[str]  # the pip extra that installs its host tools
    suffixes: ClassVar[tuple[str, ...]]  # artifact file endings it recognises (empty: none of its own)
    precisions: ClassVar[tuple[str, ...]]  # what it can emit
    runner_options: ClassVar[type[RunnerOptions]] = RunnerOptions
    # the Python modules of its runtime, any one of which runs its artifacts in this interpreter
    runtime_modules: ClassVar[tuple[str, ...]] = ()
    # its int8 takes a QDQ ONNX's own scales (``quantization["qdq"]``) and needs no calibration set
    takes_qdq: ClassVar[bool] = False

    @classmethod
    def install_hint(cls, extra: str | None = None) -> str:
        """The command that installs this format's tools (or another extra's), for "not installed" messages."""
        return f"pip install 'edgebench[{extra or cls.extra}]'"

    @classmethod
    def require(cls, module: str, needed_for: str) -> Any:
        """``module``, imported; where it is not installed, RUNTIME_MISSING: "<needed_for>: <install_hint()>"."""
        try:
            return importlib.import_module(module)
        except ImportError:
            raise EdgebenchError(f"{needed_for}: {cls.install_hint()}", ExitStatus.RUNTIME_MISSING) from None

    @classmethod
    def runtime_missing_here(cls) -> str | None:
        """Why this interpreter cannot run the format's artifacts (none of ``runtime_modules`` is installed),
        with the pip extra that fixes it; None when it can."""
        if not cls.runtime_modules or any(_installed(m) for m in cls.runtime_modules):
            return None
        return f"{cls.runtime} is not installed here: {cls.install_hint()}"

    @abstractmethod
    def tool_versions(self) -> dict[str, str]:
        """The versions of the tools a conversion uses (part of the artifact cache key); raises
        ``RUNTIME_MISSING`` naming the extra when they are not installed."""

    def key_material(self, precision: str) -> dict[str, Any]:
        """What the artifact cache keys on besides tool versions (e.g. an int8 scheme chosen for the host)."""
        return {}

    @abstractmethod
    def convert(self, source: Path, precision: str, out_dir: Path, calibration: Path | None = None,
                **options: Any) -> Artifact:
        """Convert the ONNX ``source`` into ``out_dir`` at ``precision`` (already checked against
        ``precisions``); ``options`` are ``quantization`` and ``shapes`` plus any of the format's own.
        ``quantization["qdq"]`` (int8 only) names the QDQ ONNX of quantization-aware training: the int8 path
        converts it instead of quantizing ``source`` (``formats.prequantized``), with no calibration where
        ``takes_qdq``."""

    @abstractmethod
    def describe(self, path: Path) -> tuple[list[TensorIO], list[TensorIO]]:
        """Names, dtypes and shapes of an artifact's inputs and outputs, read from the file."""

    def artifact_files(self, main: Path) -> list[Path]:
        """The files of an artifact given by its main file (IR weights beside the .xml …), each checked."""
        return [main]

    def can_read_weights(self, main: Path) -> bool:
        """Whether ``read_weights`` can read this artifact's weights on the host."""
        return False

    def read_weights(self, main: Path) -> tuple[Weights, Weights]:
        """(every counted weight tensor, each weight layer's weight keyed by layer), dequantized to float32
        as the runtime computes with them (see ``formats.readback``)."""
        raise ValueError(f"no weight reader for format {self.name!r}")

    def read_precision(self, path: Path) -> str | None:
        """The precision ``path`` holds, read from the file (``formats.precision.UNKNOWN`` where it holds
        none of edgebench's), or None where this format's files cannot say (a TensorRT engine)."""
        return None

    def job_files(self, main: Path, files: list[Path]) -> dict[str, Path]:
        """Runner-job keys → the local files the backend needs."""
        return {"artifact": main}

    def job_options(self, precision: str) -> dict[str, Any]:
        """Backend options the artifact itself contributes to a job (before the user's ``--option``)."""
        return {}

    def check_runner_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` checked against ``runner_options``: the options as the backend takes them, or one line
        naming the accepted keys."""
        try:
            checked = self.runner_options.model_validate(dict(given))
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"][:1])
            accepted = ", ".join(sorted(self.runner_options.model_fields)) or "none"
            if err["type"] == "extra_forbidden":
                raise EdgebenchError(f"unknown --option {key!r} for the {self.runtime} backend: it accepts "
                                     f"{accepted}", ExitStatus.USAGE) from None
            raise EdgebenchError(f"bad --option {key}={given.get(key)!r} for the {self.runtime} backend: "
                                 f"{err['msg']}", ExitStatus.USAGE) from None
        return checked.model_dump(exclude_unset=True)
