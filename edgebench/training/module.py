"""A recipe applied with training to a ``torch.nn.Module`` of your own, with your data loader and loss.

The same steps as ``--finetune`` (edgebench.training.finetune), driven by your ``train_loader`` (batches of
``(inputs, targets)``; ``inputs`` a tensor or a tuple of them) and ``loss_fn(outputs, targets)``. Layers are
chosen as for ONNX models (the first and last left alone while small; ``include``/``exclude`` fnmatch patterns
over module names). The result is the compressed module (masks and centroids baked, QAT fake-quant kept for
``export_qdq``) and what each step did; ``onnx_out`` also exports it (float ONNX, or QDQ ONNX after QAT), with a
dynamic first (batch) dimension on every input and output (``input_i``/``output_i`` unless named).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, cast

from edgebench.compress.graph import LayerSelection, WeightLayer
from edgebench.compress.recipe import Recipe, Step, parse_recipe
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.training.finetune import strip_parametrizations, weight_modules, apply_qat, apply_weight_steps
from edgebench.training.loop import Progress
from edgebench.training.spec import TrainSpec

if TYPE_CHECKING:
    import torch


@dataclass
class ModuleResult:
    """The compressed module, what each step did (by step, module → figures), each epoch's mean loss (and
    ``metric`` on ``val_loader`` where given), and the exported ONNX."""

    module: "torch.nn.Module"
    steps: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    onnx: Path | None = None


@dataclass
class _ModuleDriver:
    model: "torch.nn.Module"
    spec: TrainSpec
    selection: LayerSelection
    train_loader: Iterable[Any]
    loss_fn: Callable[[Any, Any], "torch.Tensor"]
    example_inputs: tuple["torch.Tensor", ...]
    progress: Progress
    val_loader: Iterable[Any] | None = None
    metric: Callable[[Any, Any], float] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    batches: int = 0

    def layers(self, step: Step, convs: bool = False) -> dict[str, "torch.nn.Module"]:
        import torch

        modules = {n: m for n, m in weight_modules(self.model).items()
                   if not convs or isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))}
        layers = [WeightLayer(name, type(m).__name__, f"{name}.weight", None) for name, m in modules.items()]
        chosen = self.selection.pick(layers, [sum(int(p.numel()) for p in m.parameters(recurse=False))
                                              or int(cast(Any, m).weight.numel()) for m in modules.values()])
        if not chosen:
            raise EdgebenchError(f"{step.canonical()}: no layer of the module is selected (its weight layers: "
                                 f"{', '.join(list(modules)[:3])}…): widen include/exclude", ExitStatus.USAGE)
        return {layer.node: modules[layer.node] for layer in chosen}

    def _inputs(self, batch: Any) -> tuple[tuple[Any, ...], Any]:
        inputs, targets = batch
        return (tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)), targets

    def train(self, name: str, hooks: Sequence[Any] = (), lr_scale: float = 1.0) -> None:
        import torch

        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.spec.lr * lr_scale, weight_decay=self.spec.weight_decay)
        for epoch in range(self.spec.epochs):
            self.model.train()
            total, count = 0.0, 0
            for batch in self.train_loader:
                inputs, targets = self._inputs(batch)
                optimizer.zero_grad()
                loss = self.loss_fn(self.model(*inputs), targets)
                loss.backward()
                optimizer.step()
                self.steps += 1
                for hook in hooks:
                    hook.on_step(self.steps)
                total, count = total + float(loss.detach()), count + 1
            self.batches = count
            record: dict[str, Any] = {"stage": name, "epoch": epoch + 1, "loss": total / max(count, 1)}
            if self.val_loader is not None and self.metric is not None:
                record["metric"] = self.evaluate()
            self.history.append(record)
            self.progress(f"{name}: epoch {epoch + 1}/{self.spec.epochs}  loss {record['loss']:.4f}"
                          + (f"  held-out {record['metric']:.4f}" if "metric" in record else ""))

    def evaluate(self) -> float:
        import torch

        assert self.val_loader is not None and self.metric is not None
        self.model.eval()
        scores = []
        with torch.no_grad():
            for batch in self.val_loader:
                inputs, targets = self._inputs(batch)
                scores.append(float(self.metric(self.model(*inputs), targets)))
        return sum(scores) / max(len(scores), 1)

    def example(self) -> tuple["torch.Tensor", ...]:
        return self.example_inputs

    def stage_steps(self) -> int:
        if not self.batches:
            self.batches = sum(1 for _ in self.train_loader)
        return self.batches * self.spec.epochs

    def steps_done(self) -> int:
        return self.steps


def compress_module(module: "torch.nn.Module", recipe: str | Recipe, train_loader: Iterable[Any],
                    loss_fn: Callable[[Any, Any], "torch.Tensor"], example_inputs: Sequence["torch.Tensor"], *,
                    spec: TrainSpec | None = None, val_loader: Iterable[Any] | None = None,
                    metric: Callable[[Any, Any], float] | None = None, include: Sequence[str] = (),
                    exclude: Sequence[str] = (), all_layers: bool = False, seed: int = 0,
                    onnx_out: Path | None = None, input_names: Sequence[str] | None = None,
                    output_names: Sequence[str] | None = None,
                    progress: Progress = lambda line: None) -> ModuleResult:
    """``recipe``'s weight steps (and QAT for int8) on ``module`` in place, each stage trained for
    ``spec.epochs`` on ``train_loader`` with ``loss_fn``; see the module docstring."""
    import torch

    parsed = parse_recipe(recipe)
    driver = _ModuleDriver(module, spec or TrainSpec(), LayerSelection(tuple(include), tuple(exclude), all_layers),
                           train_loader, loss_fn, tuple(example_inputs), progress, val_loader, metric)
    torch.manual_seed(seed)
    steps = apply_weight_steps(module, parsed, driver, seed)
    if onnx_out is not None:  # the float reference the QDQ export keeps names and dynamic dims from
        reference = onnx_out.with_suffix(".float.onnx")
        frozen = strip_parametrizations(module).eval()
        with torch.no_grad():
            outputs = frozen(*example_inputs)
        count = len(outputs) if isinstance(outputs, (tuple, list)) else 1
        names_in = list(input_names or [f"input_{i}" for i in range(len(example_inputs))])
        names_out = list(output_names or [f"output_{i}" for i in range(count)])
        torch.onnx.export(frozen, tuple(example_inputs), str(reference), dynamo=False, input_names=names_in,
                          output_names=names_out, dynamic_axes={n: {0: "batch"} for n in names_in + names_out})
    if parsed.precision == "int8":
        apply_qat(module, driver, per_channel=parsed.find("cluster") is None)
    done = ModuleResult(module, steps, driver.history)
    if onnx_out is not None:
        if parsed.precision == "int8":
            from edgebench.training.qdq import export_qdq

            export_qdq(module, reference, onnx_out)
            reference.unlink()
        else:
            reference.replace(onnx_out)
        done.onnx = onnx_out
    if parsed.precision != "int8":
        done.module = strip_parametrizations(module)
    return done
