"""Which static int8 a runtime runs fast on an instruction set, after the vendors' own guidance.

onnxruntime's "Quantize ONNX models" guide: QDQ is the format to write; on x86-64 its int8 kernels take
uint8 activations and int8 weights (U8S8, VPMADDUBSW), and without VNNI that instruction can saturate,
so weights use 7 bits (``reduce_range``) there, as the guide advises whenever per-channel is on.
Measured on an AVX2 EPYC (benchmarks/int8_speed.py), S8S8 QDQ ran 2–4× slower than U8S8 and than fp32.
On ARM64 S8S8 is the guide's first choice (SDOT). Only the compute ops are quantized (Conv, MatMul, Gemm):
int8 kernels pay off there, while Q/DQ pairs around element-wise ops (residual Adds, the Mul/Div of
hard-swish, LayerNorm outputs) cost time and, in transformers, most of the accuracy.
TensorRT takes only symmetric int8 (zero point 0) for activations and weights.

The scheme is chosen for the host's instruction set (edgebench quantizes on the host); it is part of
the converter's key, so an artifact cache shared between unlike hosts keeps one artifact per scheme.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

COMPUTE_OPS = ("Conv", "MatMul", "Gemm")
_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class Int8Scheme:
    runtime: str  # onnxruntime | tensorrt
    isa: str  # x86-vnni | x86-avx2 | x86 | arm64 | …
    activations: str  # uint8 | int8
    activation_symmetric: bool
    reduce_range: bool  # 7-bit weights against VPMADDUBSW saturation
    op_types: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "op_types": list(self.op_types), "weights": "int8 (symmetric)"}


def cpu_isa(cpuinfo: Path = Path("/proc/cpuinfo"), machine: str | None = None) -> str:
    """The host's int8-relevant instruction set: VNNI or not on x86-64, arm64, or the machine name.
    Without /proc/cpuinfo an x86 host counts as non-VNNI, whose settings are safe on every x86."""
    machine = (machine or platform.machine()).lower()
    if machine in ("aarch64", "arm64"):
        return "arm64"
    if machine not in ("x86_64", "amd64", "x64"):
        return machine or "unknown"
    try:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        flags = []
    if any(f in flags for f in _VNNI_FLAGS):
        return "x86-vnni"
    return "x86-avx2" if "avx2" in flags else "x86"


def int8_scheme(runtime: str = "onnxruntime", isa: str | None = None) -> Int8Scheme:
    """The static int8 settings for ``runtime`` on ``isa`` (default: this host's)."""
    isa = isa or cpu_isa()
    if runtime == "tensorrt":
        return Int8Scheme(runtime, "gpu", "int8", True, False, COMPUTE_OPS)
    if isa.startswith("x86"):
        return Int8Scheme(runtime, isa, "uint8", False, isa != "x86-vnni", COMPUTE_OPS)
    return Int8Scheme(runtime, isa, "int8", False, False, COMPUTE_OPS)
