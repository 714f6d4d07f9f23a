"""Quantization-aware training: symmetric int8 fake quantization of the given layers' weights and inputs.

The scheme is the one every format's int8 path runs, so the exported QDQ ONNX (``training.qdq``) needs no
re-calibration anywhere:

- weights: zero point 0 and ``scale = max|w| / 127`` per output channel (``per_channel``) or per tensor,
  recomputed from the weight at every forward pass (tfmot's ``LastValueQuantizer``). Zero stays exactly
  zero (pruning survives) and -128 is never used, so onnxruntime's, TFLite's and TensorRT's symmetric
  weight quantizers reproduce the same integers. Per-tensor keeps a clustered layer at ≤ K values (one
  scale maps each shared value to one integer; per-channel scales would split them). It is a
  ``torch.nn.utils.parametrize`` parametrization, so it stacks on a pruning mask and a clustering
  parametrization already registered on the weight (it quantizes what they produce).
- inputs: zero point 0 (TensorRT requires it; onnxruntime and OpenVINO take it), the range from an EMA of
  the batches' min/max (torch.ao's ``MovingAverageMinMaxObserver``, averaging constant 0.01 as tfmot's
  0.999 decay), updated in training mode only. A forward pre-hook quantizes the layer's first input.

The fake quantization is torch's own ``fake_quantize_per_{tensor,channel}_affine`` (straight-through
gradient), which ``torch.onnx.export(dynamo=False)`` writes as QuantizeLinear → DequantizeLinear when the
integer range is (-128, 127) — why the weight scale is computed here rather than by a torch.ao observer,
whose symmetric int8 scale would be ``max|w| / 127.5``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

QMIN, QMAX = -128, 127  # the integer range torch's exporter writes as int8 Q/DQ
WEIGHT_LEVELS = 127  # symmetric weights: ±127, -128 unused


@cache
def _classes() -> tuple[type[Any], type[Any]]:
    import torch
    from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver

    class WeightFakeQuant(torch.nn.Module):
        """Fake-quantizes the weight it receives (axis 0 is the output channel of Conv and Linear);
        ``freeze`` fixes the scale (for export, where it becomes an initializer)."""

        frozen_scale: torch.Tensor | None
        frozen_zero: torch.Tensor | None

        def __init__(self, per_channel: bool) -> None:
            super().__init__()
            self.per_channel = per_channel
            self.register_buffer("frozen_scale", None)
            self.register_buffer("frozen_zero", None)

        def scale(self, weight: torch.Tensor) -> torch.Tensor:
            w = weight.detach().abs()
            amax = w.amax(dim=tuple(range(1, w.dim()))) if self.per_channel else w.amax()
            return torch.where(amax > 0, amax / WEIGHT_LEVELS, torch.ones_like(amax))  # an all-zero channel: any

        def freeze(self, weight: torch.Tensor) -> None:
            self.frozen_scale = self.scale(weight)
            self.frozen_zero = self.zero(self.frozen_scale)

        @staticmethod
        def zero(scale: torch.Tensor) -> torch.Tensor:
            return torch.zeros(scale.shape, dtype=torch.int32, device=scale.device)

        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            if self.frozen_scale is not None and self.frozen_zero is not None:
                scale, zero = self.frozen_scale, self.frozen_zero
            else:
                scale = self.scale(weight)
                zero = self.zero(scale)
            if self.per_channel:
                return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, QMIN, QMAX)
            return torch.fake_quantize_per_tensor_affine(weight, scale, zero, QMIN, QMAX)

    class InputFakeQuant(FakeQuantize):
        """torch.ao's FakeQuantize with its EMA min/max observer, observing in training mode only (and on the
        first batch, so an evaluation before any training step has a range). ``weight_per_channel`` says
        how the layer's weight is quantized, for ``training.qdq`` to re-attach it where a method baked it."""

        def __init__(self, weight_per_channel: bool) -> None:
            super().__init__(observer=MovingAverageMinMaxObserver, quant_min=QMIN, quant_max=QMAX,
                             dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, averaging_constant=0.01)
            self.weight_per_channel = weight_per_channel
            self.observed = False

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training or not self.observed:
                self.activation_post_process(x.detach())
                scale, zero = self.calculate_qparams()
                self.scale.copy_(scale.reshape(self.scale.shape))
                self.zero_point.copy_(zero.reshape(self.zero_point.shape))
                self.observed = True
            return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, QMIN, QMAX)

    return WeightFakeQuant, InputFakeQuant


def weight_fake_quant(per_channel: bool) -> torch.nn.Module:
    """A weight fake-quant parametrization (see the module's docstring)."""
    module: torch.nn.Module = _classes()[0](per_channel)
    return module


def is_weight_fake_quant(module: torch.nn.Module) -> bool:
    return isinstance(module, _classes()[0])


def input_fake_quant(module: torch.nn.Module) -> Any:
    """The input fake-quant ``prepare_qat`` gave ``module``, or None."""
    found = getattr(module, "input_quant", None)
    return found if isinstance(found, _classes()[1]) else None


def _quantize_input(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (input_fake_quant(module)(args[0]), *args[1:])


def prepare_qat(model: torch.nn.Module, layers: dict[str, torch.nn.Module], per_channel: bool) -> None:
    """Fake-quantize each layer's weight (a parametrization stacked on any already there) and input, in place;
    ``per_channel=False`` for clustered layers. Layers must be Conv1d/2d/3d or Linear modules of ``model``."""
    import torch
    from torch.nn.utils import parametrize

    kinds = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
    wrong = [f"{name} ({type(m).__name__})" for name, m in layers.items() if not isinstance(m, kinds)]
    if wrong:
        raise TypeError(f"QAT takes Conv and Linear layers only, not {', '.join(wrong)}")
    owned = {id(m) for m in model.modules()}
    if any(id(m) not in owned for m in layers.values()):
        raise ValueError("every layer to fake-quantize must be a module of the model")
    _, input_class = _classes()
    for module in layers.values():
        if input_fake_quant(module) is not None:
            raise ValueError("prepare_qat ran twice on a layer")
        parametrize.register_parametrization(module, "weight", weight_fake_quant(per_channel))
        module.input_quant = input_class(per_channel)
        module.register_forward_pre_hook(_quantize_input)
