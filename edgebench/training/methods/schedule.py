"""The sparsity schedule of gradual magnitude pruning: TF Model Optimization's ``PolynomialDecay``.

Zhu & Gupta 2017 ("To prune, or not to prune"): the sparsity rises fast from ``initial_sparsity`` at
``begin_step`` and levels off at ``final_sparsity`` at ``end_step``,

    sparsity(step) = final + (initial - final) * (1 - p) ** power,  p = clip((step - begin) / (end - begin), 0, 1)

and masks are recomputed on the steps ``begin <= step <= end`` with ``(step - begin) % frequency == 0``, as in
``tensorflow_model_optimization.sparsity.keras.PolynomialDecay`` (pruning_schedule.py, tfmot 0.8.1). Plain
Python, no torch: the schedule is a pure function of the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Schedule(Protocol):
    """What a pruner reads from a schedule (``PolynomialDecay``, or one seen from a later stage's steps)."""

    @property
    def final_sparsity(self) -> float: ...

    def sparsity(self, step: int) -> float: ...

    def should_prune(self, step: int) -> bool: ...


@dataclass(frozen=True)
class PolynomialDecay:
    """tfmot's ``PolynomialDecay(initial_sparsity, final_sparsity, begin_step, end_step, power, frequency)``.

    One deliberate extension: ``end_step == begin_step`` (which tfmot accepts but then divides by zero) is a
    step to ``final_sparsity`` at ``begin_step``, so a stage too short for a ramp still prunes once.
    """

    initial_sparsity: float
    final_sparsity: float
    begin_step: int
    end_step: int
    power: float = 3.0
    frequency: int = 100

    def __post_init__(self) -> None:
        # tfmot's own checks (_validate_step, _validate_sparsity), plus a positive power
        for name in ("initial_sparsity", "final_sparsity"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.begin_step < 0:
            raise ValueError(f"begin_step must be >= 0, got {self.begin_step}")
        if self.end_step < self.begin_step:
            raise ValueError(f"end_step ({self.end_step}) must be >= begin_step ({self.begin_step})")
        if self.frequency <= 0:
            raise ValueError(f"frequency must be > 0, got {self.frequency}")
        if not self.power > 0:
            raise ValueError(f"power must be > 0, got {self.power}")

    def sparsity(self, step: int) -> float:
        """The sparsity the masks have after a mask update at ``step``."""
        span = self.end_step - self.begin_step
        if span == 0:
            p = 1.0 if step >= self.begin_step else 0.0
        else:
            p = min(1.0, max(0.0, (step - self.begin_step) / span))
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1.0 - p) ** self.power

    def should_prune(self, step: int) -> bool:
        """Whether the masks are updated at ``step`` (tfmot's ``_should_prune_in_step``)."""
        return self.begin_step <= step <= self.end_step and (step - self.begin_step) % self.frequency == 0
