"""Random, max-loss, high-loss and misclassified selectors against brute-force references."""
import math

import pytest
import torch

from augcore.ops.budgets import split_budget
from augcore.selection import (HighLossSelector, InferenceStats, MaxLossSelector, MisclassifiedSelector,
                               RandomSelector, budget_from_fraction, random_stats)


def permuted(stats: InferenceStats, seed: int = 0) -> InferenceStats:
    """The same stats but rows standing for scattered dataset indices (as from a Subset)."""
    gen = torch.Generator().manual_seed(seed)
    indices = torch.randperm(10 * len(stats), generator=gen)[: len(stats)]
    return InferenceStats(stats.logits, stats.labels, stats.losses, indices, stats.embeddings)


def with_ties(stats: InferenceStats) -> InferenceStats:
    """Losses quantised so that many are exactly equal: exercises the tie rule."""
    losses = (stats.losses * 4).round() / 4
    return InferenceStats(stats.logits, stats.labels, losses, stats.indices, stats.embeddings)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.37, 1.0])
def test_max_loss_is_global_top_k_with_ties_to_smaller_row(fraction):
    stats = permuted(with_ties(random_stats(503, 7, seed=1)))
    sel = MaxLossSelector(fraction).select(stats)
    n = len(stats)
    k = math.floor(fraction * n + 0.5)
    losses = stats.losses.double().tolist()
    expected_rows = sorted(range(n), key=lambda i: (-losses[i], i))[:k]
    assert sel.indices.tolist() == [int(stats.indices[i]) for i in expected_rows]
    assert sel.weights.dtype == torch.float32 and torch.equal(sel.weights, torch.ones(k))
    assert sel.method == "max_loss" and sel.info["fraction"] == k / n
    assert sel.budgets.tolist() == torch.bincount(stats.labels[expected_rows], minlength=7).tolist()


@pytest.mark.parametrize("fraction", [0.05, 0.3, 1.0])
def test_high_loss_is_per_class_top_loss(fraction):
    stats = permuted(with_ties(random_stats(411, 6, seed=2, balanced=False)))
    sel = HighLossSelector(fraction).select(stats)
    n, k = len(stats), budget_from_fraction(fraction, len(stats))
    sizes = torch.bincount(stats.labels, minlength=6)
    budgets = sel.budgets
    assert int(budgets.sum()) == k
    assert all(abs(int(b) - k * int(s) / n) < 1 for b, s in zip(budgets, sizes))
    losses, labels = stats.losses.double().tolist(), stats.labels.tolist()
    expected = []
    for c in range(6):
        members = sorted((i for i in range(n) if labels[i] == c), key=lambda i: (-losses[i], i))
        expected += members[: int(budgets[c])]
    assert sel.indices.tolist() == [int(stats.indices[i]) for i in expected]
    assert torch.equal(sel.weights, torch.ones(k))


def test_misclassified_matches_a_loop_over_rows():
    stats = permuted(random_stats(600, 5, seed=3))
    logits = stats.logits.double().tolist()
    expected = [i for i, row in enumerate(logits)
                if max(range(5), key=lambda c: (row[c], -c)) != int(stats.labels[i])]
    sel = MisclassifiedSelector().select(stats)
    assert sel.indices.tolist() == [int(stats.indices[i]) for i in expected]
    assert sel.info["fraction"] == len(expected) / 600 and 0 < len(expected) < 600
    assert sel.method == "misclassified" and sel.weights.dtype == torch.float32


def test_random_inclusion_is_uniform_and_reproducible():
    stats = permuted(random_stats(50, 3, seed=4))
    selector = RandomSelector(0.2)
    draws = 1000
    counts = torch.zeros(len(stats))
    row_of = {int(d): r for r, d in enumerate(stats.indices)}
    for epoch in range(draws):
        sel = selector.select(stats, epoch=epoch, seed=7)
        rows = torch.tensor([row_of[int(i)] for i in sel.indices])
        assert rows.unique().numel() == 10 == len(sel)
        counts[rows] += 1
    # each row's inclusion count is Binomial(draws, 0.2): mean 200, sd 12.6
    mean, sd = draws * 0.2, math.sqrt(draws * 0.2 * 0.8)
    assert float((counts - mean).abs().max()) < 5 * sd
    first, again = selector.select(stats, epoch=3, seed=7), selector.select(stats, epoch=3, seed=7)
    assert torch.equal(first.indices, again.indices)
    assert not torch.equal(first.indices, selector.select(stats, epoch=3, seed=8).indices)
    rows = torch.tensor([row_of[int(i)] for i in first.indices])
    assert torch.equal(rows, rows.sort().values)  # in the order of the stats rows


def test_stratified_random_gives_each_class_its_proportional_share_uniformly():
    stats = random_stats(90, 4, seed=5, balanced=False)
    sizes = torch.bincount(stats.labels, minlength=4)
    expected_budgets = split_budget(sizes, budget_from_fraction(0.25, 90), "proportional")
    counts = torch.zeros(90)
    draws = 800
    selector = RandomSelector(0.25, stratified=True)
    for epoch in range(draws):
        sel = selector.select(stats, epoch=epoch)
        assert torch.bincount(stats.labels[sel.indices], minlength=4).tolist() == expected_budgets.tolist()
        counts[sel.indices] += 1
    for c in range(4):
        p = float(expected_budgets[c]) / float(sizes[c])
        members = counts[stats.labels == c]
        assert float((members - draws * p).abs().max()) < 5 * math.sqrt(draws * p * (1 - p)) + 1


def test_budget_rounding_is_half_up_and_clamped():
    assert budget_from_fraction(0.5, 5) == 3          # 2.5 -> 3 (Python's round would give 2)
    assert budget_from_fraction(0.5, 7) == 4          # 3.5 -> 4
    assert budget_from_fraction(0.1, 50000) == 5000
    assert budget_from_fraction(0.01, 10) == 0        # a tiny fraction of a tiny set selects nothing
    assert budget_from_fraction(1.0, 13) == 13
    assert len(MaxLossSelector(0.01).select(random_stats(10, 2))) == 0


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_fraction_outside_unit_interval_is_rejected(bad):
    for cls in (RandomSelector, MaxLossSelector, HighLossSelector):
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            cls(bad)
    with pytest.raises(TypeError, match="fraction"):
        MaxLossSelector(True)


def test_bad_stats_are_rejected_with_the_reason():
    stats = random_stats(40, 4)
    short = InferenceStats(stats.logits, stats.labels, stats.losses[:-1], stats.indices)
    with pytest.raises(ValueError, match="mismatched lengths"):
        MaxLossSelector(0.5).select(short)
    losses = stats.losses.clone()
    losses[7] = float("nan")
    nan_message = r"stats.losses contains 1 non-finite value\(s\) \(NaN\), first at index \(7,\)"
    with pytest.raises(ValueError, match=nan_message):
        RandomSelector(0.5).select(InferenceStats(stats.logits, stats.labels, losses, stats.indices))
    labels = stats.labels.clone()
    labels[0] = 4
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        MisclassifiedSelector().select(InferenceStats(stats.logits, labels, stats.losses, stats.indices))
    missing_class = InferenceStats(stats.logits[stats.labels != 2], stats.labels[stats.labels != 2],
                                   stats.losses[stats.labels != 2], stats.indices[stats.labels != 2])
    with pytest.raises(ValueError, match=r"classes \[2\] have no examples"):
        HighLossSelector(0.5).select(missing_class)
    with pytest.raises(ValueError, match=r"classes \[2\] have no examples"):
        RandomSelector(0.5, stratified=True).select(missing_class)
    assert len(RandomSelector(0.5).select(missing_class)) == budget_from_fraction(0.5, len(missing_class))
    elsewhere = InferenceStats(stats.logits, stats.labels, stats.losses, stats.indices.to("meta"))
    with pytest.raises(ValueError, match="different devices"):
        MaxLossSelector(0.5).select(elsewhere)
    with pytest.raises(TypeError, match="stats.labels: expected an integer dtype"):
        MaxLossSelector(0.5).select(InferenceStats(stats.logits, stats.labels.float(), stats.losses, stats.indices))
    with pytest.raises(ValueError, match="seed must be >= 0"):
        RandomSelector(0.5).select(stats, seed=-1)
