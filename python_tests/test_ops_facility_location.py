"""Segmented facility location against float64 references, brute force and peer libraries."""
import itertools
import math

import numpy as np
import pytest
import torch

import augcore
from augcore.ops.reference import (facility_location_value, reference_greedy, reference_similarity,
                                   reference_sqdist)


def _problem(n, d, groups, seed, h=None, spread=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) * spread
    labels = torch.randint(0, groups, (n,), generator=g)
    emb = None if h is None else torch.randn(n, h, generator=g)
    return x, labels, emb


def _reference(x, labels, emb, result, similarity, method, eps, seed, bias=1):
    """Per group: the float64 greedy on the float64 similarity matrix."""
    dim = x.shape[1] if emb is None else x.shape[1] * (emb.shape[1] + bias)
    picks, gains, objective, assignment = [], [], [], torch.full((x.shape[0],), -1)
    for g in range(result.budgets.numel()):
        members = (labels == g).nonzero().flatten()
        k = int(result.budgets[g])
        if members.numel() == 0:
            objective.append(0.0)
            continue
        sim = reference_similarity(reference_sqdist(x[members], None if emb is None else emb[members], bias),
                                   similarity, dim)
        sel, gain, assign, obj = reference_greedy(sim, k, "naive" if method == "lazy" else method, eps, seed, g)
        picks += members[sel].tolist()
        gains += gain
        objective.append(obj)
        if k:
            assignment[members] = members[assign]
    return picks, gains, objective, assignment


CASES = [  # n, d, groups, budget
    (1, 3, 1, 1), (5, 2, 1, 5), (40, 4, 1, 7), (120, 10, 3, 30), (300, 10, 10, 45), (257, 3, 2, 100),
]


@pytest.mark.parametrize("n,d,groups,budget", CASES)
@pytest.mark.parametrize("method", ["naive", "lazy", "stochastic"])
@pytest.mark.parametrize("similarity", ["exp", "craig", "craig_squared"])
@pytest.mark.parametrize("mode", ["dense", "on_the_fly"])
def test_matches_float64_reference(n, d, groups, budget, method, similarity, mode):
    x, labels, _ = _problem(n, d, groups, seed=n * 7 + d)
    res = augcore.facility_location(x, budget, labels, method=method, similarity=similarity, mode=mode,
                                    seed=11, eps=0.05, num_groups=groups)
    picks, gains, objective, assignment = _reference(x, labels, None, res, similarity, method, 0.05, 11)
    assert res.indices.tolist() == picks
    torch.testing.assert_close(res.gains, torch.tensor(gains, dtype=torch.float64), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(res.objective, torch.tensor(objective, dtype=torch.float64), rtol=1e-5, atol=1e-4)
    assert torch.equal(res.assignment, assignment)


@pytest.mark.parametrize("bias", [0, 1])
@pytest.mark.parametrize("method", ["lazy", "stochastic"])
def test_exact_last_layer_mode_matches_reference(bias, method):
    x, labels, emb = _problem(150, 5, 3, seed=3, h=8)
    e = augcore.grad_proxies(x, labels).errors
    res = augcore.facility_location(e, 30, labels, embeddings=emb, bias=bias, method=method, seed=5)
    picks, gains, _, _ = _reference(e, labels, emb, res, "exp", method, 0.01, 5, bias=bias)
    assert res.indices.tolist() == picks
    torch.testing.assert_close(res.gains, torch.tensor(gains, dtype=torch.float64), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_naive_lazy_dense_and_on_the_fly_agree_exactly(seed):
    x, labels, emb = _problem(1500, 6, 2, seed=seed, h=4 if seed % 2 else None)
    runs = [augcore.facility_location(x, 200, labels, embeddings=emb, method=m, mode=mode, seed=seed)
            for m in ("naive", "lazy") for mode in ("dense", "on_the_fly")]
    for other in runs[1:]:
        assert torch.equal(other.indices, runs[0].indices)
        assert torch.equal(other.gains, runs[0].gains)
        assert torch.equal(other.assignment, runs[0].assignment)
    stochastic = [augcore.facility_location(x, 200, labels, embeddings=emb, mode=mode, seed=seed)
                  for mode in ("dense", "on_the_fly")]
    assert torch.equal(stochastic[0].indices, stochastic[1].indices)


def test_stochastic_approximation_guarantee():
    ratios = []
    eps = 0.1
    for trial in range(12):
        x, labels, _ = _problem(400, 5, 2, seed=100 + trial, spread=0.7)
        greedy = augcore.facility_location(x, 40, labels, method="lazy")
        stoch = augcore.facility_location(x, 40, labels, method="stochastic", eps=eps, seed=trial)
        ratio = float(stoch.objective.sum() / greedy.objective.sum())
        assert ratio >= 1 - 1 / math.e - eps
        ratios.append(ratio)
    assert np.mean(ratios) >= 0.99


@pytest.mark.parametrize("seed", range(6))
def test_greedy_within_1_minus_1_over_e_of_brute_force(seed):
    x, _, _ = _problem(10, 2, 1, seed=seed, spread=2.0)
    sim = reference_similarity(reference_sqdist(x), "craig", 1.0)
    for k in (1, 2, 3, 4):
        best = max(facility_location_value(sim, s) for s in itertools.combinations(range(10), k))
        res = augcore.facility_location(x, k, similarity="craig", method="naive")
        value = facility_location_value(sim, res.indices.tolist())
        assert value >= (1 - 1 / math.e) * best - 1e-9
        assert value <= best + 1e-4
        if k == 1:  # one pick: greedy is exact
            assert value == pytest.approx(best, rel=1e-5)


def test_weights_assignment_and_budgets_are_consistent():
    x, labels, _ = _problem(500, 4, 5, seed=9)
    res = augcore.facility_location(x, 77, labels, num_groups=6)  # group 5 is empty
    assert int(res.budgets.sum()) == 77 and res.budgets[5] == 0
    assert torch.equal(res.budgets, augcore.split_budget(torch.bincount(labels, minlength=6), 77))
    for g in range(6):
        sel = res.indices[res.group_ptr[g]:res.group_ptr[g + 1]]
        assert sel.numel() == res.budgets[g]
        assert torch.all(labels[sel] == g)
        assert int(res.weights[res.group_ptr[g]:res.group_ptr[g + 1]].sum()) == int((labels == g).sum())
    # gamma_j = how many points are assigned to pick j; every pick is its own medoid
    counts = torch.bincount(res.assignment, minlength=500)
    assert torch.equal(res.weights, counts[res.indices])
    assert torch.equal(res.assignment[res.indices], res.indices)
    assert torch.equal(labels[res.assignment], labels)


def test_duplicates_ties_and_k_equal_n():
    x = torch.zeros(6, 3)  # all identical: every gain after the first is 0, ties go to the smaller index
    res = augcore.facility_location(x, 6, method="lazy")
    assert res.indices.tolist() == [0, 1, 2, 3, 4, 5]
    assert res.gains.tolist() == [6.0, 0, 0, 0, 0, 0]
    assert res.weights.tolist() == [6, 0, 0, 0, 0, 0]  # ties go to the earlier pick
    assert torch.all(res.assignment == 0)
    weights = augcore.normalize_weights(res.weights)  # the reference: zeros -> 1, then mean 1
    torch.testing.assert_close(weights, torch.tensor([6.0, 1, 1, 1, 1, 1]) / 11 * 6)


def test_precomputed_similarity_uses_columns():
    g = torch.Generator().manual_seed(0)
    sim = torch.rand(30, 30, generator=g, dtype=torch.float64)  # asymmetric: s_ij != s_ji
    labels = torch.arange(30) % 2
    res = augcore.facility_location(None, 8, labels, similarity=sim, method="naive")
    picks = []
    for grp in range(2):
        members = (labels == grp).nonzero().flatten()
        sel, _, _, _ = reference_greedy(sim[members][:, members], int(res.budgets[grp]))
        picks += members[sel].tolist()
    assert res.indices.tolist() == picks


def test_seeded_determinism_and_seed_matters():
    x, labels, _ = _problem(800, 5, 4, seed=2)
    a = augcore.facility_location(x, 80, labels, seed=1)
    b = augcore.facility_location(x, 80, labels, seed=1)
    c = augcore.facility_location(x, 80, labels, seed=2)
    assert torch.equal(a.indices, b.indices)
    assert not torch.equal(a.indices, c.indices)


def test_inputs_from_numpy_and_non_contiguous():
    x, labels, _ = _problem(200, 6, 3, seed=4)
    ref = augcore.facility_location(x, 20, labels)
    assert torch.equal(augcore.facility_location(x.numpy(), 20, labels.numpy()).indices, ref.indices)
    assert torch.equal(augcore.facility_location(x.t().contiguous().t(), 20, labels).indices, ref.indices)
    doubled = torch.stack([x, x], 1)[:, 0]  # a strided view
    assert torch.equal(augcore.facility_location(doubled, 20, labels).indices, ref.indices)


@pytest.mark.parametrize("kwargs,match", [
    (dict(budget=-1), "out of range"),
    (dict(budget=201), "out of range"),
    (dict(budget=2.5), "integer"),
    (dict(eps=0.0), "eps"),
    (dict(eps=1.0), "eps"),
    (dict(method="greedy"), "method"),
    (dict(mode="sparse"), "mode"),
    (dict(similarity="cosine"), "similarity"),
    (dict(budget_split="weird"), "budget_split"),
    (dict(bias=2), "bias"),
    (dict(groups=torch.full((200,), 3), num_groups=2), "out of range"),
    (dict(groups=torch.zeros(10, dtype=torch.long)), r"shape \(200,\)"),
    (dict(budget=[1, 2]), "entries"),
])
def test_bad_arguments(kwargs, match):
    x = torch.randn(200, 3)
    args = dict(budget=10)
    args.update(kwargs)
    budget = args.pop("budget")
    with pytest.raises((ValueError, TypeError), match=match):
        augcore.facility_location(x, budget, **args)


def test_bad_points_and_similarity():
    with pytest.raises(ValueError, match="non-finite"):
        augcore.facility_location(torch.tensor([[0.0], [float("nan")]]), 1)
    with pytest.raises(ValueError, match="non-negative"):
        augcore.facility_location(None, 1, similarity=-torch.ones(3, 3))
    with pytest.raises(ValueError, match="square"):
        augcore.facility_location(None, 1, similarity=torch.ones(3, 4))
    with pytest.raises(ValueError, match="proxies are required"):
        augcore.facility_location(None, 1)


def test_peer_submodlib_exact_greedy():
    """Same objective and picks as submodlib's dense facility location on tie-free data.

    submodlib accumulates in float32: with spread-out points its near-ties are far
    above that noise (on tightly packed points it can flip a near-tie where we agree
    with the float64 reference).
    """
    submodlib = pytest.importorskip("submodlib")
    x, _, _ = _problem(120, 10, 1, seed=21, spread=3.0)
    res = augcore.facility_location(x, 15, method="lazy")
    # submodlib's "euclidean" dense kernel: exp(-d / num_features), our "exp" similarity
    sim = submodlib.helper.create_kernel(x.double().numpy(), metric="euclidean", mode="dense")
    for optimizer in ("NaiveGreedy", "LazyGreedy"):
        fl = submodlib.FacilityLocationFunction(n=120, mode="dense", sijs=sim, separate_rep=False)
        picked = fl.maximize(budget=15, optimizer=optimizer, show_progress=False)
        assert [int(i) for i, _ in picked] == res.indices.tolist()
        np.testing.assert_allclose([gain for _, gain in picked], res.gains.numpy(), rtol=1e-4)


def test_peer_apricot_exact_greedy():
    apricot = pytest.importorskip("apricot")
    x, _, _ = _problem(100, 4, 1, seed=22)
    sim = reference_similarity(reference_sqdist(x), "exp", 4).numpy()
    res = augcore.facility_location(None, 12, similarity=torch.from_numpy(sim), method="naive")
    selector = apricot.FacilityLocationSelection(12, metric="precomputed", optimizer="naive").fit(sim)
    assert selector.ranking.tolist() == res.indices.tolist()
    np.testing.assert_allclose(selector.gains, res.gains.numpy(), rtol=1e-5)


@pytest.mark.parametrize("method", ["naive", "lazy", "stochastic"])
def test_craig_squared_and_apricot_ties_agree_across_storage(method):
    """craig_squared sums each d^2 in float64 in both storage modes: identical picks;
    tie_break="apricot" differs from "low" only in lazy's queue (naive and stochastic are "low")."""
    x, labels, _ = _problem(900, 4, 2, seed=21)
    x = torch.repeat_interleave(x, 2, dim=0)  # duplicated points: exact ties at every step
    labels = torch.repeat_interleave(labels, 2)
    runs = {(tie, mode): augcore.facility_location(x, 300, labels, similarity="craig_squared", method=method,
                                                   tie_break=tie, mode=mode, seed=3)
            for tie in ("low", "apricot") for mode in ("dense", "on_the_fly")}
    for tie in ("low", "apricot"):
        assert torch.equal(runs[tie, "dense"].indices, runs[tie, "on_the_fly"].indices)
        assert torch.equal(runs[tie, "dense"].gains, runs[tie, "on_the_fly"].gains)
    if method != "lazy":
        assert torch.equal(runs["low", "dense"].indices, runs["apricot", "dense"].indices)
    # either way the gains are the greedy's: the same multiset of values, step by step
    torch.testing.assert_close(runs["low", "dense"].gains, runs["apricot", "dense"].gains, rtol=0, atol=0)


def test_craig_squared_sums_distances_in_float64():
    """Points whose float32 sums of squared differences round differently from the float64
    sums: the similarity is max d^2 - d^2 in float32 with d^2 the float64 sum rounded once."""
    x = torch.from_numpy(np.random.RandomState(0).randn(3, 3).astype(np.float32))

    def similarity(d2):
        return ((d2.max() - d2).float()).double()

    wide = similarity(((x.double()[:, None] - x.double()[None]) ** 2).sum(-1).float())
    narrow = torch.zeros(3, 3)
    for k in range(3):  # float32, in order, as a float32 kernel would sum
        narrow = narrow + (x[:, None, k] - x[None, :, k]) ** 2
    narrow = similarity(narrow)
    assert not torch.equal(wide, narrow)
    res = augcore.facility_location(x, 3, similarity="craig_squared", method="naive")
    picks, gains, _, _ = reference_greedy(wide, 3)
    assert res.indices.tolist() == picks
    np.testing.assert_allclose(res.gains.numpy(), gains, rtol=0, atol=1e-12)
    _, narrow_gains, _, _ = reference_greedy(narrow, 3)
    assert np.abs(res.gains.numpy() - np.array(narrow_gains)).max() > 1e-9
