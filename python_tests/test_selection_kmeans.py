"""Batched 2-means against the exhaustive optimum and scikit-learn; the slow-learnable
selector against a per-class float64 reference."""
import itertools

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from augcore.selection import InferenceStats, SlowLearnableSelector, batched_kmeans, random_stats


def exhaustive_two_means(x: torch.Tensor):
    """(optimal inertia, one optimal 0/1 labelling) over all splits into two non-empty clusters."""
    x = x.double()
    n = x.shape[0]
    best = (float("inf"), None)
    for bits in itertools.product([0, 1], repeat=n - 1):
        lab = torch.tensor((0,) + bits)
        if lab.sum() == 0:
            continue
        inertia = sum(float(((x[lab == k] - x[lab == k].mean(0)) ** 2).sum()) for k in (0, 1))
        if inertia < best[0]:
            best = (inertia, lab)
    return best


def test_matches_the_exhaustive_optimum_on_small_groups():
    gen = torch.Generator().manual_seed(0)
    for trial in range(12):
        sizes = torch.randint(2, 10, (4,), generator=gen)
        groups = torch.repeat_interleave(torch.arange(4), sizes)
        groups = groups[torch.randperm(groups.numel(), generator=gen)]
        x = torch.randn(groups.numel(), 3, generator=gen)
        result = batched_kmeans(x, groups, restarts=20, generator=torch.Generator().manual_seed(trial))
        for g in range(4):
            optimum, _ = exhaustive_two_means(x[groups == g])
            assert float(result.inertia[g]) == pytest.approx(optimum, rel=1e-9, abs=1e-12)
            assert result.counts[g].tolist() == torch.bincount(result.labels[groups == g], minlength=2).tolist()


def test_result_is_a_lloyd_fixed_point():
    stats = random_stats(900, 6, seed=1, balanced=False)
    x = torch.softmax(stats.logits.double(), 1)
    result = batched_kmeans(x, stats.labels, generator=torch.Generator().manual_seed(0))
    for g in range(6):
        members, lab = x[stats.labels == g], result.labels[stats.labels == g]
        centres = torch.stack([members[lab == k].mean(0) for k in (0, 1)])
        torch.testing.assert_close(result.centers[g], centres, rtol=1e-10, atol=1e-12)
        d = torch.cdist(members, centres) ** 2
        assert torch.equal(lab, d.argmin(1))
        assert float(result.inertia[g]) == pytest.approx(float(d.min(1).values.sum()), rel=1e-10)


def _mixture(groups: int, per_group: int, dim: int, seed: int):
    rng = np.random.default_rng(seed)
    xs, gs = [], []
    for g in range(groups):
        centres = rng.normal(size=(2, dim)) * 3
        share = rng.uniform(0.2, 0.8)
        pick = (rng.uniform(size=per_group) < share).astype(int)
        xs.append(centres[pick] + rng.normal(size=(per_group, dim)) * (0.3 + g * 0.1))
        gs.append(np.full(per_group, g))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(gs))


@pytest.mark.parametrize("dim", [2, 10, 64])
def test_same_inertia_as_scikit_learn(dim):
    x, groups = _mixture(5, 400, dim, seed=dim)
    result = batched_kmeans(x, groups, restarts=10, generator=torch.Generator().manual_seed(0))
    for g in range(5):
        km = KMeans(n_clusters=2, n_init=10, random_state=0).fit(x[groups == g].numpy())
        assert float(result.inertia[g]) == pytest.approx(km.inertia_, rel=1e-6)


def test_batched_kmeans_is_deterministic_and_validates():
    x, groups = _mixture(3, 100, 4, seed=1)
    a = batched_kmeans(x, groups, generator=torch.Generator().manual_seed(5))
    b = batched_kmeans(x, groups, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.labels, b.labels) and torch.equal(a.inertia, b.inertia)
    with pytest.raises(ValueError, match="groups: expected shape"):
        batched_kmeans(x, groups[:-1])
    with pytest.raises(ValueError, match="restarts"):
        batched_kmeans(x, groups, restarts=0)


def reference_slow_learnable(stats: InferenceStats, features: str):
    """Per class: the exhaustive 2-means optimum, then the cluster with higher mean loss."""
    if features == "probs":
        x = torch.softmax(stats.logits.double(), 1)
    else:
        x = (stats.logits if features == "logits" else stats.embeddings).double()
    selected = []
    for c in range(stats.num_classes):
        members = (stats.labels == c).nonzero().flatten()
        _, lab = exhaustive_two_means(x[members])
        losses = stats.losses.double()[members]
        slow = int(losses[lab == 1].mean() > losses[lab == 0].mean())
        selected += members[lab == slow].tolist()
    return sorted(selected)


@pytest.mark.parametrize("features", ["probs", "logits", "embeddings"])
def test_slow_learnable_matches_the_exhaustive_reference(features):
    stats = random_stats(44, 5, embedding_dim=6, seed=3)
    perm_indices = torch.randperm(1000, generator=torch.Generator().manual_seed(1))[:44]
    stats = InferenceStats(stats.logits, stats.labels, stats.losses, perm_indices, stats.embeddings)
    sel = SlowLearnableSelector(features=features, restarts=20).select(stats, seed=2)
    expected_rows = reference_slow_learnable(stats, features)
    assert sel.indices.tolist() == perm_indices[expected_rows].tolist()
    assert sel.info["fraction"] == len(expected_rows) / 44
    assert sel.budgets.tolist() == torch.bincount(stats.labels[expected_rows], minlength=5).tolist()
    assert sel.method == "slow_learnable" and torch.equal(sel.weights, torch.ones(len(expected_rows)))
    assert sel.info["unsplit_classes"] == []


def test_slow_learnable_selects_the_hard_mode_at_scale():
    stats = random_stats(3000, 10, seed=4)
    sel = SlowLearnableSelector().select(stats)
    chosen = torch.zeros(3000, dtype=torch.bool)
    chosen[sel.indices] = True
    # the selected cluster holds the high-loss examples of each class
    for c in range(10):
        in_class = stats.labels == c
        assert stats.losses[chosen & in_class].mean() > 2 * stats.losses[~chosen & in_class].mean()
    assert 0.1 < sel.info["fraction"] < 0.6
    again = SlowLearnableSelector().select(stats)
    assert torch.equal(sel.indices, again.indices)


def test_a_class_whose_outputs_coincide_is_not_split():
    stats = random_stats(60, 3, seed=5)
    logits = stats.logits.clone()
    logits[stats.labels == 1] = torch.tensor([0.0, 5.0, 0.0])
    losses = torch.nn.functional.cross_entropy(logits, stats.labels, reduction="none")
    sel = SlowLearnableSelector().select(InferenceStats(logits, stats.labels, losses, stats.indices))
    assert sel.info["unsplit_classes"] == [1]
    assert int(sel.budgets[1]) == 0 and int(sel.budgets[0]) > 0


def test_slow_learnable_errors():
    with pytest.raises(ValueError, match="features must be one of"):
        SlowLearnableSelector(features="gradients")
    with pytest.raises(ValueError, match="restarts"):
        SlowLearnableSelector(restarts=0)
    stats = random_stats(30, 3)
    with pytest.raises(ValueError, match="needs stats.embeddings"):
        SlowLearnableSelector(features="embeddings").select(stats)
