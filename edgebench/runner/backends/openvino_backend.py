"""OpenVINO backend: device CPU/GPU/NPU/AUTO, performance hint, streams, threads, compiled-blob cache.

``precision`` (from the host: the artifact's) picks the execution precision, see
``inference_precision``. Synchronous inference on one infer request, like an app that calls ``infer`` and waits (benchmark_app
with ``-api sync``). The runner's load time is read + compile; ``extra`` splits them and says whether
the compiled-blob cache (``cache_dir``) already held this model. With ``cache_dir`` set and
``warm_compile`` true (default), the model is compiled once more after measuring, to report the warm
compile time a second start would see, without disturbing load time or memory figures.
"""

from __future__ import annotations

import importlib
import os
import time
from typing import Any, Callable, Sequence

import numpy as np

from .. import profiling
from ..runner_env import thread_limit
from ..throughput import measure_async
from ..timing import TimingRules
from .base import BadOption, BaseBackend

_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
_STREAMS = ("AUTO", "NUMA")  # OpenVINO's named stream counts


def _streams_ok(value: Any, limit: int) -> bool:
    """num_streams: AUTO, NUMA, or 1 to ``limit`` (a number, or its digits)."""
    if isinstance(value, str):
        return value.upper() in _STREAMS or (value.isdecimal() and 1 <= int(value) <= limit)
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= limit


class Backend(BaseBackend):
    runtime_name = "openvino"
    pip_package = "openvino"
    option_types = {"performance_hint": str,  # LATENCY (default), THROUGHPUT, CUMULATIVE_THROUGHPUT
                    "num_streams": (int, str),
                    "inference_precision": str,  # f32, f16, bf16; default: the artifact's precision
                    "cache_dir": str,  # compiled blobs, on the device
                    "warm_compile": bool,  # compile once more after measuring (default true with cache_dir)
                    "precision": str}  # the artifact's precision (set by the host from the artifact)
    compiled: Any = None
    fed: Any = None  # the prepared feed ``feed`` has just copied in, which ``infer`` then runs on

    def import_runtime(self) -> None:
        self.ov = importlib.import_module("openvino")
        self.core = self.ov.Core()

    def runtime_version(self) -> str:
        return str(self.ov.get_version())

    def check_options(self) -> None:
        hint = str(self.backend_options.get("performance_hint", "LATENCY")).upper()
        if hint not in _HINTS:
            raise BadOption(f"performance_hint {hint!r} is not one of {', '.join(_HINTS)}")
        streams, limit = self.backend_options.get("num_streams"), thread_limit()
        if streams is not None and not _streams_ok(streams, limit):
            raise BadOption(f"num_streams {streams!r} is not {' or '.join(_STREAMS)} or 1 to {limit} (each stream takes "
                            f"a thread at least; 4 per CPU of {self.device_name}, as for threads)")

    def config(self) -> dict[str, Any]:
        opts = self.backend_options
        hint = str(opts.get("performance_hint", "LATENCY")).upper()
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
        if opts.get("num_streams") is not None:
            config["NUM_STREAMS"] = str(opts["num_streams"]).upper()  # OpenVINO reads AUTO, not auto
        if self.threads and self.device.upper().split(":")[0] in ("CPU", "AUTO"):
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        config["INFERENCE_PRECISION_HINT"] = self.inference_precision()
        return config

    def inference_precision(self) -> str:
        """Execute at the artifact's precision unless told otherwise.

        OpenVINO's CPU plugin runs in bf16 by default on CPUs that have it, which would make an "fp32"
        measurement a bf16 one; fp16 runs as f16 where the device supports it, else in f32 from the
        fp16 weights. ``inference_precision`` (f32, f16, bf16) overrides.
        """
        chosen = self.backend_options.get("inference_precision")
        if chosen:
            return str(chosen)
        if str(self.backend_options.get("precision", "fp32")) == "fp16":
            try:
                caps = self.core.get_property(self.device.split(":")[0], "OPTIMIZATION_CAPABILITIES")
            except RuntimeError:
                caps = []
            return "f16" if "FP16" in caps else "f32"
        return "f32"

    def load_impl(self, artifact: str) -> None:
        cache_dir = self.backend_options.get("cache_dir")
        if cache_dir:
            cache_dir = os.path.expanduser(str(cache_dir))
            os.makedirs(cache_dir, exist_ok=True)
            blobs_before = set(os.listdir(cache_dir))
            self.core.set_property({"CACHE_DIR": cache_dir})
        t0 = time.perf_counter_ns()
        weights = self.job.artifact_weights  # the .bin, wherever the transport placed it
        model = self.core.read_model(artifact, weights) if weights else self.core.read_model(artifact)
        t1 = time.perf_counter_ns()
        self.compiled = self.core.compile_model(model, self.device, self.config())
        t2 = time.perf_counter_ns()
        self.artifact, self.model = artifact, model
        self.request = self.compiled.create_infer_request()
        self.buffers: list[Any] = []
        self.request_ms: list[float] = []
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]
        self.input_names = [i.get_any_name() for i in self.compiled.inputs]
        self.timings: dict[str, Any] = {"read_ms": (t1 - t0) / 1e6, "compile_ms": (t2 - t1) / 1e6}
        if cache_dir:
            new_blobs = set(os.listdir(cache_dir)) - blobs_before
            self.timings["cache_hit"] = not new_blobs and bool(blobs_before)

    def prepare(self, feed: dict[str, Any]) -> list[Any]:
        """The feed as contiguous arrays; the first one also shapes the request's own input buffers."""
        arrays = [np.asarray(feed[name], order="C") for name in self.input_names]
        if not self.buffers:
            # Buffers owned here and handed to the request once: each iteration copies fresh data into
            # them, as an app writes its next input, instead of swapping tensors (which OpenVINO
            # re-validates on every set_input_tensor: ~4 µs a call on the digits model).
            self.buffers = [np.empty_like(a) for a in arrays]
            for index, buf in enumerate(self.buffers):
                self.request.set_input_tensor(index, self.ov.Tensor(buf, shared_memory=True))
        elif [a.shape for a in arrays] != [b.shape for b in self.buffers]:
            raise ValueError(f"feeds of shapes {[a.shape for a in arrays]} after {[b.shape for b in self.buffers]}: "
                             "every feed of one job has the same shapes")
        return arrays

    def feed(self, prepared: list[Any]) -> None:
        """Copy the next input into the request's own buffers, untimed (the runner calls this right before timing
        ``infer``, as benchmark_app sets its inputs outside the time it reports)."""
        for buf, array in zip(self.buffers, prepared):
            np.copyto(buf, array)
        self.fed = prepared

    def infer(self, prepared: list[Any]) -> Any:
        if prepared is not self.fed:
            self.feed(prepared)
        self.fed = None
        self.request.infer(share_outputs=True)  # the outputs as views, not copied: ``outputs`` copies them
        self.request_ms.append(self.request.latency)  # OpenVINO's own timing of infer(), as benchmark_app reports

    def throughput(self, feeds: Sequence[Any], streams: int | None, requests: int | None, rules: TimingRules,
                   clock: Callable[[], int]) -> dict[str, Any]:
        """benchmark_app's throughput mode: the model compiled once more with the THROUGHPUT hint, ``requests``
        (default: the compiled model's optimal number) in an AsyncInferQueue, each started with the next feed's
        tensors and timed by OpenVINO. ``streams`` sets NUM_STREAMS, and with the job's threads (then per
        stream) INFERENCE_NUM_THREADS; without it the hint picks both."""
        config = {k: v for k, v in self.config().items() if k != "INFERENCE_NUM_THREADS"}
        config["PERFORMANCE_HINT"] = "THROUGHPUT"
        if streams is not None:
            config["NUM_STREAMS"] = str(streams)
            if self.threads:
                config["INFERENCE_NUM_THREADS"] = self.threads * streams
        compiled = self.core.compile_model(self.model, self.device, config)
        requests = requests or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = self.ov.AsyncInferQueue(compiled, requests)
        tensors = [[self.ov.Tensor(array, shared_memory=True) for array in feed] for feed in feeds]
        ends: list[tuple[int, int]] = []
        in_flight: set[int] = set()

        def submit(feed: list[Any]) -> None:
            idle = queue.get_idle_request_id()
            if idle in in_flight:  # it has just finished: OpenVINO's own latency of it
                end = clock()
                ends.append((end - int(queue[idle].latency * 1e6), end))
            in_flight.add(idle)
            for index, tensor in enumerate(feed):
                queue[idle].set_input_tensor(index, tensor)
            queue.start_async()

        timed = measure_async(submit, queue.wait_all, ends, tensors, rules, clock)
        settings: dict[str, Any] = {"streams": int(compiled.get_property("NUM_STREAMS")), "requests": requests}
        for key in ("PERFORMANCE_HINT", "INFERENCE_NUM_THREADS"):
            settings[key.lower()] = str(compiled.get_property(key))
        return {**timed, "settings": settings}

    def outputs(self, prepared: list[Any]) -> dict[str, Any]:
        self.infer(prepared)
        return {name: np.array(self.request.get_output_tensor(i).data) for i, name in enumerate(self.output_names)}

    def io(self) -> dict[str, Any]:
        def describe(ports: Any) -> list[dict[str, Any]]:
            return [{"name": p.get_any_name(), "type": str(p.get_element_type()),
                     "shape": str(p.get_partial_shape())} for p in ports]
        return {"inputs": describe(self.compiled.inputs), "outputs": describe(self.compiled.outputs)}

    def options(self) -> dict[str, Any]:
        opts = {**super().options(), "config": self.config()}
        if self.compiled is not None:
            for key in ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT"):
                try:
                    value = self.compiled.get_property(key)
                    name = getattr(value, "get_type_name", None)  # element types print as <Type: 'float32'>
                    opts.setdefault("effective", {})[key] = name() if name else str(value)
                except RuntimeError:  # not every device reports every property
                    pass
        return opts

    def threads_used(self) -> int | None:
        """The compiled model's INFERENCE_NUM_THREADS (the CPU plugin's choice when the job left it at 0)."""
        try:
            threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        except (RuntimeError, TypeError, ValueError):  # a device without the property
            return None
        return threads or None

    def extra_timings(self) -> dict[str, Any]:
        timings = dict(self.timings)
        if self.request_ms:  # every call so far (warm-up included): the runtime's view, without Python
            ordered = sorted(self.request_ms)
            timings["request_latency_ms"] = {"p50": ordered[max(0, -(-len(ordered) // 2) - 1)],
                                             "mean": sum(ordered) / len(ordered), "count": len(ordered)}
        if self.backend_options.get("cache_dir") and self.backend_options.get("warm_compile", True):
            t0 = time.perf_counter_ns()
            self.core.compile_model(self.model, self.device, self.config())
            timings["warm_compile_ms"] = (time.perf_counter_ns() - t0) / 1e6
        return timings

    def profile(self, prepared: Sequence[Any], iterations: int) -> dict[str, Any]:
        """OpenVINO's performance counters (PERF_COUNT) on the model compiled once more with the same config:
        each executed node's real time, its type and exec_type (the kernel and the precision it ran in, e.g.
        brgconv_avx2_f32, jit_avx2_I8). The CPU plugin's counters are each node's mean over every inference of
        the request so far (its PerfCount::avg): read after the warm-up (w) and at the end (m), the pass's own
        total is (n + 1)·m − w. Other plugins report the last inference: read after each one and summed."""
        compiled = self.core.compile_model(self.model, self.device, {**self.config(), "PERF_COUNT": True})
        request = compiled.create_infer_request()
        executed = self.ov.ProfilingInfo.Status.EXECUTED

        def counters() -> dict[str, tuple[str, str | None, float, bool]]:
            return {i.node_name: (i.node_type, i.exec_type or None, i.real_time.total_seconds() * 1e3,
                                  i.status == executed) for i in request.profiling_info}

        def run(arrays: list[Any]) -> None:
            request.infer(dict(enumerate(arrays)))

        times: dict[str, profiling.NodeTime] = {}
        if self.device.upper().split(":")[0] != "CPU":
            def collect() -> None:
                for node, (kind, exec_type, ms, ran) in counters().items():
                    if ran:
                        profiling.add(times, node, kind, exec_type, ms)
            profiling.run_pass(run, prepared, iterations, collect)
            return profiling.summary("openvino performance counters", iterations, times)
        run(prepared[0])  # the warm-up, then the counted inferences on top of it
        warm = counters()
        for i in range(iterations):
            run(prepared[i % len(prepared)])
        for node, (kind, exec_type, mean_ms, ran) in counters().items():
            first = warm.get(node, (kind, exec_type, 0.0, False))
            if ran or first[3]:
                profiling.add(times, node, kind, exec_type, max(0.0, (iterations + 1) * mean_ms - first[2]))
        return profiling.summary("openvino performance counters", iterations, times)
