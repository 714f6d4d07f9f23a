"""The training-aware methods on real torch models: tfmot's pruning schedule, gradual magnitude pruning, trained
clustering (alone and after pruning), low-rank factorization and Hinton's distillation loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebench.compress.cluster import kmeans_1d
from edgebench.errors import EdgebenchError
from edgebench.training.methods.schedule import PolynomialDecay

from torch.nn.utils import parametrize

from edgebench.training.methods.clustering import ClusterTrainer
from edgebench.training.methods.distill import distillation_loss
from edgebench.training.methods.lowrank import factorize
from edgebench.training.methods.magnitude import MagnitudePruner

pytestmark = pytest.mark.usefixtures("torch_one_thread")


# ---------------------------------------------------------------- schedule


@pytest.mark.parametrize(("schedule", "step", "expected"), [
    (PolynomialDecay(0.0, 0.8, 0, 100, 3, 10), 0, 0.0),
    (PolynomialDecay(0.0, 0.8, 0, 100, 3, 10), 50, 0.7),        # 0.8 - 0.8 * 0.5^3
    (PolynomialDecay(0.0, 0.8, 0, 100, 3, 10), 100, 0.8),
    (PolynomialDecay(0.0, 0.8, 0, 100, 3, 10), 250, 0.8),       # held after end_step
    (PolynomialDecay(0.2, 0.9, 10, 110, 2, 25), 5, 0.2),        # before begin_step: the initial sparsity
    (PolynomialDecay(0.2, 0.9, 10, 110, 2, 25), 35, 0.50625),   # 0.9 - 0.7 * 0.75^2
    (PolynomialDecay(0.2, 0.9, 10, 110, 2, 25), 60, 0.725),     # 0.9 - 0.7 * 0.5^2
    (PolynomialDecay(0.5, 0.5, 0, 10, 3, 1), 3, 0.5),
    (PolynomialDecay(0.0, 0.6, 4, 4, 3, 1), 3, 0.0),            # end == begin: a step at begin_step
    (PolynomialDecay(0.0, 0.6, 4, 4, 3, 1), 4, 0.6),
])
def test_polynomial_decay_matches_tfmot_formula(schedule, step, expected):
    assert schedule.sparsity(step) == pytest.approx(expected, abs=1e-12)


def test_should_prune_every_frequency_steps_from_begin_to_end_inclusive():
    schedule = PolynomialDecay(0.2, 0.9, 10, 110, 2, 25)
    assert [s for s in range(0, 200) if schedule.should_prune(s)] == [10, 35, 60, 85, 110]


@pytest.mark.parametrize("args", [
    (0.0, 1.0, 0, 10), (-0.1, 0.5, 0, 10), (0.0, 0.5, -1, 10), (0.0, 0.5, 10, 5), (0.0, 0.5, 0, 10, 3.0, 0),
    (0.0, 0.5, 0, 10, 0.0, 1),
])
def test_polynomial_decay_refuses_bad_arguments(args):
    with pytest.raises(ValueError):
        PolynomialDecay(*args)


@settings(max_examples=200, deadline=None)
@given(initial=st.floats(0, 0.99), final=st.floats(0, 0.99), begin=st.integers(0, 500), span=st.integers(0, 500),
       power=st.floats(0.1, 10), frequency=st.integers(1, 50), steps=st.lists(st.integers(0, 1500), min_size=2))
def test_polynomial_decay_properties(initial, final, begin, span, power, frequency, steps):
    schedule = PolynomialDecay(initial, final, begin, begin + span, power, frequency)
    values = [schedule.sparsity(s) for s in sorted(steps)]
    lo, hi = min(initial, final), max(initial, final)
    assert all(lo - 1e-12 <= v <= hi + 1e-12 for v in values)
    direction = 1 if final >= initial else -1
    assert all(direction * (b - a) >= -1e-12 for a, b in zip(values, values[1:]))  # monotone towards final
    assert schedule.sparsity(begin + span) == pytest.approx(final)
    if span:
        assert schedule.sparsity(begin) == pytest.approx(initial)
    for s in steps:
        assert schedule.should_prune(s) == (begin <= s <= begin + span and (s - begin) % frequency == 0)


# ---------------------------------------------------------------- helpers


def _mlp(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.ReLU(), torch.nn.Linear(30, 10))


def _layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}


def _train(model: torch.nn.Module, hooks: list, steps: int, first_step: int = 1, seed: int = 0,
           after_step=None) -> None:
    """Adam on a fixed random classification batch; hooks after each optimizer step, as the loop does."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 20, generator=generator)
    y = torch.randint(0, 10, (64,), generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(first_step, first_step + steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        for hook in hooks:
            hook.on_step(step)
        if after_step:
            after_step()


def _zeros(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: (m.weight == 0).clone() for n, m in _layers(model).items()}


# ---------------------------------------------------------------- magnitude pruning


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_finalize_makes_exactly_the_final_sparsity(scope):
    model = _mlp()
    pruner = MagnitudePruner(_layers(model), PolynomialDecay(0.0, 0.7, 0, 100, 3, 10), scope)
    sparsity = pruner.finalize()
    zeros = {n: int(z.sum()) for n, z in _zeros(model).items()}
    if scope == "layer":
        assert zeros == {"0": 420, "2": 210}
        assert sparsity == {"0": 0.7, "2": 0.7}
    else:
        assert sum(zeros.values()) == round(0.7 * 900)
        assert sparsity == {n: pytest.approx(zeros[n] / m.weight.numel()) for n, m in _layers(model).items()}


def test_global_scope_is_one_threshold_and_layer_scope_is_per_layer():
    model = _mlp()
    with torch.no_grad():
        model[2].weight.mul_(10)  # the second layer's weights all outweigh most of the first's
    pruner = MagnitudePruner(_layers(model), PolynomialDecay(0.0, 0.5, 0, 10, 3, 1), "global")
    sparsity = pruner.finalize()
    kept = torch.cat([m.weight[m.weight != 0].abs() for m in _layers(model).values()])
    pruned = torch.cat([m.parametrizations.weight.original[m.weight == 0].abs() for m in _layers(model).values()])
    assert pruned.max() <= kept.min()
    assert sparsity["0"] > 0.6 and sparsity["2"] < 0.2
    per_layer = _mlp()
    with torch.no_grad():
        per_layer[2].weight.mul_(10)
    assert MagnitudePruner(_layers(per_layer), PolynomialDecay(0.0, 0.5, 0, 10, 3, 1), "layer").finalize() == {
        "0": 0.5, "2": 0.5}


def test_ties_are_broken_by_position_so_the_count_is_exact():
    layer = torch.nn.Linear(10, 10)
    with torch.no_grad():
        layer.weight.fill_(0.3)
    MagnitudePruner({"fc": layer}, PolynomialDecay(0.0, 0.35, 0, 10, 3, 1), "layer").finalize()
    assert int((layer.weight == 0).sum()) == 35
    assert bool((layer.weight.reshape(-1)[:35] == 0).all())


def test_gradual_pruning_follows_the_schedule_and_pruned_weights_stay_zero_under_training():
    model = _mlp()
    schedule = PolynomialDecay(0.0, 0.8, 0, 30, 3, 5)
    pruner = MagnitudePruner(_layers(model), schedule, "global")
    seen: list[dict[str, torch.Tensor]] = [_zeros(model)]

    def check() -> None:
        now = _zeros(model)
        for name, before in seen[-1].items():
            assert bool(now[name][before].all()), f"a pruned weight of layer {name} came back"
        seen.append(now)

    _train(model, [pruner], 40, after_step=check)
    total = sum(m.weight.numel() for m in _layers(model).values())
    zeros_at = [sum(int(z.sum()) for z in zeros.values()) for zeros in seen]
    assert zeros_at[5] == round(schedule.sparsity(5) * total)   # step 5 (index = step)
    assert zeros_at[30] == round(0.8 * total)
    assert zeros_at[40] == zeros_at[30]
    pruner.finalize()
    _train(model, [], 5, seed=1, after_step=check)
    pruner.strip()
    for module in _layers(model).values():
        assert not parametrize.is_parametrized(module)
        assert isinstance(module.weight, torch.nn.Parameter)
    assert sum(int(z.sum()) for z in _zeros(model).values()) == round(0.8 * total)


def test_pruning_refuses_to_empty_a_layer():
    model = _mlp()
    with torch.no_grad():
        model[0].weight.mul_(1e-6)
    pruner = MagnitudePruner(_layers(model), PolynomialDecay(0.0, 0.9, 0, 10, 3, 1), "global")
    with pytest.raises(EdgebenchError, match="every weight of layer 0"):
        pruner.finalize()


# ---------------------------------------------------------------- clustering


def _distinct(module: torch.nn.Module) -> int:
    return int(torch.unique(module.weight.detach()).numel())


def test_clustering_starts_from_compress_kmeans_and_trains_the_centroids():
    model = _mlp()
    layers = _layers(model)
    initial = {n: m.weight.detach().clone() for n, m in layers.items()}
    trainer = ClusterTrainer(layers, 8, "linear", seed=3)
    for name, module in layers.items():
        centroids, labels = kmeans_1d(initial[name].double().numpy().ravel(), 8, "linear", 3)
        torch.testing.assert_close(module.weight.detach().reshape(-1),
                                   torch.from_numpy(centroids[labels]).float(), rtol=0, atol=1e-7)
    start = {n: trainer.clusters[n].centroids.detach().clone() for n in layers}
    _train(model, [trainer], 10, after_step=lambda: [_check_at_most(m, 8) for m in layers.values()])
    for name in layers:
        assert not torch.equal(trainer.clusters[name].centroids.detach(), start[name])
    x = torch.randn(5, 20)
    expected = model(x)
    assert trainer.strip() == {n: _distinct(m) for n, m in layers.items()}
    assert all(_distinct(m) <= 8 for m in layers.values())
    assert not any(parametrize.is_parametrized(m) for m in layers.values())
    torch.testing.assert_close(model(x), expected)


def _check_at_most(module: torch.nn.Module, k: int) -> None:
    assert _distinct(module) <= k


def test_centroid_gradient_is_the_sum_per_cluster_and_passes_straight_through():
    layer = torch.nn.Linear(16, 8)
    trainer = ClusterTrainer({"fc": layer}, 4)
    upstream = torch.randn(8, 16)
    (layer.weight * upstream).sum().backward()
    clustered = trainer.clusters["fc"]
    expected = torch.zeros(4).index_add_(0, clustered.indices.reshape(-1), upstream.reshape(-1))
    torch.testing.assert_close(clustered.centroids.grad, expected)
    torch.testing.assert_close(layer.parametrizations.weight.original.grad, upstream)


def test_on_step_moves_each_weight_to_its_nearest_centroid():
    layer = torch.nn.Linear(16, 8)
    trainer = ClusterTrainer({"fc": layer}, 4)
    clustered = trainer.clusters["fc"]
    with torch.no_grad():
        clustered.centroids.copy_(torch.tensor([0.2, -0.2, 0.05, -0.01]))  # unsorted on purpose
        layer.parametrizations.weight.original.uniform_(-0.3, 0.3)
    trainer.on_step(1)
    original = layer.parametrizations.weight.original
    nearest = (original.unsqueeze(-1) - clustered.centroids.detach()).abs().argmin(-1)
    assert torch.equal(clustered.indices, nearest)
    assert torch.equal(layer.weight, clustered.centroids.detach()[nearest])


def test_prune_then_cluster_keeps_the_zeros_and_k_values_including_zero():
    model = _mlp()
    layers = _layers(model)
    MagnitudePruner(layers, PolynomialDecay(0.0, 0.6, 0, 10, 3, 1), "layer").finalize()
    pruned = _zeros(model)
    trainer = ClusterTrainer(layers, 4, "density")
    assert {n: c.centroids.numel() for n, c in trainer.clusters.items()} == {"0": 3, "2": 3}

    def check() -> None:
        assert all(torch.equal(z, pruned[n]) for n, z in _zeros(model).items())
        assert all(_distinct(m) <= 4 for m in layers.values())

    _train(model, [trainer], 8, after_step=check)
    assert trainer.strip() == {"0": 4, "2": 4}
    check()
    assert all(bool(m.weight[~pruned[n]].ne(0).all()) for n, m in layers.items())


def test_clustering_refuses_bad_arguments():
    with pytest.raises(ValueError):
        ClusterTrainer(_layers(_mlp()), 1)
    with pytest.raises(ValueError):
        ClusterTrainer(_layers(_mlp()), 8, "nearest")


# ---------------------------------------------------------------- low-rank


def _low_rank_(weight: torch.Tensor, rank: int) -> None:
    with torch.no_grad():
        matrix = torch.randn(weight.shape[0], rank) @ torch.randn(rank, weight[0].numel())
        weight.copy_((matrix / matrix.abs().max()).reshape(weight.shape))


def test_factorize_linear_and_conv_keep_outputs_and_cut_parameters():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(16 * 4 * 4, 48))
    _low_rank_(model[0].weight, 3)
    _low_rank_(model[3].weight, 4)
    x = torch.randn(2, 8, 8, 8)
    expected = model(x)
    report = factorize(model, {"0": model[0], "3": model[3]}, 1 - 1e-9)
    assert report == {"0": {"rank": 3, "full_rank": 16, "params_before": 8 * 16 * 9 + 16,
                            "params_after": 3 * 8 * 9 + 16 * 3 + 16},
                      "3": {"rank": 4, "full_rank": 48, "params_before": 256 * 48 + 48,
                            "params_after": 4 * 256 + 48 * 4 + 48}}
    assert [type(m).__name__ for m in model[0]] == ["Conv2d", "Conv2d"] and model[0][0].stride == (2, 2)
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


def test_rank_is_the_smallest_keeping_the_energy_and_layers_that_save_nothing_stay():
    torch.manual_seed(1)
    layer = torch.nn.Linear(64, 32)
    weight = layer.weight.detach().clone()
    s = torch.linalg.svdvals(weight.double())
    model = torch.nn.Sequential(layer)
    report = factorize(model, {"0": layer}, 0.5)["0"]
    energy = torch.cumsum(s ** 2, 0) / (s ** 2).sum()
    assert energy[report["rank"] - 1] >= 0.5 > energy[report["rank"] - 2]
    factored = model[0][1].weight @ model[0][0].weight
    assert torch.linalg.norm(factored - weight) <= (1 - 0.5) ** 0.5 * torch.linalg.norm(weight) + 1e-5
    full = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Conv2d(4, 8, 3, groups=2))
    kept = factorize(full, {"0": full[0], "1": full[1]}, 1.0)
    assert isinstance(full[0], torch.nn.Linear) and isinstance(full[1], torch.nn.Conv2d)
    assert all(r["params_after"] == r["params_before"] for r in kept.values())


# ---------------------------------------------------------------- an imported model (names with '/')


def test_methods_on_the_imported_digits_model(tmp_path):
    from edgebench.training import importer
    from edgebench.paths import demo_dir

    model = importer.to_torch(demo_dir() / "digits_cnn.onnx")
    data = np.load(demo_dir() / "eval.npz")
    x, y = torch.from_numpy(data["inputs"][:128]), torch.from_numpy(data["labels"][:128])
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
    assert "fc1/Gemm" in layers
    report = factorize(model, {"fc1/Gemm": layers.pop("fc1/Gemm")}, 0.95)["fc1/Gemm"]
    assert report["params_after"] < report["params_before"]
    assert isinstance(model.get_submodule("fc1/Gemm"), torch.nn.Sequential)
    pruner = MagnitudePruner(layers, PolynomialDecay(0.0, 0.5, 0, 4, 3, 2), "global")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(1, 5):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        pruner.on_step(step)
    pruner.finalize()
    zeros = {n: (m.weight == 0).clone() for n, m in layers.items()}
    trainer = ClusterTrainer(layers, 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(5, 8):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        trainer.on_step(step)
    assert all(v <= 8 for v in trainer.strip().values())
    assert all(torch.equal(m.weight == 0, zeros[n]) for n, m in layers.items())
    assert model(x).shape == (128, 10)


# ---------------------------------------------------------------- distillation


def test_distillation_loss_is_hintons():
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(6, 5, generator=generator, requires_grad=True)
    teacher = torch.randn(6, 5, generator=generator, requires_grad=True)
    labels = torch.randint(0, 5, (6,), generator=generator)
    ce = torch.nn.functional.cross_entropy(student, labels)
    torch.testing.assert_close(distillation_loss(student, teacher, labels, 4.0, 0.0), ce)
    p_t, log_p_s = torch.softmax(teacher / 2, -1), torch.log_softmax(student / 2, -1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(-1).mean()
    mixed = distillation_loss(student, teacher, labels, 2.0, 0.25)
    torch.testing.assert_close(mixed, 0.25 * 4 * kl + 0.75 * ce)
    mixed.backward()
    assert teacher.grad is None


def test_distillation_from_an_identical_teacher_is_zero_with_zero_gradient():
    student = torch.randn(4, 7, requires_grad=True)
    loss = distillation_loss(student, student.detach().clone(), torch.zeros(4, dtype=torch.long), 3.0, 1.0)
    loss.backward()
    assert abs(float(loss.detach())) < 1e-6
    torch.testing.assert_close(student.grad, torch.zeros_like(student), rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        distillation_loss(student, student, torch.zeros(4, dtype=torch.long), 0.0, 0.5)
