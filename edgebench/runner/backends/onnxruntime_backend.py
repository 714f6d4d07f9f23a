"""ONNX Runtime backend: threads, graph optimization level, execution providers."""

from __future__ import annotations

import functools
import importlib
import json
import os
import shutil
import tempfile
from typing import Any, Callable, Sequence

import numpy as np

from .. import profiling
from ..runner_env import physical_cores
from ..throughput import usable_cpus
from .base import BadOption, BaseBackend, RuntimeMissing

_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
           "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
_DEVICE_PROVIDERS = {"CPU": ["CPUExecutionProvider"],
                     "GPU": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


class Backend(BaseBackend):
    runtime_name = "onnxruntime"
    pip_package = "onnxruntime"
    option_types = {"graph_optimization_level": str,  # disable, basic, extended, all (default)
                    "execution_providers": list,  # names, or [name, options] pairs; default: by device
                    "inter_op_threads": int}
    session: Any = None

    def import_runtime(self) -> None:
        self.ort = importlib.import_module("onnxruntime")

    def runtime_version(self) -> str:
        return str(self.ort.__version__)

    def check_options(self) -> None:
        level = str(self.backend_options.get("graph_optimization_level", "all"))
        if level not in _LEVELS:
            raise BadOption(f"graph_optimization_level {level!r} is not one of {', '.join(_LEVELS)}")

    def _providers(self) -> list[Any]:
        wanted = self.backend_options.get("execution_providers") or _DEVICE_PROVIDERS.get(self.device.upper())
        if not wanted:
            raise ValueError(f"no execution provider for device {self.device!r}: "
                             "set backend_options.execution_providers")
        available = self.ort.get_available_providers()
        usable = [p for p in wanted if (p if isinstance(p, str) else p[0]) in available]
        if not usable:
            raise RuntimeMissing(f"onnxruntime here offers {available}, none of {wanted}: install the "
                                 "onnxruntime build for this accelerator (e.g. pip install onnxruntime-gpu)")
        return usable

    def load_impl(self, artifact: str) -> None:
        self.session = self.ort.InferenceSession(artifact, sess_options=self.session_options(self.threads),
                                                 providers=self._providers())
        self.output_names = [o.name for o in self.session.get_outputs()]

    def session_options(self, threads: int) -> Any:
        """New SessionOptions from the job's (a session's own, from get_session_options, is shared with it)."""
        so = self.ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        so.inter_op_num_threads = int(self.backend_options.get("inter_op_threads", 1))
        so.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        level = str(self.backend_options.get("graph_optimization_level", "all"))
        so.graph_optimization_level = getattr(self.ort.GraphOptimizationLevel, _LEVELS[level])
        return so

    def throughput_workers(self, streams: int, requests: int) -> tuple[list[Callable[[Any], Any]], dict[str, Any]]:
        """``streams`` sessions with the loaded one's options, the CPUs shared out between them unless the job
        set threads; ``run`` is thread-safe, so requests beyond ``streams`` share a session."""
        so = self.session_options(self.threads or max(1, usable_cpus() // streams))
        sessions = [self.ort.InferenceSession(self.job.artifact, sess_options=so, providers=self._providers())
                    for _ in range(streams)]
        workers: list[Callable[[Any], Any]] = [functools.partial(sessions[k % streams].run, self.output_names)
                                                for k in range(requests)]
        return workers, {"sessions": streams, "threads_per_session": so.intra_op_num_threads}

    def prepare(self, feed: dict[str, Any]) -> dict[str, Any]:
        return {i.name: np.asarray(feed[i.name], order="C") for i in self.session.get_inputs()}

    def infer(self, prepared: dict[str, Any]) -> Any:
        return self.session.run(self.output_names, prepared)

    def outputs(self, prepared: dict[str, Any]) -> dict[str, Any]:
        return dict(zip(self.output_names, self.session.run(self.output_names, prepared)))

    def io(self) -> dict[str, Any]:
        def describe(args: Any) -> list[dict[str, Any]]:
            return [{"name": a.name, "type": a.type, "shape": list(a.shape)} for a in args]
        return {"inputs": describe(self.session.get_inputs()), "outputs": describe(self.session.get_outputs())}

    def threads_used(self) -> int | None:
        # The session reports only what was set (0: the default, which the Python API does not expose);
        # ONNX Runtime's default is one intra-op thread per physical core ("Thread management" in its docs).
        return int(self.session.get_session_options().intra_op_num_threads) or physical_cores()

    def options(self) -> dict[str, Any]:
        return {**super().options(), "providers": self.session.get_providers() if self.session else None,
                "graph_optimization_level": self.backend_options.get("graph_optimization_level", "all")}

    def profile(self, prepared: Sequence[Any], iterations: int) -> dict[str, Any]:
        """ONNX Runtime's profiling trace (SessionOptions.enable_profiling) of a second session with the loaded
        one's options: each node's kernel time, op type, element types and execution provider."""
        folder = tempfile.mkdtemp(prefix="edgebench-ort-profile-")
        try:
            so = self.session_options(self.threads)  # fresh: the loaded session's own are shared with it
            so.enable_profiling, so.profile_file_prefix = True, os.path.join(folder, "trace")
            session = self.ort.InferenceSession(self.job.artifact, sess_options=so, providers=self._providers())
            profiling.run_pass(functools.partial(session.run, self.output_names), prepared, iterations)
            with open(session.end_profiling(), encoding="utf-8") as f:
                events = json.load(f)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        times, runs = profiling.ort_node_times(events)
        return profiling.summary("onnxruntime profiling trace", runs, times)
