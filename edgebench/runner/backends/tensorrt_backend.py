"""TensorRT backend: builds the engine on this GPU from the ONNX (or loads a ready .engine/.plan).

Engines are specific to a GPU and a TensorRT version, so the build happens here, on the target, and
is cached in ``engine_cache`` (default ~/.cache/edgebench/engines) under a key of the ONNX sha256,
precision, TensorRT version, GPU name and input shapes; ``extra`` reports the build time and whether
the cache held the engine. Each iteration copies inputs host→device, runs ``execute_async_v3`` and
copies outputs back; CUDA events split the iteration into H2D, compute and D2H (as trtexec does),
while the runner's clock times the whole iteration like every other backend.

Written against the TensorRT ≥ 10 Python API (Builder, OnnxParser, BuilderConfig, tensor-address I/O)
and cuda-python's runtime bindings. int8 expects a QDQ ONNX (from the compression step).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
from typing import Any, Callable, Sequence

import numpy as np

from .. import profiling
from .base import BadOption, BaseBackend, RuntimeMissing


def _check(result: Any) -> Any:
    """cuda-python returns (error, value…); raise on an error, return the value(s)."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else tuple(rest)


def _npz_shapes(path: str) -> dict[str, tuple[int, ...]]:
    """Each array's shape from its .npy header alone: reading the arrays would put a second copy of the
    dataset into the model's load and so into its memory footprint (peak − baseline)."""
    import zipfile

    from numpy.lib import format as npy

    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            with archive.open(name) as f:
                version = npy.read_magic(f)
                header = npy.read_array_header_1_0(f) if version == (1, 0) else npy.read_array_header_2_0(f)
            shapes[name[:-4] if name.endswith(".npy") else name] = tuple(header[0])
    return shapes


class Backend(BaseBackend):
    runtime_name = "tensorrt"
    pip_package = "tensorrt cuda-python"
    option_types = {"engine_cache": str,  # default ~/.cache/edgebench/engines
                    "workspace_mb": int,
                    "precision": str}  # the engine's precision (set by the host from the artifact)

    def import_runtime(self) -> None:
        try:
            self.trt = importlib.import_module("tensorrt")
        except ImportError as exc:
            raise RuntimeMissing(f"TensorRT is not installed on {self.device_name} ({exc}): install TensorRT "
                                 "for its CUDA version (pip install tensorrt cuda-python, or JetPack on Jetson)")
        try:
            self.cudart = importlib.import_module("cuda.bindings.runtime")
        except ImportError:
            try:
                self.cudart = importlib.import_module("cuda.cudart")  # cuda-python < 12.6
            except ImportError as exc:
                raise RuntimeMissing(f"cuda-python is not installed on {self.device_name} ({exc}): "
                                     "pip install cuda-python") from exc
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)

    @property
    def precision(self) -> str:
        return str(self.backend_options.get("precision", "fp32"))

    def runtime_version(self) -> str:
        return str(self.trt.__version__)

    def _gpu_name(self) -> str:
        index = int(self.device.split(":")[1]) if ":" in self.device else 0
        _check(self.cudart.cudaSetDevice(index))
        props = _check(self.cudart.cudaGetDeviceProperties(index))
        name = props.name
        return (name.decode() if isinstance(name, bytes) else str(name)).strip("\x00 ")

    def _input_shapes(self) -> dict[str, tuple[int, ...]]:
        batch, per_sample = self.job.batch, set(self.job.per_sample_inputs)
        shapes = _npz_shapes(self.job.inputs_npz)
        return {k: tuple(s[1:]) if k in per_sample else (batch, *s[1:]) for k, s in shapes.items()}

    def load_impl(self, artifact: str) -> None:
        shapes = self._input_shapes()
        self.stage_ms: dict[str, list[float]] = {"h2d": [], "compute": [], "d2h": []}
        self.extra: dict[str, Any] = {"gpu": self._gpu_name()}
        if artifact.endswith(".onnx"):
            blob = self._cached_engine(artifact, shapes)
        else:
            with open(artifact, "rb") as f:
                blob = f.read()
        runtime = self.trt.Runtime(self.logger)
        self.engine = runtime.deserialize_cuda_engine(blob)
        if self.engine is None:
            raise ValueError(f"TensorRT {self.trt.__version__} cannot deserialize this engine (built for "
                             "another GPU or TensorRT version?): rebuild it from the ONNX on this device")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == self.trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]
        for name in self.input_names:
            self.context.set_input_shape(name, shapes[name])
        self.stream = _check(self.cudart.cudaStreamCreate())
        self.events = [_check(self.cudart.cudaEventCreate()) for _ in range(4)]
        self.device_buffers: dict[str, int] = {}
        self.host_outputs: dict[str, np.ndarray] = {}
        for name in names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))
            nbytes = int(np.prod(shape)) * dtype.itemsize
            self.device_buffers[name] = _check(self.cudart.cudaMalloc(max(nbytes, 1)))
            self.context.set_tensor_address(name, self.device_buffers[name])
            if not is_input[name]:
                self.host_outputs[name] = np.empty(shape, dtype=dtype)

    def _cached_engine(self, onnx_path: str, shapes: dict[str, tuple[int, ...]]) -> bytes:
        with open(onnx_path, "rb") as f:
            onnx_sha = hashlib.sha256(f.read()).hexdigest()
        material = f"{onnx_sha}|{self.precision}|{self.trt.__version__}|{self.extra['gpu']}|{sorted(shapes.items())}"
        key = hashlib.sha256(material.encode()).hexdigest()[:32]
        cache = os.path.expanduser(str(self.backend_options.get("engine_cache") or "~/.cache/edgebench/engines"))
        os.makedirs(cache, exist_ok=True)
        path = os.path.join(cache, f"{key}.engine")
        self.extra.update({"engine_key": key, "engine_cache_hit": os.path.exists(path)})
        if os.path.exists(path):
            with open(path, "rb") as f:
                return f.read()
        t0 = time.perf_counter_ns()
        blob = self._build(onnx_path, shapes)
        self.extra["engine_build_ms"] = (time.perf_counter_ns() - t0) / 1e6
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)  # atomic: a second runner never reads half an engine
        return blob

    def _build(self, onnx_path: str, shapes: dict[str, tuple[int, ...]]) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(onnx_path):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ValueError(f"TensorRT's ONNX parser refused the model: {errors[:300]}")
        config = builder.create_builder_config()
        workspace = int(self.backend_options.get("workspace_mb", 1024)) << 20
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # layer types and precisions for profile()
        if self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif self.precision.startswith("int8"):
            config.set_flag(trt.BuilderFlag.INT8)  # scales come from the QDQ nodes of the ONNX
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = shapes[tensor.name]
            profile.set_shape(tensor.name, shape, shape, shape)
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ValueError("TensorRT could not build an engine (see the runner's stderr for the builder log)")
        return bytes(serialized)

    def prepare(self, feed: dict[str, Any]) -> dict[str, np.ndarray]:
        return {n: np.asarray(feed[n], order="C", dtype=self.trt.nptype(self.engine.get_tensor_dtype(n)))
                for n in self.input_names}

    def infer(self, prepared: dict[str, np.ndarray]) -> Any:
        cu, stream, ev = self.cudart, self.stream, self.events
        h2d, d2h = cu.cudaMemcpyKind.cudaMemcpyHostToDevice, cu.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _check(cu.cudaEventRecord(ev[0], stream))
        for name, host in prepared.items():
            _check(cu.cudaMemcpyAsync(self.device_buffers[name], host.ctypes.data, host.nbytes, h2d, stream))
        _check(cu.cudaEventRecord(ev[1], stream))
        if not self.context.execute_async_v3(stream):
            raise RuntimeError("execute_async_v3 failed")
        _check(cu.cudaEventRecord(ev[2], stream))
        for name, host in self.host_outputs.items():
            _check(cu.cudaMemcpyAsync(host.ctypes.data, self.device_buffers[name], host.nbytes, d2h, stream))
        _check(cu.cudaEventRecord(ev[3], stream))
        _check(cu.cudaStreamSynchronize(stream))
        for key, (a, b) in zip(("h2d", "compute", "d2h"), ((0, 1), (1, 2), (2, 3))):
            self.stage_ms[key].append(float(_check(cu.cudaEventElapsedTime(ev[a], ev[b]))))
        return self.host_outputs

    def throughput_workers(self, streams: int, requests: int) -> tuple[list[Callable[[Any], Any]], dict[str, Any]]:
        """One execution context per request, each with its own CUDA stream and buffers (trtexec --infStreams);
        a context runs one inference at a time, so streams equal requests."""
        if streams != requests:
            raise BadOption(f"TensorRT runs one execution context per request: streams {streams} must equal "
                            f"requests {requests} (or leave one of them out)")
        shapes = {name: tuple(self.context.get_tensor_shape(name)) for name in self.input_names}
        return [self._context_worker(shapes) for _ in range(requests)], {"contexts": requests}

    def _context_worker(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[Any], Any]:
        """``infer`` on a new execution context of the loaded engine: H2D, execute_async_v3, D2H on its stream."""
        cu, context = self.cudart, self.engine.create_execution_context()
        stream = _check(cu.cudaStreamCreate())
        for name, shape in shapes.items():
            context.set_input_shape(name, shape)
        buffers: dict[str, int] = {}
        host_outputs: dict[str, np.ndarray] = {}
        for name in [*self.input_names, *self.output_names]:
            shape = tuple(context.get_tensor_shape(name))
            dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))
            buffers[name] = _check(cu.cudaMalloc(max(int(np.prod(shape)) * dtype.itemsize, 1)))
            context.set_tensor_address(name, buffers[name])
            if name in self.output_names:
                host_outputs[name] = np.empty(shape, dtype=dtype)
        h2d, d2h = cu.cudaMemcpyKind.cudaMemcpyHostToDevice, cu.cudaMemcpyKind.cudaMemcpyDeviceToHost

        def infer(prepared: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            for name, host in prepared.items():
                _check(cu.cudaMemcpyAsync(buffers[name], host.ctypes.data, host.nbytes, h2d, stream))
            if not context.execute_async_v3(stream):
                raise RuntimeError("execute_async_v3 failed")
            for name, host in host_outputs.items():
                _check(cu.cudaMemcpyAsync(host.ctypes.data, buffers[name], host.nbytes, d2h, stream))
            _check(cu.cudaStreamSynchronize(stream))
            return host_outputs
        return infer

    def outputs(self, prepared: dict[str, np.ndarray]) -> dict[str, Any]:
        return {name: value.copy() for name, value in self.infer(prepared).items()}

    def options(self) -> dict[str, Any]:
        return {**super().options(), "precision": self.precision}

    def extra_timings(self) -> dict[str, Any]:
        stages = {}
        for key, values in self.stage_ms.items():
            if values:
                ordered = sorted(values)
                stages[f"{key}_ms"] = {"p50": ordered[max(0, -(-len(ordered) // 2) - 1)], "mean": sum(values) / len(values)}
        return {**self.extra, "stages": stages, "stage_samples_ms": self.stage_ms}

    def profile(self, prepared: Sequence[Any], iterations: int) -> dict[str, Any]:
        """TensorRT's IProfiler on a second execution context of the engine (the timed one stays unprofiled):
        each layer's time as TensorRT reports it after each inference, its type and output precision from the
        engine inspector (detailed for engines built here; a name only for an engine built without it)."""
        cu, stream, h2d = self.cudart, self.stream, self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        kinds, times = self._layer_kinds(), dict[str, profiling.NodeTime]()

        class LayerTimes(self.trt.IProfiler):  # type: ignore[name-defined]
            def report_layer_time(self, layer_name: str, ms: float) -> None:
                op, precision = kinds.get(layer_name, ("layer", None))
                profiling.add(times, layer_name, op, precision, ms)

        context = self.engine.create_execution_context()
        for name in self.input_names:
            context.set_input_shape(name, self.context.get_tensor_shape(name))
        for name, address in self.device_buffers.items():
            context.set_tensor_address(name, address)
        context.profiler = LayerTimes()

        def run(feed: dict[str, np.ndarray]) -> None:
            for name, host in feed.items():
                _check(cu.cudaMemcpyAsync(self.device_buffers[name], host.ctypes.data, host.nbytes, h2d, stream))
            if not context.execute_async_v3(stream):
                raise RuntimeError("execute_async_v3 failed")
            _check(cu.cudaStreamSynchronize(stream))

        run(prepared[0])  # warm-up, not counted
        times.clear()
        for i in range(iterations):
            run(prepared[i % len(prepared)])
        return profiling.summary("tensorrt IProfiler", iterations, times)

    def _layer_kinds(self) -> dict[str, tuple[str, str | None]]:
        """Layer name → (type, first output's format/datatype) from the engine inspector's JSON, where detailed."""
        inspector = self.engine.create_engine_inspector()
        kinds: dict[str, tuple[str, str | None]] = {}
        for index in range(self.engine.num_layers):
            info = json.loads(inspector.get_layer_information(index, self.trt.LayerInformationFormat.JSON))
            if isinstance(info, dict):  # a bare name (a string) without detailed verbosity
                outputs = info.get("Outputs") or [{}]
                kinds[str(info.get("Name"))] = (str(info.get("LayerType", "layer")),
                                                outputs[0].get("Format/Datatype") if isinstance(outputs[0], dict) else None)
        return kinds
