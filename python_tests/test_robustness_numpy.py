"""numpy values at the public API: a numpy scalar of any dtype, a 0-d array or a 0-d tensor
means exactly what the equal Python value means (same result, or the same kind of error);
arrays are taken where the docs say "tensor or array" and rejected, naming the parameter,
where a single number is meant."""
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import augcore
from augcore.checks import as_python_number, check_count, check_count_or_fraction, check_int
from augcore.config import ConfigError
from augcore.data import AugmentedSubsetDataset, load_dataset, random_subset_indices
from augcore.selection import (CoresetSelector, HighLossSelector, MaxLossSelector, RandomSelector, SelectionHistory,
                               random_stats)
from augcore.selection import budget_from_fraction
from augcore.train import LRSchedule, config_from_dict

DIGITS = load_dataset("digits", train=False)
STATS = random_stats(48, 3, seed=5)
POINTS = torch.randn(30, 4, generator=torch.Generator().manual_seed(1))
GROUPS = torch.arange(30) % 3

INT_KINDS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.intp,
             np.array, lambda v: torch.tensor(v), lambda v: torch.tensor(v, dtype=torch.int32)]
FLOAT_KINDS = [np.float16, np.float32, np.float64, np.longdouble, np.array, lambda v: torch.tensor(v),
               lambda v: torch.tensor(v, dtype=torch.float64)]


def _outcome(call):
    """What a call gives, in a form two calls can be compared by: its value, or its error's type."""
    try:
        value = call()
    except (TypeError, ValueError, ConfigError) as exc:
        return ("error", type(exc))
    if isinstance(value, torch.Tensor):
        return ("tensor", value.dtype, value.tolist())
    if hasattr(value, "indices") and hasattr(value, "weights"):  # a Selection or a FacilityLocationResult
        return ("selection", value.indices.tolist(), value.weights.tolist())
    if hasattr(value, "to_dict"):
        return ("config", value.to_dict())
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return ("value", value)


# each: (call taking the number, Python values to try, "int" or "float")
ENTRY_POINTS = {
    "split_budget.budget": (lambda v: augcore.split_budget([4, 6, 5], v), [0, 3, 7, 15, 16, -1], "int"),
    "split_budget.sizes": (lambda v: augcore.split_budget([4, v], 3), [0, 2, 9, -2], "int"),
    "facility_location.budget": (lambda v: augcore.facility_location(POINTS, v, GROUPS, method="lazy"),
                                 [0, 4, 9, 31], "int"),
    "facility_location.seed": (lambda v: augcore.facility_location(POINTS, 5, GROUPS, seed=v), [0, 7, -3], "int"),
    "facility_location.eps": (lambda v: augcore.facility_location(POINTS, 5, GROUPS, eps=v), [0.05, 0.5, 0.0, 1.0],
                              "float"),
    "random_subset_indices.size(count)": (lambda v: random_subset_indices(DIGITS, v), [0, 5, 360, 361], "int"),
    "random_subset_indices.size(fraction)": (lambda v: random_subset_indices(DIGITS, v), [0.5, 0.125, 1.0, 0.0, 1.5],
                                             "float"),
    "random_subset_indices.seed": (lambda v: random_subset_indices(DIGITS, 5, seed=v), [0, 3, 200, -1], "int"),
    "RandomSelector.fraction": (lambda v: RandomSelector(v).select(STATS, epoch=1, seed=2), [0.25, 0.5, 1.0, 0.0],
                                "float"),
    "RandomSelector.select.seed": (lambda v: RandomSelector(0.25).select(STATS, seed=v), [0, 9, 100], "int"),
    "MaxLossSelector.fraction": (lambda v: MaxLossSelector(v).select(STATS), [0.125, 0.75, 2.0], "float"),
    "HighLossSelector.select.epoch": (lambda v: HighLossSelector(0.25).select(STATS, epoch=v), [0, 4, -1], "int"),
    "CoresetSelector.fraction": (lambda v: CoresetSelector(v, method="lazy").select(STATS), [0.25, 0.5], "float"),
    "budget_from_fraction": (lambda v: budget_from_fraction(v, 5), [0.5, 0.25, 1.0], "float"),
    "SelectionHistory.num_examples": (lambda v: SelectionHistory(v).num_examples, [1, 7, 0], "int"),
    "AugmentedSubsetDataset.copies": (lambda v: len(AugmentedSubsetDataset(DIGITS, None, weak=abs, strong=abs,
                                                                           copies=v)), [1, 3, 0], "int"),
    "LRSchedule.base_lr": (lambda v: LRSchedule("cosine", v, 10).lr(3), [0.1, 0.5, -1.0], "float"),
    "LRSchedule.epochs": (lambda v: LRSchedule("multistep", 0.1, v).lr(2), [4, 10, 0], "int"),
    "LRSchedule.lr.epoch": (lambda v: LRSchedule("cosine", 0.1, 10).lr(v), [0, 5, 9], "int"),
    "config.augment.fraction": (lambda v: config_from_dict({"augment": {"fraction": v}}), [0.25, 0.5, 1.5], "float"),
    "config.schedule.epochs": (lambda v: config_from_dict({"schedule": {"epochs": v, "milestones": []}}), [2, 30, 0],
                               "int"),
    "config.optim.lr": (lambda v: config_from_dict({"optim": {"lr": v}}), [0.05, 0.5], "float"),
    "check_count": (lambda v: check_count("n", v), [0, 4, -1], "int"),
    "check_count_or_fraction": (lambda v: check_count_or_fraction("size", v, max_count=10), [3, 0.5, 11, 1.5],
                                None),
}


@st.composite
def _entry_and_values(draw):
    name = draw(st.sampled_from(sorted(ENTRY_POINTS)))
    call, values, kind = ENTRY_POINTS[name]
    value = draw(st.sampled_from(values))
    if isinstance(value, int):   # only the integer dtypes that can hold the value
        kinds = [k for k in INT_KINDS
                 if not isinstance(k, type) or np.iinfo(k).min <= value <= np.iinfo(k).max]
    else:
        kinds = FLOAT_KINDS
    convert = draw(st.sampled_from(kinds))
    return name, call, convert(value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_entry_and_values())
def test_a_numpy_scalar_means_its_python_value(case):
    name, call, numpy_value = case
    # the Python number the numpy value stands for (np.float16(0.1) stands for 0.0999755859375)
    python_value = numpy_value.item()
    python_value = float(python_value) if isinstance(python_value, np.floating) else python_value  # longdouble
    assert type(python_value) in (int, float)
    assert _outcome(lambda: call(numpy_value)) == _outcome(lambda: call(python_value)), name


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_takes_numpy_once(name):
    """Each entry point, deterministically, with one valid value as np.int64/np.float32 and a 0-d tensor."""
    call, values, _ = ENTRY_POINTS[name]
    value = values[0]
    for numpy_value in ((np.int64(value), torch.tensor(value)) if isinstance(value, int)
                        else (np.float32(value), torch.tensor(value, dtype=torch.float64))):
        expected = _outcome(lambda: call(numpy_value.item()))
        assert expected[0] != "error", (name, value)
        assert _outcome(lambda: call(numpy_value)) == expected, (name, numpy_value)


@pytest.mark.parametrize("value", [np.bool_(True), torch.tensor(True), True, np.array([3]), torch.tensor([3]),
                                   np.array([[1, 2]]), np.complex64(1), "3", None])
def test_bools_arrays_and_strings_are_not_numbers(value):
    with pytest.raises(TypeError, match="count"):
        check_count("count", value)
    with pytest.raises(TypeError, match="fraction"):
        RandomSelector(value)
    with pytest.raises(TypeError, match="size"):
        random_subset_indices(DIGITS, value)


def test_an_array_where_one_number_is_meant_is_named_with_its_shape():
    with pytest.raises(TypeError, match=r"fraction must be a single number, got a ndarray of shape \(2,\)"):
        RandomSelector(np.array([0.1, 0.2]))
    with pytest.raises(TypeError, match=r"seed must be a single number.*shape \(1,\)"):
        random_subset_indices(DIGITS, 5, seed=torch.tensor([1]))
    with pytest.raises(ConfigError, match="augment.fraction"):
        config_from_dict({"augment": {"fraction": np.array([0.1, 0.2])}})


def test_a_float_is_a_fraction_and_an_integer_a_count_whatever_the_library():
    n = len(DIGITS)
    # the reported case: np.float32(0.5) was taken for a count and gave 718 indices
    assert len(random_subset_indices(DIGITS, np.float32(0.5))) == n // 2
    assert len(random_subset_indices(DIGITS, torch.tensor(0.5))) == n // 2
    assert len(random_subset_indices(DIGITS, np.float64(1.0))) == n  # 1.0 is all of them, not one
    assert len(random_subset_indices(DIGITS, np.uint8(1))) == 1
    assert len(random_subset_indices(DIGITS, torch.tensor(7))) == 7


def test_arrays_are_taken_where_the_docs_say_tensor_or_array():
    gamma = np.array([3, 0, 1], dtype=np.int32)
    expected = augcore.normalize_weights(torch.tensor([3, 0, 1]))
    torch.testing.assert_close(expected, torch.tensor([3.0, 1.0, 1.0]) / 5 * 3)
    for same in (gamma, gamma.astype(np.float64), gamma.astype(np.uint8), [3, 0, 1]):
        torch.testing.assert_close(augcore.normalize_weights(same), expected)
    assert augcore.split_budget(np.array([4, 6, 5]), np.array([1, 2, 3])).tolist() == [1, 2, 3]
    assert augcore.split_budget(torch.tensor([4, 6, 5]), 6).tolist() == augcore.split_budget([4, 6, 5], 6).tolist()
    by_numpy = augcore.facility_location(POINTS.numpy(), np.array([1, 2, 3]), GROUPS.numpy(), method="lazy")
    by_torch = augcore.facility_location(POINTS, [1, 2, 3], GROUPS, method="lazy")
    assert torch.equal(by_numpy.indices, by_torch.indices)


def test_as_python_number_keeps_the_kind():
    assert as_python_number("x", np.uint64(2 ** 63)) == 2 ** 63
    assert type(as_python_number("x", np.int16(-3))) is int and type(as_python_number("x", np.float16(0.5))) is float
    assert check_int("seed", torch.tensor(5, dtype=torch.int8)) == 5
    with pytest.raises(TypeError, match=r"seed must be an integer, got np.float32\(2.0\)"):
        check_int("seed", np.float32(2.0))  # identifiers are integers; counts take 2.0 (check_count)
    assert check_count("n", np.float32(2.0)) == 2


def test_a_numpy_epoch_is_stored_as_a_python_int_so_the_selection_stays_json():
    for selector in (RandomSelector(0.25), CoresetSelector(0.25, method="lazy")):
        selection = selector.select(STATS, epoch=np.int64(3), seed=np.uint8(1))
        assert type(selection.epoch) is int and json.loads(selection.summary())["epoch"] == 3
