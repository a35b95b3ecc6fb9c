"""Budget splits: exact totals, capacity, and equal_ceil (the released rules: test_reference_preset.py)."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from augcore import normalize_weights, split_budget

sizes_strategy = st.lists(st.integers(0, 60), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(sizes=sizes_strategy, data=st.data())
def test_exact_total_and_capacity(sizes, data):
    budget = data.draw(st.integers(0, sum(sizes)))
    for split in ("proportional", "equal"):
        b = split_budget(sizes, budget, split)
        assert int(b.sum()) == budget
        assert all(0 <= bi <= n for bi, n in zip(b.tolist(), sizes))


@settings(max_examples=200, deadline=None)
@given(sizes=sizes_strategy, data=st.data())
def test_proportional_is_within_one_of_the_quota(sizes, data):
    budget = data.draw(st.integers(0, sum(sizes)))
    total = sum(sizes)
    for bi, n in zip(split_budget(sizes, budget).tolist(), sizes):
        quota = budget * n / total if total else 0
        assert math.floor(quota) <= bi <= math.ceil(quota)


@settings(max_examples=200, deadline=None)
@given(sizes=sizes_strategy, data=st.data())
def test_equal_is_water_filling(sizes, data):
    """Brute force: groups that are not full differ by at most one."""
    budget = data.draw(st.integers(0, sum(sizes)))
    b = split_budget(sizes, budget, "equal").tolist()
    open_groups = [bi for bi, n in zip(b, sizes) if bi < n]
    if open_groups:
        assert max(open_groups) - min(open_groups) <= 1
        assert all(bi <= min(open_groups) + 1 or bi == n for bi, n in zip(b, sizes))


def test_equal_ceil_rule():
    b = split_budget([10, 10, 10, 2], 10, "equal_ceil")  # ceil(10 / 4) = 3, capped at the size
    assert b.tolist() == [3, 3, 3, 2]
    # the released equal_num would hand class 3's shortfall of 1 to the others: [4, 4, 4, 2]
    assert split_budget([10, 10, 10, 2], 10, "reference_equal").tolist() == [4, 4, 4, 2]


def test_per_group_budgets_and_errors():
    assert split_budget([5, 5], [2, 5]).tolist() == [2, 5]
    with pytest.raises(ValueError, match="group 1"):
        split_budget([5, 5], [2, 6])
    with pytest.raises(ValueError, match=r"out of range \[0, 10\]"):
        split_budget([5, 5], 11)
    with pytest.raises(TypeError, match="integer"):
        split_budget([5, 5], 0.5)
    with pytest.raises(ValueError, match="budget_split"):
        split_budget([5, 5], 3, "random")


def test_normalize_weights():
    gamma = torch.tensor([3, 0, 1])
    torch.testing.assert_close(normalize_weights(gamma), torch.tensor([3.0, 1, 1]) / 5 * 3)
    torch.testing.assert_close(normalize_weights(gamma, "raw"), gamma.float())
    torch.testing.assert_close(normalize_weights(gamma, "unit"), torch.ones(3))
    with pytest.raises(ValueError, match="weights must be"):
        normalize_weights(gamma, "softmax")
