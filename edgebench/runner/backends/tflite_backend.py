"""TFLite (LiteRT) backend: ai_edge_litert, else tflite_runtime, else tensorflow.lite.

``num_threads`` from the job's threads; XNNPACK is the default CPU delegate of these interpreters
(``xnnpack: false`` asks for the reference kernels instead, where the runtime allows it); an optional
external delegate (``delegate: /path/libdelegate.so`` with ``delegate_options``) for NPUs and GPUs.
Inputs with a dynamic or different batch are resized before the timed loop, never inside it.
"""

from __future__ import annotations

import functools
import importlib
import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable, Sequence

import numpy as np

from ..profiling import unsupported
from .base import BadOption, BaseBackend, RuntimeMissing

_RUNTIMES = (("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime"),
             ("tensorflow.lite", "tensorflow"))


class Backend(BaseBackend):
    runtime_name = "tflite"
    pip_package = "ai-edge-litert"
    fed: Any = None  # the prepared feed ``feed`` has just written, which ``infer`` then runs on
    option_types = {"xnnpack": bool,  # false: the reference kernels, where the runtime allows
                    "delegate": str,  # an external delegate library on the device (/path/lib.so)
                    "delegate_options": dict}

    def import_runtime(self) -> None:
        for module_name, dist in _RUNTIMES:
            try:
                self.module = importlib.import_module(module_name)
            except ImportError:
                continue
            self.runtime_name, self.dist = f"tflite ({dist})", dist
            return
        raise RuntimeMissing(f"no TFLite runtime is installed on {self.device_name} (tried ai_edge_litert, "
                             "tflite_runtime, tensorflow): pip install ai-edge-litert")

    def check_options(self) -> None:
        delegate = self.backend_options.get("delegate")
        if delegate and not os.path.exists(str(delegate)):
            raise BadOption(f"delegate library {delegate} does not exist on {self.device_name}")

    def runtime_version(self) -> str:
        try:
            return version(self.dist)
        except PackageNotFoundError:
            return str(getattr(self.module, "__version__", "unknown"))

    def load_impl(self, artifact: str) -> None:
        kwargs: dict[str, Any] = {"model_path": artifact, "num_threads": self.threads or None}
        delegate = self.backend_options.get("delegate")
        if delegate:
            kwargs["experimental_delegates"] = [self.module.load_delegate(
                str(delegate), dict(self.backend_options.get("delegate_options") or {}))]
        if self.backend_options.get("xnnpack") is False:
            resolver = getattr(self.module, "OpResolverType", None)
            if resolver is None:
                raise ValueError("this TFLite runtime cannot turn XNNPACK off (no OpResolverType)")
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.interp_kwargs = kwargs
        self.interp = self.module.Interpreter(**kwargs)
        self.interp.allocate_tensors()
        self._read_details()

    def _read_details(self) -> None:
        """Tensors by their signature names (what converters keep from the source), else tensor names."""
        signatures = self.interp.get_signature_list()
        if signatures:
            key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
            runner = self.interp.get_signature_runner(key)
            by_index = {d["index"]: d for d in [*self.interp.get_input_details(), *self.interp.get_output_details()]}
            self.inputs = {n: {**by_index[d["index"]], "name": n} for n, d in runner.get_input_details().items()}
            self.output_details = [{**by_index[d["index"]], "name": n} for n, d in runner.get_output_details().items()]
        else:
            self.inputs = {d["name"]: d for d in self.interp.get_input_details()}
            self.output_details = self.interp.get_output_details()

    def prepare(self, feed: dict[str, Any]) -> list[tuple[int, Any]]:
        resized = False
        for name, d in self.inputs.items():
            if name not in feed:
                raise KeyError(f"no data for input {name!r}")
            if tuple(d["shape"]) != tuple(feed[name].shape):
                self.interp.resize_tensor_input(d["index"], list(feed[name].shape))
                resized = True
        if resized:
            self.interp.allocate_tensors()
            self._read_details()
        self.fed = None
        return [(d["index"], np.asarray(feed[name], dtype=d["dtype"], order="C")) for name, d in self.inputs.items()]

    def feed(self, prepared: list[tuple[int, Any]]) -> None:
        """set_tensor copies the next input into the interpreter's own, untimed (the runner calls this right
        before timing ``infer``, as benchmark_model and litert-benchmark leave input writing out of their times)."""
        for index, value in prepared:
            self.interp.set_tensor(index, value)
        self.fed = prepared

    def infer(self, prepared: list[tuple[int, Any]]) -> None:
        """invoke() on the fed input (fed here when ``feed`` did not); the outputs stay in the interpreter
        (``outputs`` reads them), so a sample times the inference alone."""
        if prepared is not self.fed:
            self.feed(prepared)
        self.fed = None
        self.interp.invoke()

    def throughput_workers(self, streams: int, requests: int) -> tuple[list[Callable[[Any], Any]], dict[str, Any]]:
        """One interpreter per request (an interpreter is not thread-safe), shaped like the loaded one."""
        if streams != requests:
            raise BadOption(f"TFLite runs one interpreter per request: streams {streams} must equal requests "
                            f"{requests} (or leave one of them out)")
        if self.backend_options.get("delegate"):
            raise BadOption("throughput mode loads one interpreter per request, and an external delegate once: "
                            "leave the delegate out, or use --mode latency")
        workers: list[Callable[[Any], Any]] = []
        for _ in range(requests):
            interp = self.module.Interpreter(**self.interp_kwargs)
            for d in self.interp.get_input_details():
                interp.resize_tensor_input(d["index"], list(d["shape"]))
            interp.allocate_tensors()
            workers.append(functools.partial(_invoke, interp, [d["index"] for d in self.output_details]))
        return workers, {"interpreters": requests, "threads_per_interpreter": self.threads_used()}

    def outputs(self, prepared: list[tuple[int, Any]]) -> dict[str, Any]:
        self.infer(prepared)
        return {d["name"]: np.array(self.interp.get_tensor(d["index"])) for d in self.output_details}

    def io(self) -> dict[str, Any]:
        def describe(details: Any) -> list[dict[str, Any]]:
            return [{"name": d["name"], "type": np.dtype(d["dtype"]).name, "shape": [int(x) for x in d["shape"]]}
                    for d in details]
        return {"inputs": describe(self.inputs.values()), "outputs": describe(self.output_details)}

    def threads_used(self) -> int:
        # num_threads, or without it the interpreter's default: one thread (TFLite's CPU backend context
        # defaults to 1 and the XNNPACK delegate then makes no thread pool).
        return self.threads or 1

    def options(self) -> dict[str, Any]:
        return {**super().options(), "runtime_module": getattr(self.module, "__name__", None),
                "xnnpack": self.backend_options.get("xnnpack", True)}

    def profile(self, prepared: Sequence[Any], iterations: int) -> dict[str, Any]:
        """No ops: the Python interpreters expose no op profiler (see the note)."""
        return unsupported(self.runtime_name, NO_OP_PROFILER)


def _invoke(interp: Any, outputs: list[int], prepared: list[tuple[int, Any]]) -> list[Any]:
    """One inference on ``interp``, as ``Backend.infer`` runs it on the loaded interpreter."""
    for index, value in prepared:
        interp.set_tensor(index, value)
    interp.invoke()
    return [interp.get_tensor(index) for index in outputs]


NO_OP_PROFILER = (
    "the Python TFLite/LiteRT interpreters (ai-edge-litert, tflite-runtime, tf.lite) expose no op profiler, and "
    "ai-edge-litert's litert-benchmark (a Python tool over the CompiledModel API) has none either; TFLite's C++ "
    "benchmark_model binary (tensorflow/lite/tools/benchmark, or a nightly prebuilt for the device's CPU) "
    "prints per-op times with --enable_op_profiling=true --graph=<the .tflite>")
