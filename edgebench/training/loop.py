"""One training stage: mini-batch Adam over the training set, hooks after each step, held-out top-1 per epoch.

The model is the imported PyTorch module (positional inputs in the ONNX model's input order); the scored output
(the first, or the one named) gives [N, C] class scores. Hooks (a pruner's schedule, a clusterer's index
update) run after each optimizer step with the global step number, as tfmot's callbacks do. With a teacher,
the loss is the distillation loss against the teacher's scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import numpy as np

from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.training.data import TrainData

if TYPE_CHECKING:
    import torch

Progress = Callable[[str], None]
EVAL_BATCH = 256


class Hook(Protocol):
    def on_step(self, step: int) -> None: ...


@dataclass
class Stage:
    """One stage's settings: its name (the recipe step it trains), epochs, learning rate and hooks."""

    name: str
    epochs: int
    lr: float
    hooks: Sequence[Hook] = ()


@dataclass
class History:
    """What training did, stage by stage: loss and held-out top-1 per epoch."""

    stages: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"stages": self.stages, "steps": self.steps}


@dataclass
class Trainer:
    """Trains ``model`` on ``train`` and scores it on ``val``: ``names`` are the model's inputs in order,
    ``scored`` the index of the scored output; ``teacher`` (a module, eval mode) and ``distill`` = (T, alpha)
    for knowledge distillation."""

    model: "torch.nn.Module"
    names: Sequence[str]
    scored: int
    train: TrainData
    val: TrainData
    batch_size: int
    weight_decay: float
    seed: int
    progress: Progress
    teacher: "torch.nn.Module | None" = None
    distill: tuple[float, float] | None = None
    history: History = field(default_factory=History)

    def steps_per_epoch(self) -> int:
        return max(1, int(np.ceil(len(self.train) / self.batch_size)))

    def _scores(self, module: "torch.nn.Module", data: TrainData, index: np.ndarray) -> "torch.Tensor":
        import torch

        args = [torch.from_numpy(np.ascontiguousarray(data.inputs[n][index])) for n in self.names]
        out = module(*args)
        if isinstance(out, (tuple, list)):
            out = out[self.scored]
        return out.reshape(out.shape[0], -1)

    def evaluate(self) -> float:
        """Held-out top-1 of the model as it is now (eval mode, no gradients)."""
        import torch

        self.model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(self.val), EVAL_BATCH):
                index = np.arange(start, min(start + EVAL_BATCH, len(self.val)))
                correct += int((self._scores(self.model, self.val, index).argmax(1).numpy()
                                == self.val.labels[index]).sum())
        return correct / len(self.val)

    def _loss(self, index: np.ndarray) -> "torch.Tensor":
        import torch

        scores = self._scores(self.model, self.train, index)
        labels = torch.from_numpy(self.train.labels[index])
        if scores.shape[1] < 2 or int(labels.max()) >= scores.shape[1]:
            raise EdgebenchError(f"the scored output gives {scores.shape[1]} class scores per sample but the labels "
                                 f"go up to {int(labels.max())}: fine-tuning trains a classifier's [N, C] scores; "
                                 "pass --output for the output that holds them", ExitStatus.DATA_MISMATCH)
        if self.teacher is None or self.distill is None:
            return torch.nn.functional.cross_entropy(scores, labels)
        from edgebench.training.methods.distill import distillation_loss

        with torch.no_grad():
            target = self._scores(self.teacher, self.train, index)
        return distillation_loss(scores, target, labels, *self.distill)

    def run(self, stage: Stage) -> None:
        """Train one stage; reports each epoch's mean loss and held-out top-1 through ``progress``."""
        import torch

        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=stage.lr, weight_decay=self.weight_decay)
        rng = np.random.default_rng(self.seed + len(self.history.stages))
        torch.manual_seed(self.seed + len(self.history.stages))
        record: dict[str, Any] = {"stage": stage.name, "epochs": []}
        for epoch in range(stage.epochs):
            self.model.train()
            order = rng.permutation(len(self.train))
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                index = order[start:start + self.batch_size]
                optimizer.zero_grad()
                loss = self._loss(index)
                if not bool(torch.isfinite(loss)):
                    raise EdgebenchError(f"fine-tuning {stage.name} diverged (loss {float(loss)} at epoch {epoch + 1}):"
                                         " lower the learning rate (finetune:lr=…)", ExitStatus.CONVERSION_FAILED)
                loss.backward()
                optimizer.step()
                self.history.steps += 1
                for hook in stage.hooks:
                    hook.on_step(self.history.steps)
                total += float(loss.detach()) * len(index)
            accuracy = self.evaluate()
            record["epochs"].append({"loss": round(total / len(order), 6), "top1": round(accuracy, 6)})
            self.progress(f"{stage.name}: epoch {epoch + 1}/{stage.epochs}  loss {total / len(order):.4f}  "
                          f"held-out top-1 {accuracy:.2%}")
        self.history.stages.append(record)
