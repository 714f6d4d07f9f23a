"""Input planning, random inputs and dataset validation for several kinds of model input."""

from __future__ import annotations

import numpy as np
import pytest

from edgebench.data.inputs import load_dataset, parse_shape, plan_inputs, random_inputs
from edgebench.errors import EdgebenchError, ExitStatus
from edgebench.data.source import TensorSpec

IMAGE = TensorSpec("input", "float32", ("batch", 1, 8, 8))
IDS = TensorSpec("ids", "int64", ("batch", "seq"))
SCALE = TensorSpec("scale", "float32", ())


def test_dynamic_batch_resolved_from_batch():
    plan = plan_inputs([IMAGE], batch=4)
    assert plan.shapes == {"input": (4, 1, 8, 8)} and plan.batched == {"input"} and plan.batch == 4


def test_other_dynamic_dims_need_a_shape():
    with pytest.raises(EdgebenchError, match=r"input 'ids' \[batch, seq\]: pass --shape ids:1xSEQ "):
        plan_inputs([IDS])
    plan = plan_inputs([IDS, SCALE], shapes={"ids": (2, 16)})
    assert plan.shapes == {"ids": (2, 16), "scale": ()}
    assert plan.batched == {"ids"} and plan.per_sample == ["scale"] and plan.batch == 2


def test_shape_must_keep_fixed_dims():
    with pytest.raises(EdgebenchError, match="keep the fixed dimensions"):
        plan_inputs([IMAGE], shapes={"input": (1, 3, 8, 8)})


def test_unknown_input_name_is_refused():
    with pytest.raises(EdgebenchError, match="no input 'pixels'"):
        plan_inputs([IMAGE], shapes={"pixels": (1, 1, 8, 8)})


def test_random_inputs_honour_dtype_range_and_fixed_values():
    plan = plan_inputs([IDS, SCALE], shapes={"ids": (3, 5)}, ranges={"ids": (0, 50)}, values={"scale": 16000})
    arrays = random_inputs(plan, seed=1, batches=4)
    assert arrays["ids"].dtype == np.int64 and arrays["ids"].shape == (12, 5)
    assert arrays["ids"].min() >= 0 and arrays["ids"].max() < 50
    assert arrays["scale"].shape == (4,) and np.all(arrays["scale"] == 16000)
    again = random_inputs(plan, seed=1, batches=4)
    assert np.array_equal(arrays["ids"], again["ids"])  # seeded: reproducible


def test_parse_shape():
    assert parse_shape("input:1x3x224x224") == ("input", (1, 3, 224, 224))
    assert parse_shape("a:b:2x3") == ("a:b", (2, 3))
    for bad in ("input", "input:", "input:1xx2", "input:0x3"):
        with pytest.raises(EdgebenchError):
            parse_shape(bad)


def save(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def test_dataset_with_inputs_key_for_single_input_models(tmp_path):
    path = save(tmp_path, inputs=np.zeros((5, 1, 8, 8), np.float32), labels=np.arange(5))
    ds = load_dataset(path, plan_inputs([IMAGE]))
    assert list(ds.arrays) == ["input"] and len(ds) == 5 and ds.labels is not None


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((5, 1, 8, 8), np.float32)}, "no array for input 'input'"),
    ({"input": np.zeros((5, 1, 8, 8), np.float64)}, "float64 but the model's input is float32"),
    ({"input": np.zeros((5, 3, 8, 8), np.float32)}, r"samples of shape \[3, 8, 8\].*takes \[1, 8, 8\]"),
    ({"input": np.zeros((5, 1, 8, 8), np.float32), "labels": np.arange(4)}, "4 labels for 5 samples"),
])
def test_dataset_that_does_not_fit_is_refused_naming_the_input(tmp_path, arrays, message):
    with pytest.raises(EdgebenchError, match=message) as err:
        load_dataset(save(tmp_path, **arrays), plan_inputs([IMAGE]))
    assert err.value.status == ExitStatus.DATA_MISMATCH


def test_multi_input_dataset_with_a_per_sample_scalar(tmp_path):
    plan = plan_inputs([IDS, SCALE], shapes={"ids": (1, 7)})
    path = save(tmp_path, ids=np.zeros((6, 7), np.int64), scale=np.ones(6, np.float32))
    ds = load_dataset(path, plan)
    assert ds.arrays["ids"].shape == (6, 7) and ds.arrays["scale"].shape == (6,)


def test_object_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, input=np.array([{"a": 1}], dtype=object))
    with pytest.raises(EdgebenchError, match="object arrays"):
        load_dataset(path, plan_inputs([IMAGE]))
