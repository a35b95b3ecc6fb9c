"""The coreset selector against a direct float64 computation: per class, the float64
similarity matrix and augcore.ops.reference.reference_greedy."""
import math

import pytest
import torch

from augcore.ops.budgets import split_budget
from augcore.ops.reference import (gradient_dim, reference_grad_proxies, reference_greedy, reference_similarity,
                                   reference_sqdist)
from augcore.selection import CoresetSelector, InferenceStats, derive_seed, random_stats


def reference_coreset(stats: InferenceStats, fraction: float, *, proxy="logits", bias=1, similarity="exp",
                      method="stochastic", eps=0.01, budget_split="proportional", seed=0, epoch=0):
    """(rows in greedy order grouped by class, gamma, assignment rows) computed class by class."""
    n, c = len(stats), stats.num_classes
    errors = reference_grad_proxies(stats.logits, stats.labels)[0]
    budgets = split_budget(torch.bincount(stats.labels, minlength=c), math.floor(fraction * n + 0.5), budget_split)
    greedy_seed = derive_seed(seed, epoch, "coreset")
    rows, gamma, assignment = [], [], torch.full((n,), -1, dtype=torch.int64)
    for cls in range(c):
        members = (stats.labels == cls).nonzero().flatten()
        emb = stats.embeddings[members].double() if proxy == "last_layer" else None
        sim = reference_similarity(reference_sqdist(errors[members], emb, bias), similarity,
                                   gradient_dim(errors, emb, bias))
        picked, _, assign, _ = reference_greedy(sim, int(budgets[cls]), method, eps, greedy_seed, group=cls)
        rows += members[picked].tolist()
        gamma += [int((assign == p).sum()) for p in picked]
        if picked:
            assignment[members] = members[assign]
    return rows, torch.tensor(gamma, dtype=torch.float64), assignment, budgets


def scattered(stats: InferenceStats) -> InferenceStats:
    indices = torch.randperm(5 * len(stats), generator=torch.Generator().manual_seed(0))[: len(stats)]
    return InferenceStats(stats.logits, stats.labels, stats.losses, indices, stats.embeddings)


def check_against_reference(stats, selector_kwargs, fraction, seed=0, epoch=0):
    sel = CoresetSelector(fraction, **selector_kwargs).select(stats, epoch=epoch, seed=seed)
    rows, gamma, assignment, budgets = reference_coreset(
        stats, fraction, seed=seed, epoch=epoch,
        **{k: v for k, v in selector_kwargs.items() if k not in ("weights", "keep_zero_weight")})
    assert sel.indices.tolist() == stats.indices[rows].tolist()
    expected_assignment = torch.where(assignment >= 0, stats.indices[assignment.clamp_min(0)], assignment)
    assert torch.equal(sel.assignment, expected_assignment)
    assert sel.info["requested_budgets"] == budgets.tolist()
    assert torch.equal(sel.info["gamma"].double(), gamma)
    return sel, gamma


@pytest.mark.parametrize("method", ["naive", "lazy", "stochastic"])
@pytest.mark.parametrize("similarity", ["exp", "craig"])
def test_medoids_assignment_and_weights_match_the_float64_reference(method, similarity):
    stats = scattered(random_stats(240, 4, seed=11, balanced=False))
    sel, gamma = check_against_reference(stats, {"method": method, "similarity": similarity}, 0.15, seed=3, epoch=2)
    # the reference's normalisation: zero counts -> 1, then mean 1 over the whole selection
    g = torch.where(gamma == 0, torch.ones_like(gamma), gamma)
    torch.testing.assert_close(sel.weights, (g / g.sum() * g.numel()).float())
    assert sel.weights.dtype == torch.float32 and sel.method == "coreset"
    assert sel.info["fraction"] == len(sel) / 240 and len(sel) == math.floor(0.15 * 240 + 0.5)
    assert int(gamma.sum()) == 240  # every point is represented once


@pytest.mark.parametrize("bias", [0, 1])
def test_last_layer_proxy_matches_explicit_gradients(bias):
    stats = scattered(random_stats(150, 3, embedding_dim=5, seed=12))
    check_against_reference(stats, {"proxy": "last_layer", "bias": bias, "method": "lazy"}, 0.2)


@pytest.mark.parametrize("split", ["proportional", "equal", "equal_ceil"])
def test_budget_splits(split):
    stats = random_stats(203, 5, seed=13, balanced=False)
    sel, _ = check_against_reference(stats, {"budget_split": split, "method": "lazy"}, 0.1)
    assert sel.budgets.tolist() == sel.info["requested_budgets"]
    if split != "equal_ceil":
        assert len(sel) == math.floor(0.1 * 203 + 0.5)


def test_raw_and_unit_weights():
    stats = random_stats(120, 3, seed=14)
    raw = CoresetSelector(0.1, weights="raw", method="lazy").select(stats)
    unit = CoresetSelector(0.1, weights="unit", method="lazy").select(stats)
    assert torch.equal(raw.indices, unit.indices)
    assert torch.equal(raw.weights, raw.info["gamma"].float()) and float(raw.weights.sum()) == 120
    assert torch.equal(unit.weights, torch.ones(len(unit)))


def test_zero_weight_medoids_are_kept_or_dropped():
    # three distinct points per class, each present twice: a full budget must pick duplicates,
    # which represent nobody (their twin was picked first)
    base = random_stats(6, 2, seed=15)
    stats = InferenceStats(base.logits.repeat(2, 1), base.labels.repeat(2), base.losses.repeat(2),
                           torch.arange(12) + 100)
    kept = CoresetSelector(1.0, method="naive").select(stats)
    dropped = CoresetSelector(1.0, method="naive", keep_zero_weight=False).select(stats)
    rows, gamma, _, _ = reference_coreset(stats, 1.0, method="naive")
    assert kept.indices.tolist() == (torch.tensor(rows) + 100).tolist()
    assert int((gamma == 0).sum()) == 6 and dropped.info["dropped_zero_weight"] == 6
    assert dropped.indices.tolist() == [r + 100 for r, g in zip(rows, gamma.tolist()) if g > 0]
    torch.testing.assert_close(dropped.weights, torch.ones(6))  # each kept medoid stands for 2 of 12 points
    assert int(dropped.budgets.sum()) == 6 and sum(kept.info["requested_budgets"]) == 12
    # zero counts count as 1 in the reference's normalisation
    g = torch.where(gamma == 0, torch.ones_like(gamma), gamma)
    torch.testing.assert_close(kept.weights, (g / g.sum() * 12).float())


def test_reselection_is_reproducible_and_epoch_dependent():
    stats = random_stats(400, 4, seed=16)
    selector = CoresetSelector(0.1)
    a, b = selector.select(stats, epoch=1, seed=5), selector.select(stats, epoch=1, seed=5)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.weights, b.weights)
    c = selector.select(stats, epoch=2, seed=5)
    assert not torch.equal(a.indices, c.indices)


def test_coreset_errors():
    for kwargs, match in (({"proxy": "gradients"}, "proxy must be one of"), ({"similarity": "cos"}, "similarity"),
                          ({"method": "greedy"}, "method"), ({"budget_split": "equal_floor"}, "budget_split"),
                          ({"weights": "sqrt"}, "weights"), ({"bias": 2}, "bias"), ({"eps": 0.0}, "eps")):
        with pytest.raises(ValueError, match=match):
            CoresetSelector(0.1, **kwargs)
    with pytest.raises(ValueError, match=r"fraction.*1\.01"):
        CoresetSelector(1.01)
    stats = random_stats(50, 5)
    with pytest.raises(ValueError, match="needs stats.embeddings"):
        CoresetSelector(0.1, proxy="last_layer").select(stats)
    keep = stats.labels != 4
    with pytest.raises(ValueError, match=r"classes \[4\] have no examples"):
        CoresetSelector(0.1).select(InferenceStats(stats.logits[keep], stats.labels[keep], stats.losses[keep],
                                                   stats.indices[keep]))
