"""A recipe applied with training: the ONNX model imported into PyTorch, each step trained, exported back.

Stages, in the recipe's enforced order, each fine-tuned for ``epochs`` on the training set (none without a
``finetune`` step: a ``lowrank`` step alone is then post-training):

1. ``prune-filters:S`` — structured pruning through torch-pruning's dependency graph, then fine-tuning;
2. ``lowrank:E`` — truncated SVD keeping E of the squared singular values, then fine-tuning;
3. ``prune:S`` / ``prune-layer:S`` — gradual magnitude pruning on tfmot's polynomial-decay schedule; the masks
   stay through the later stages;
4. ``cluster:K`` — trainable centroids (sparsity kept), through the later stages;
5. ``int8`` — quantization-aware training (masks and centroids kept: tfmot's PQAT / CQAT / PCQAT), exported
   as a QDQ ONNX the formats consume without re-calibration.

``distill`` trains every stage against the teacher's scores (the original model unless ``--teacher``). The
float model after the weight steps is exported too (``model.onnx``, with the original node names): its step
reports are the post-training ones' (compress.weights), so a fine-tuned artifact reads like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, cast

import numpy as np

from edgebench.compress.graph import Graph, LayerSelection, select_layers
from edgebench.compress.recipe import Recipe, Step
from edgebench.compress.weights import cluster_report, filters_report, prune_report
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.training.data import TrainData, load_train_data
from edgebench.training.loop import Progress, Stage, Trainer
from edgebench.training.spec import TrainSpec, train_spec

if TYPE_CHECKING:
    import torch

WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class Finetune:
    """Where fine-tuning's inputs are: the labelled ``data`` (.npz), an optional ``teacher`` ONNX for
    ``distill`` (default: the original model), a YAML ``config`` of settings, the scored ``output``."""

    data: Path
    teacher: Path | None = None
    config: Path | None = None
    output: str | None = None


def spec_for(recipe: Recipe, finetune: Finetune | None) -> TrainSpec:
    """The settings of the recipe's ``finetune`` step over ``finetune.config`` over the defaults."""
    step = recipe.find("finetune")
    return train_spec(dict(step.settings) if step else None, finetune.config if finetune else None)


def weight_modules(model: "torch.nn.Module") -> dict[str, "torch.nn.Module"]:
    import torch

    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    return {name: m for name, m in model.named_modules() if isinstance(m, kinds)}


def strip_parametrizations(model: "torch.nn.Module") -> "torch.nn.Module":
    """A copy of ``model`` with every parametrization (masks, centroids) baked into plain weights."""
    from torch.nn.utils import parametrize

    from edgebench.training.qdq import private_copy

    frozen = private_copy(model)
    for module in list(frozen.modules()):
        if parametrize.is_parametrized(module):
            for name in list(cast(Any, module).parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return frozen


class _Run:
    """One recipe's training run over the imported model, with the layer mapping the steps share."""

    def __init__(self, source: Path, recipe: Recipe, finetune: Finetune | None, selection: LayerSelection,
                 seed: int, progress: Progress) -> None:
        from edgebench.training.importer import module_names, to_torch

        self.source, self.recipe, self.selection, self.seed = source, recipe, selection, seed
        self.spec = spec_for(recipe, finetune)
        self.graph = Graph.load(source)
        self.model = to_torch(source)
        self.input_names = [i.name for i in self.graph.model.graph.input
                            if i.name not in {t.name for t in self.graph.model.graph.initializer}]
        nodes = [layer.node for layer in self.graph.weight_layers()]
        self.names = module_names(nodes, self.model)  # ONNX node → module
        self.onnx_of = {module: node for node, module in self.names.items()}
        self.training = recipe.trains
        self.data: TrainData | None = None
        self.trainer: Trainer | None = None
        if self.training:
            if finetune is None:
                raise EdgebenchError(f"recipe {recipe.canonical} fine-tunes but no training data was given: pass "
                                     "--finetune TRAIN.npz (labelled, keyed by input names + labels)",
                                     ExitStatus.USAGE)
            self.data = load_train_data(finetune.data, source, self.spec.val_fraction, finetune.output)
            train, val = self.data.split(self.spec.val_fraction, seed)
            outputs = [o.name for o in self.graph.model.graph.output]
            scored = outputs.index(finetune.output) if finetune.output in outputs else 0
            teacher, distill = None, None
            step = recipe.find("distill")
            if step is not None:
                teacher = to_torch(finetune.teacher or source).eval()
                for p in teacher.parameters():
                    p.requires_grad_(False)
                distill = (float(step.value or 0), float(step.option or 0))
            self.trainer = Trainer(self.model, self.input_names, scored, train, val, self.spec.batch_size,
                                   self.spec.weight_decay, seed, progress, teacher, distill)
        elif recipe.find("distill") is not None:
            raise EdgebenchError(f"recipe {recipe.canonical} distills but does not fine-tune: add the finetune step "
                                 "(--finetune TRAIN.npz)", ExitStatus.USAGE)

    def layers(self, step: Step, convs: bool = False) -> dict[str, "torch.nn.Module"]:
        """The modules a step touches: the ONNX layers the post-training rule selects (first/last, include,
        exclude), mapped to modules; a factorized layer stands for its two factors."""
        chosen = select_layers(self.graph, self.selection, step.canonical(), convs=convs)
        modules = weight_modules(self.model)
        found: dict[str, torch.nn.Module] = {}
        for layer in chosen:
            name = self.names.get(layer.node)
            if name is None:
                continue
            found.update({n: m for n, m in modules.items() if n == name or n.startswith(name + ".")})
        if not found:
            raise EdgebenchError(f"{step.canonical()}: none of the selected layers became a PyTorch weight module "
                                 "when imported: fine-tune the source model in PyTorch instead", ExitStatus.CONVERSION_FAILED)
        return found

    def train(self, name: str, hooks: Sequence[Any] = (), lr_scale: float = 1.0) -> None:
        if self.trainer is not None and self.spec.epochs > 0:
            self.trainer.run(Stage(name, self.spec.epochs, self.spec.lr * lr_scale, hooks))

    def steps_done(self) -> int:
        return self.trainer.history.steps if self.trainer else 0

    def example(self) -> tuple["torch.Tensor", ...]:
        import torch

        from edgebench.training.importer import example_inputs

        if self.data is not None:
            return tuple(torch.from_numpy(np.ascontiguousarray(self.data.inputs[n][:2])) for n in self.input_names)
        return example_inputs(self.source)

    def stage_steps(self) -> int:
        return self.trainer.steps_per_epoch() * self.spec.epochs if self.trainer else 0

    def shapes(self) -> dict[str, tuple[int, ...]] | None:
        """One training sample's shapes: the export's example feed (dynamic sizes of 1 break some CNNs)."""
        return {n: tuple(self.data.inputs[n][:1].shape) for n in self.input_names} if self.data else None


class Driver(Protocol):
    """What the steps need from whoever owns the model and the data: the modules a step touches, a training
    stage (hooks after each step), example inputs (for torch-pruning's graph) and the stage length."""

    spec: TrainSpec

    def layers(self, step: Step, convs: bool = False) -> dict[str, "torch.nn.Module"]: ...

    def train(self, name: str, hooks: Sequence[Any] = (), lr_scale: float = 1.0) -> None: ...

    def example(self) -> tuple["torch.Tensor", ...]: ...

    def stage_steps(self) -> int: ...

    def steps_done(self) -> int: ...


def apply_weight_steps(model: "torch.nn.Module", recipe: Recipe, driver: Driver, seed: int) -> dict[str, Any]:
    """The recipe's weight steps on ``model``, each trained through ``driver``; masks and centroids stay as
    parametrizations (for QAT after them). Returns what each step did, by step, module name → figures."""
    touched: dict[str, Any] = {}
    for step in recipe.weight_steps:
        name = step.canonical()
        if step.kind == "prune-filters":
            from edgebench.training.methods.filters import prune_filters

            touched[name] = prune_filters(model, driver.example(), driver.layers(step, convs=True), step.sparsity)
            driver.train(name)
        elif step.kind == "lowrank":
            from edgebench.training.methods.lowrank import factorize

            touched[name] = factorize(model, driver.layers(step), float(step.value or 1))
            driver.train(name)
        elif step.kind in ("prune", "prune-layer"):
            from edgebench.training.methods.magnitude import MagnitudePruner
            from edgebench.training.methods.schedule import PolynomialDecay

            spec = driver.spec
            total = max(driver.stage_steps(), 1)
            # at least ten mask updates in a short stage; the default end at two thirds of the stage, on a
            # multiple of the frequency so the last update reaches S and the last third trains at S
            frequency = max(1, min(spec.frequency, total // 10))
            end = spec.end_step or spec.begin_step + max(frequency, (2 * total // 3 - spec.begin_step) // frequency
                                                          * frequency)
            schedule = PolynomialDecay(spec.initial_sparsity, step.sparsity, spec.begin_step, end, spec.power,
                                       frequency)
            pruner = MagnitudePruner(driver.layers(step), _Shifted(schedule, driver.steps_done()),
                                     "global" if step.kind == "prune" else "layer")
            driver.train(name, [pruner])
            touched[name] = pruner.finalize()  # the schedule reached S at two thirds: exact counts now
        elif step.kind == "cluster":
            from edgebench.training.methods.clustering import ClusterTrainer

            clusterer = ClusterTrainer(driver.layers(step), step.clusters, step.option or "density", seed)
            driver.train(name, [clusterer])
    return touched


def apply_qat(model: "torch.nn.Module", driver: Driver, per_channel: bool) -> None:
    """Quantization-aware training of every weight layer (masks and centroids kept: PQAT/CQAT/PCQAT)."""
    from edgebench.training.methods.qat import prepare_qat

    prepare_qat(model, weight_modules(model), per_channel=per_channel)
    driver.train("int8 (QAT)", lr_scale=driver.spec.qat_lr_scale)


def train_model(source: Path, recipe: Recipe, finetune: Finetune | None, out: Path,
                selection: LayerSelection = LayerSelection(), seed: int = 0,
                progress: Progress = lambda line: None) -> dict[str, Any]:
    """Apply ``recipe``'s weight steps (and QAT for int8 when it fine-tunes) to the float ONNX ``source`` with
    training; writes ``out/model.onnx`` (float, masks and centroids baked) and, after QAT, ``out/qdq.onnx``.
    Returns meta: ``steps`` (the per-step reports), ``clustered``, ``qat`` (the QDQ export's report or None),
    ``history`` (loss and held-out top-1 per epoch), ``top1_before``/``top1_after`` and the ``settings``."""
    run = _Run(source, recipe, finetune, selection, seed, progress)
    before = run.trainer.evaluate() if run.trainer else None
    touched = apply_weight_steps(run.model, recipe, run, seed)
    float_path = out / "model.onnx"
    _export(strip_parametrizations(run.model), run, float_path)
    graph = Graph.load(float_path)
    reports: dict[str, Any] = {}
    clustered: dict[str, int] = {}
    for step in recipe.weight_steps:
        reports[step.canonical()] = _report(graph, step, touched.get(step.canonical(), {}), run)
        if step.kind == "cluster":
            clustered = {layer.node: step.clusters for layer in graph.weight_layers()
                         if graph.arrays[layer.weight].dtype.kind == "f"
                         and np.unique(graph.arrays[layer.weight]).size <= step.clusters}
    qat = None
    if recipe.precision == "int8" and recipe.trains:
        from edgebench.training.qdq import export_qdq

        apply_qat(run.model, run, per_channel=not clustered)
        qat = export_qdq(run.model, source, out / "qdq.onnx", shapes=run.shapes())
    after = run.trainer.evaluate() if run.trainer else None
    return {"steps": reports, "clustered": clustered, "qat": qat, "settings": run.spec.changed(),
            "history": run.trainer.history.to_dict() if run.trainer else None,
            "top1_before": before, "top1_after": after}


class _Shifted:
    """A schedule seen from a stage whose first step is global step ``offset + 1`` (the loop counts steps
    globally, from 1): the stage's steps are 0, 1, … as tfmot counts them."""

    def __init__(self, schedule: Any, offset: int) -> None:
        self.schedule, self.offset = schedule, offset + 1
        self.final_sparsity = schedule.final_sparsity

    def sparsity(self, step: int) -> float:
        return float(self.schedule.sparsity(step - self.offset))

    def should_prune(self, step: int) -> bool:
        return bool(self.schedule.should_prune(step - self.offset))


def _export(model: "torch.nn.Module", run: _Run, out: Path) -> None:
    """Export with the original node names on the weight layers (a factorized layer's two factors get
    ``<node>/factor0`` and ``/factor1``), so include/exclude patterns and reports name the same layers."""
    import onnx

    from edgebench.training.importer import to_onnx

    to_onnx(model, run.source, out, shapes=run.shapes())
    proto = onnx.load(str(out))
    inits = {t.name for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type not in WEIGHT_OPS or len(node.input) < 2 or node.input[1] not in inits:
            continue
        module, _, _ = node.input[1].rpartition(".")
        base, _, factor = module.rpartition(".")
        if module in run.onnx_of:
            node.name = run.onnx_of[module]
        elif base in run.onnx_of and factor.isdigit():
            node.name = f"{run.onnx_of[base]}/factor{factor}"
    onnx.save(proto, str(out))


def _report(graph: Graph, step: Step, touched: dict[str, Any], run: _Run) -> dict[str, Any]:
    name = {run.onnx_of.get(k, k): v for k, v in touched.items()}
    if step.kind in ("prune", "prune-layer"):
        return prune_report(graph, step, name, run.selection)
    if step.kind == "cluster":
        layers = {layer.node: int(np.unique(graph.arrays[layer.weight]).size) for layer in graph.weight_layers()
                  if graph.arrays[layer.weight].dtype.kind == "f"
                  and np.unique(graph.arrays[layer.weight]).size <= step.clusters}
        return cluster_report(graph, step, layers, run.selection)
    if step.kind == "prune-filters":
        convs = [layer for layer in graph.weight_layers() if layer.op == "Conv"]
        sizes = {layer.node: int(graph.arrays[layer.weight].size) for layer in convs}
        kept = {n: (v["filters_before"], v["filters_after"]) for n, v in name.items()}
        return filters_report(convs, sizes, step, kept, run.selection)
    return {"energy_requested": float(step.value or 1), "layers": name}

