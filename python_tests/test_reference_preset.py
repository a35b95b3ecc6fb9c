"""CoresetSelector(preset="reference") against the released selection, re-implemented on submodlib.

``released_selection`` below restates the released ``utils/craig.py::get_orders_and_weights``
(tianyu139/data-efficient-augmentation) with submodlib called directly: per class, the dense
"euclidean" FacilityLocationFunction on the proxies softmax(z) - onehot(y), LazyGreedy with no
stopping rule, each point counted for its most similar pick (first in greedy order on ties),
zero counts set to 1, then w / sum(w) * |S| over the whole selection. The inputs have unequal
classes and duplicated rows, so exact ties in gain occur and the tie rule matters.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import augcore
from augcore.ops.budgets import split_budget
from augcore.selection import CoresetSelector, InferenceStats
from augcore.seeds import cpu_generator
from augcore.ops.submodlib_kernel import submodlib_dense_kernel as released_kernel

submodlib = pytest.importorskip("submodlib")


def released_budgets(sizes, budget, equal_num):
    """The released per-class budgets before any decrement (equal_num: with its hand-off, uncapped)."""
    classes = len(sizes)
    if equal_num:
        share = math.ceil(budget / classes)
        minority = [n < share for n in sizes]
        out = [share] * classes
        if any(minority):
            bonus = math.ceil(sum(max(0, share - n) for n in sizes) / sum(minority))
            out = [b if small else b + bonus for b, small in zip(out, minority)]
        return out
    total = sum(sizes)
    return [int(np.ceil(np.divide(n, total) * budget)) for n in sizes]


def released_selection(proxies, labels, num_per_class):
    """Picks (class by class, greedy order) and normalised weights as the released code makes them."""
    picks, counts = [], []
    for c, budget in enumerate(num_per_class):
        members = np.where(labels == c)[0]
        fl = submodlib.FacilityLocationFunction(n=len(members), data=proxies[members], metric="euclidean",
                                                mode="dense")
        greedy = fl.maximize(budget=int(budget), optimizer="LazyGreedy", stopIfZeroGain=False,
                             stopIfNegativeGain=False, verbose=False, show_progress=False)
        order = np.asarray([i for i, _ in greedy], dtype=np.int64)
        sims = fl.sijs[:, order]
        size = np.zeros(len(order))
        for i in range(len(members)):
            if sims[i].max() > 0:
                size[np.argmax(sims[i])] += 1
        size[size == 0] = 1
        picks.append(members[order])
        counts.append(size)
    weights = np.concatenate(counts).astype(np.float32)
    return np.concatenate(picks), weights / np.sum(weights) * len(weights)


def tied_stats(sizes, seed, num_classes=None):
    """Logits with unequal classes, duplicated rows and saturated rows (identical float32 proxies)."""
    gen = torch.Generator().manual_seed(seed)
    num_classes = num_classes or len(sizes)
    labels = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(sizes)])
    logits = torch.randn(labels.numel(), num_classes, generator=gen) * 2
    dup = torch.randperm(labels.numel(), generator=gen)[: labels.numel() // 3]
    for i in dup.tolist():  # copy another row of the same class over it
        same = (labels == labels[i]).nonzero().flatten()
        logits[i] = logits[same[torch.randint(same.numel(), (1,), generator=gen)]]
    saturated = torch.randperm(labels.numel(), generator=gen)[: labels.numel() // 10]
    logits[saturated, labels[saturated]] = 60.0  # softmax rounds to exactly the one-hot: proxies of 0
    perm = torch.randperm(labels.numel(), generator=gen)  # classes interleaved in row order
    logits, labels = logits[perm], labels[perm]
    n = labels.numel()
    indices = torch.randperm(3 * n, generator=gen)[:n]
    return InferenceStats(logits, labels, torch.zeros(n), indices)


def proxies_of(stats):
    return (torch.softmax(stats.logits.float(), 1) - torch.nn.functional.one_hot(stats.labels).float()).numpy()


def test_kernel_is_submodlibs_value_for_value():
    stats = tied_stats([40, 70], seed=1)
    x = proxies_of(stats)
    fl = submodlib.FacilityLocationFunction(n=len(x), data=x, metric="euclidean", mode="dense")
    assert np.array_equal(released_kernel(torch.from_numpy(x)).numpy(), fl.sijs.astype(np.float32))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_picks_and_weights_match_the_released_selection(seed):
    sizes = [57, 121, 85, 140]  # no class smaller than its equal_num budget: the released code runs
    stats = tied_stats(sizes, seed)
    fraction = 0.27
    n = sum(sizes)
    sel = CoresetSelector(fraction, preset="reference").select(stats, epoch=3, seed=seed)
    budget = int(n * fraction)
    assert sel.info["budget"] == budget and budget != math.floor(n * fraction + 0.5)
    num_per_class = released_budgets(sizes, budget, equal_num=True)
    assert sel.info["requested_budgets"] == num_per_class and sel.info["released_code_fails_on_classes"] == []
    rows, weights = released_selection(proxies_of(stats), stats.labels.numpy(), num_per_class)
    assert sel.indices.tolist() == stats.indices[torch.from_numpy(rows)].tolist()
    assert np.array_equal(sel.weights.numpy(), weights)


def test_ties_decide_picks_on_this_data():
    """The exact-tie rule matters here: augcore's own rule (smaller index) picks differently."""
    sizes = [57, 121, 85, 140]
    stats = tied_stats(sizes, seed=0)
    x, labels = proxies_of(stats), stats.labels.numpy()
    differ = 0
    for c, budget in enumerate(released_budgets(sizes, int(sum(sizes) * 0.27), equal_num=True)):
        sim = released_kernel(torch.from_numpy(x[labels == c]))
        high = augcore.facility_location(None, [budget], similarity=sim, method="lazy", tie_break="high")
        low = augcore.facility_location(None, [budget], similarity=sim, method="lazy", tie_break="low")
        differ += int(high.indices.tolist() != low.indices.tolist())
    assert differ > 0


@pytest.mark.parametrize("seed", [0, 4])
def test_proportional_rule_matches_no_equal_num(seed):
    sizes = [57, 121, 83, 140, 33]
    stats = tied_stats(sizes, seed)
    fraction = 0.23
    sel = CoresetSelector(fraction, preset="reference", budget_split="reference_proportional").select(
        stats, epoch=1, seed=seed)
    budget = int(sum(sizes) * fraction)
    ceiled = released_budgets(sizes, budget, equal_num=False)
    drawn = sel.info["requested_budgets"]
    removed = [a - b for a, b in zip(ceiled, drawn)]
    assert sum(drawn) == budget and set(removed) <= {0, 1}
    rows, weights = released_selection(proxies_of(stats), stats.labels.numpy(), drawn)
    assert sel.indices.tolist() == stats.indices[torch.from_numpy(rows)].tolist()
    assert np.array_equal(sel.weights.numpy(), weights)
    again = CoresetSelector(fraction, preset="reference", budget_split="reference_proportional").select(
        stats, epoch=1, seed=seed)
    assert again.indices.tolist() == sel.indices.tolist()  # the decrements come from the seeded generator


def test_where_the_released_code_fails_small_classes_give_everything():
    """equal_num's hand-off: class 3 (12 examples) is below ceil(B/C) = 20, so the released code asks
    submodlib for 20 of 12 and stops with an error. Here class 3 gives all 12; the other classes get
    20 + ceil(8 / 1) = 28 picks each, the released formula, and match submodlib's picks."""
    sizes = [90, 120, 75, 12]
    stats = tied_stats(sizes, seed=7)
    sel = CoresetSelector(0.27, preset="reference").select(stats, epoch=0, seed=0)
    assert int(297 * 0.27) == 80
    assert released_budgets(sizes, 80, equal_num=True) == [28, 28, 28, 20]
    assert sel.info["requested_budgets"] == [28, 28, 28, 12]
    assert sel.info["released_code_fails_on_classes"] == [3]
    picked_labels = stats.labels[torch.isin(stats.indices, sel.indices)]
    assert torch.bincount(picked_labels, minlength=4).tolist() == [28, 28, 28, 12]
    fl = submodlib.FacilityLocationFunction(n=12, data=proxies_of(stats)[stats.labels.numpy() == 3],
                                            metric="euclidean", mode="dense")
    with pytest.raises(Exception, match="Budget must be less than"):
        fl.maximize(budget=20, optimizer="LazyGreedy", show_progress=False)
    rows, _ = released_selection(proxies_of(stats), stats.labels.numpy(), [28, 28, 28])  # classes 0-2
    assert sel.indices[:84].tolist() == stats.indices[torch.from_numpy(rows)].tolist()


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(1, 80), min_size=1, max_size=12), data=st.data())
def test_reference_equal_is_the_released_formula_capped(sizes, data):
    budget = data.draw(st.integers(0, sum(sizes)))
    got = split_budget(sizes, budget, "reference_equal").tolist()
    assert got == [min(b, n) for b, n in zip(released_budgets(sizes, budget, equal_num=True), sizes)]


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 80), min_size=1, max_size=12), data=st.data(), seed=st.integers(0, 2**31))
def test_reference_proportional_rounds_up_then_removes_single_picks(sizes, data, seed):
    if sum(sizes) == 0:
        return
    budget = data.draw(st.integers(0, sum(sizes)))
    got = split_budget(sizes, budget, "reference_proportional",
                       generator=torch.Generator().manual_seed(seed)).tolist()
    ceiled = released_budgets(sizes, budget, equal_num=False)
    assert sum(got) == budget
    assert all(c - g in (0, 1) and g >= 0 for c, g in zip(ceiled, got))
    assert all(g <= n for g, n in zip(got, sizes))


def test_reference_proportional_draws_its_decrements_uniformly():
    """The released loop takes `excess` distinct classes uniformly among those with a positive
    budget; over many seeded draws every such class loses a pick about equally often."""
    draws = 3000
    for sizes, budget, ceiled, excess in (([10] * 6, 21, [4] * 6, 3),        # 3.5 each -> 4; 24 - 21
                                          ([6, 6, 12], 11, [3, 3, 6], 1)):    # 2.75, 2.75, 5.5
        assert released_budgets(sizes, budget, equal_num=False) == ceiled
        removed = np.zeros(len(sizes))
        for seed in range(draws):
            got = split_budget(sizes, budget, "reference_proportional", generator=cpu_generator(seed, 0, "t"))
            removed += np.array(ceiled) - got.numpy()
        assert removed.sum() == excess * draws
        p = excess / len(sizes)
        assert np.all(np.abs(removed - p * draws) < 5 * math.sqrt(draws * p * (1 - p)))


def test_reference_proportional_needs_a_generator():
    with pytest.raises(ValueError, match="generator"):
        split_budget([5, 5], 3, "reference_proportional")


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "stochastic"}, r"method='stochastic' conflicts with preset='reference'"),
    ({"similarity": "craig"}, r"similarity='craig' conflicts"),
    ({"weights": "unit"}, r"weights='unit' conflicts"),
    ({"proxy": "last_layer"}, r"proxy='last_layer' conflicts"),
    ({"eps": 0.1}, r"eps is stochastic greedy's parameter"),
    ({"budget_split": "proportional"}, r"budget_split must be one of \('reference_equal'"),
    ({"preset": "paper"}, r"preset must be one of"),
])
def test_preset_conflicts_are_named(kwargs, message):
    kwargs = {"preset": "reference", **kwargs}
    with pytest.raises(ValueError, match=message):
        CoresetSelector(0.1, **kwargs)


def test_released_rules_need_the_reference_preset():
    with pytest.raises(ValueError, match="need preset='reference'"):
        CoresetSelector(0.1, budget_split="reference_equal")
    assert CoresetSelector(0.1, preset="reference", method="lazy").greedy == "lazy"
