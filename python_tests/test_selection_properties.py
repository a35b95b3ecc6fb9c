"""Property tests: budgets, weights and determinism of every selector on random stats."""
import collections
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from augcore.selection import (CoresetSelector, HighLossSelector, MaxLossSelector, MisclassifiedSelector,
                               RandomSelector, SlowLearnableSelector, budget_from_fraction, random_stats)

fractions = st.floats(min_value=1e-3, max_value=1.0, allow_nan=False, exclude_min=False)


@st.composite
def problems(draw, max_n=240):
    classes = draw(st.integers(1, 6))
    n = draw(st.integers(classes, max_n))
    return random_stats(n, classes, embedding_dim=3, seed=draw(st.integers(0, 2 ** 16)))


def check_common(stats, sel):
    idx = sel.indices.tolist()
    assert len(set(idx)) == len(idx), "an example was selected twice"
    assert set(idx) <= set(stats.indices.tolist())
    assert sel.weights.dtype == torch.float32 and sel.weights.shape == sel.indices.shape
    assert bool(torch.isfinite(sel.weights).all()) and bool((sel.weights > 0).all())
    assert int(sel.budgets.sum()) == len(sel) and sel.budgets.numel() == stats.num_classes
    assert sel.info["fraction"] == len(sel) / len(stats)


def check_deterministic(selector, stats, seed, epoch):
    a, b = selector.select(stats, epoch=epoch, seed=seed), selector.select(stats, epoch=epoch, seed=seed)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.weights, b.weights)
    return a


@settings(max_examples=40, deadline=None)
@given(problems(), fractions, st.integers(0, 1000), st.integers(0, 50))
def test_fraction_budgets_are_exact(stats, fraction, seed, epoch):
    n = len(stats)
    k = budget_from_fraction(fraction, n)
    assert 0 <= k <= n and abs(k - fraction * n) <= 0.5 + 1e-9
    for selector in (RandomSelector(fraction), RandomSelector(fraction, stratified=True), MaxLossSelector(fraction),
                     HighLossSelector(fraction)):
        sel = check_deterministic(selector, stats, seed, epoch)
        check_common(stats, sel)
        assert len(sel) == k
        assert torch.equal(sel.weights, torch.ones(k))
    sizes = torch.bincount(stats.labels, minlength=stats.num_classes)
    stratified = RandomSelector(fraction, stratified=True).select(stats, epoch=epoch, seed=seed)
    assert all(abs(int(b) - k * int(s) / n) < 1 for b, s in zip(stratified.budgets, sizes))


@settings(max_examples=30, deadline=None)
@given(problems(), fractions, st.integers(0, 1000), st.sampled_from(["proportional", "equal", "equal_ceil"]),
       st.sampled_from(["logits", "last_layer"]))
def test_coreset_budgets_and_weights(stats, fraction, seed, split, proxy):
    n, c = len(stats), stats.num_classes
    k = budget_from_fraction(fraction, n)
    sizes = torch.bincount(stats.labels, minlength=c)
    sel = check_deterministic(CoresetSelector(fraction, budget_split=split, proxy=proxy), stats, seed, 1)
    check_common(stats, sel)
    if split == "equal_ceil":
        assert sel.budgets.tolist() == [min(int(s), math.ceil(k / c)) for s in sizes]
    else:
        assert len(sel) == k
    if len(sel):
        assert float(sel.weights.sum()) == pytest.approx(len(sel), rel=1e-5)
    raw = CoresetSelector(fraction, budget_split=split, proxy=proxy, weights="raw").select(stats, epoch=1, seed=seed)
    assert torch.equal(raw.indices, sel.indices)
    # gamma counts every point of each class that got a budget exactly once
    assert float(raw.info["gamma"].sum()) == float(sizes[sel.budgets > 0].sum())
    # the assignment maps onto the selection, and gamma counts it; classes without budget map to -1
    counts = collections.Counter(sel.assignment.tolist())
    assert raw.info["gamma"].tolist() == [counts[i] for i in sel.indices.tolist()]
    assert set(counts) <= set(sel.indices.tolist()) | {-1}
    assert counts[-1] == int(sizes[sel.budgets == 0].sum())


@settings(max_examples=15, deadline=None)
@given(problems(max_n=160), st.integers(0, 1000), st.sampled_from(["probs", "logits", "embeddings"]))
def test_slow_learnable_takes_a_proper_part_of_every_split_class(stats, seed, features):
    sel = check_deterministic(SlowLearnableSelector(features=features, restarts=3), stats, seed, 0)
    check_common(stats, sel)
    sizes = torch.bincount(stats.labels, minlength=stats.num_classes)
    for cls in range(stats.num_classes):
        if cls in sel.info["unsplit_classes"]:
            assert int(sel.budgets[cls]) == 0
        else:
            assert 0 < int(sel.budgets[cls]) < int(sizes[cls])
    mis = check_deterministic(MisclassifiedSelector(), stats, seed, 0)
    check_common(stats, mis)
