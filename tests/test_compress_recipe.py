"""The recipe grammar: what parses, its canonical spelling, the enforced order, and every refusal."""

from __future__ import annotations

import pytest

from edgebench.compress.recipe import Step, parse_recipe
from edgebench.errors import EdgebenchError, ExitStatus


@pytest.mark.parametrize("text, canonical, precision", [
    ("fp32", "fp32", "fp32"),
    ("FP16", "fp16", "fp16"),
    ("int8", "int8", "int8"),
    ("int8:minmax", "int8", "int8"),
    ("int8:entropy", "int8:entropy", "int8"),
    ("int8-dynamic", "int8-dynamic", "int8-dynamic"),
    ("prune:0.50", "prune:0.5", "fp32"),
    ("prune:0.8+cluster:16+int8", "prune:0.8+cluster:16+int8", "int8"),
    ("prune-filters:0.25+prune-layer:0.5+cluster:8:kmeans+++int8:percentile",
     "prune-filters:0.25+prune-layer:0.5+cluster:8:kmeans+++int8:percentile", "int8"),
    ("cluster:16:density+fp32", "cluster:16", "fp32"),
    (" prune:0.5 + fp16 ", "prune:0.5+fp16", "fp16"),
])
def test_parse_and_canonical(text, canonical, precision):
    recipe = parse_recipe(text)
    assert recipe.canonical == canonical
    assert recipe.precision == precision
    assert parse_recipe(recipe.canonical) == recipe  # the canonical form parses back to the same recipe


def test_steps_are_typed():
    recipe = parse_recipe("prune:0.8+cluster:16:linear+int8:entropy")
    assert recipe.steps == (Step("prune", 0.8), Step("cluster", 16, "linear"), Step("int8", None, "entropy"))
    assert [s.kind for s in recipe.weight_steps] == ["prune", "cluster"]


def test_yaml_list_forms_match_the_string():
    text = parse_recipe("prune:0.8+cluster:16:kmeans+++int8:entropy")
    assert parse_recipe(["prune:0.8", "cluster:16:kmeans++", "int8:entropy"]) == text
    assert parse_recipe([{"prune": 0.8}, {"cluster": {"k": 16, "init": "kmeans++"}},
                         {"int8": {"calibration": "entropy"}}]) == text
    assert parse_recipe([{"int8-dynamic": None}]).canonical == "int8-dynamic"


@pytest.mark.parametrize("text, needle", [
    ("int4", "unknown recipe step 'int4'"),
    ("prune:0.5+", "empty step"),
    ("prune:0", "outside (0, 1)"),
    ("prune:1", "outside (0, 1)"),
    ("prune-layer:1.5", "outside (0, 1)"),
    ("prune-filters:-0.1", "outside (0, 1)"),
    ("prune:half", "not a number"),
    ("prune", "needs one sparsity"),
    ("cluster:1", "K=1"),
    ("cluster:0", "below 2"),
    ("cluster:x", "not an integer"),
    ("cluster:16:fancy", "unknown cluster init"),
    ("int8:mse", "unknown int8 calibration"),
    ("fp16:x", "takes no options"),
    ("fp16+int8", "2 precision steps"),
    ("cluster:8+cluster:16", "repeats cluster"),
    ("prune:0.5+prune-layer:0.5", "more than one magnitude pruning"),
    ([{"cluster": {"k": 8, "seed": 1}}], "unknown keys"),
    ([3], "neither a string"),
])
def test_bad_steps_are_refused(text, needle):
    with pytest.raises(EdgebenchError) as err:
        parse_recipe(text)
    assert needle in str(err.value)
    assert err.value.status == ExitStatus.USAGE
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text, why, fixed", [
    ("cluster:16+prune:0.5", "adds zero as an extra value", "prune:0.5+cluster:16"),
    ("int8+prune:0.5", "already replaced", "prune:0.5+int8"),
    ("fp16+cluster:16", "already replaced", "cluster:16+fp16"),
    ("prune:0.5+prune-filters:0.5", "changes layer shapes", "prune-filters:0.5+prune:0.5"),
])
def test_wrong_order_says_why_and_how(text, why, fixed):
    with pytest.raises(EdgebenchError) as err:
        parse_recipe(text)
    message = str(err.value)
    assert "prune → cluster → quantize" in message and why in message and f"write {fixed}" in message
