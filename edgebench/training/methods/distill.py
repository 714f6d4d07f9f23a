"""Knowledge distillation (Hinton, Vinyals & Dean 2015): the student learns the teacher's softened outputs.

The loss mixes the KL divergence from the teacher's to the student's class distribution at temperature T,
scaled by T² so its gradients keep their size as T changes, with the usual cross-entropy on the labels:
``alpha · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 - alpha) · CE(s, labels)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, temperature: float,
                      alpha: float) -> torch.Tensor:
    """Hinton's loss on logits (batch × classes); the teacher gets no gradient. Mean over the batch."""
    import torch.nn.functional as F

    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    soft = F.kl_div(F.log_softmax(student / temperature, dim=-1), F.log_softmax(teacher.detach() / temperature, dim=-1),
                    reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student, labels)
    return alpha * temperature ** 2 * soft + (1.0 - alpha) * hard
