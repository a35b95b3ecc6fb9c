"""tie_break="high" reproduces submodlib's NaiveGreedy and LazyGreedy on inputs full of exact ties.

The inputs are small integer lattices with duplicate points, so many candidates have
exactly equal gains (duplicates) or gains equal as real numbers (symmetric positions).
Every similarity is >= 2^-10, so each term s - m is a multiple of 2^-34 and submodlib's
double accumulation is exact: its gains are the exact sums, as augcore's fixed-point
gains are, and an exact tie is a tie in both libraries.
"""
import numpy as np
import pytest
import torch

import augcore
from augcore.ops.reference import reference_greedy

submodlib = pytest.importorskip("submodlib")


def _lattice(n, seed, side=3, dim=2):
    rng = np.random.default_rng(seed)
    return rng.integers(0, side, size=(n, dim)).astype(np.float32)


def _similarity(x, scale=2.0):
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    sim = np.exp(-d / scale).astype(np.float32)
    assert sim.min() >= 2.0 ** -10
    return sim


def _submodlib(sim, budget, optimizer):
    fl = submodlib.FacilityLocationFunction(n=sim.shape[0], mode="dense", sijs=sim, separate_rep=False)
    picked = fl.maximize(budget=budget, optimizer=optimizer, show_progress=False)
    return [int(i) for i, _ in picked], [g for _, g in picked]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("method,optimizer", [("naive", "NaiveGreedy"), ("lazy", "LazyGreedy")])
def test_high_tie_break_reproduces_submodlib(seed, method, optimizer):
    n = 25 + 7 * seed
    sim = _similarity(_lattice(n, seed))
    budget = n - 1 - seed  # submodlib needs budget < n
    want_picks, want_gains = _submodlib(sim, budget, optimizer)
    got = augcore.facility_location(None, budget, similarity=torch.from_numpy(sim), method=method, tie_break="high")
    assert got.indices.tolist() == want_picks
    assert got.gains.tolist() == want_gains  # both are the exact sums


@pytest.mark.parametrize("method,optimizer", [("naive", "NaiveGreedy"), ("lazy", "LazyGreedy")])
def test_high_tie_break_per_class_with_unequal_class_sizes(method, optimizer):
    sizes = [9, 31, 17, 40]
    x = np.concatenate([_lattice(s, 100 + g) for g, s in enumerate(sizes)])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    perm = np.random.default_rng(5).permutation(labels.size)  # classes interleaved in the input order
    x, labels = x[perm], labels[perm]
    budgets = [5, 20, 16, 13]
    sim = _similarity(x)
    got = augcore.facility_location(None, budgets, labels, similarity=torch.from_numpy(sim), method=method,
                                    tie_break="high")
    for g in range(len(sizes)):
        members = np.flatnonzero(labels == g)  # the group keeps the input order
        want_picks, want_gains = _submodlib(sim[np.ix_(members, members)], budgets[g], optimizer)
        lo, hi = int(got.group_ptr[g]), int(got.group_ptr[g + 1])
        assert got.indices[lo:hi].tolist() == members[want_picks].tolist()
        assert got.gains[lo:hi].tolist() == want_gains


def test_high_tie_break_from_points_in_every_mode():
    """From points (exp similarity computed by augcore), naive "high" equals the float64
    reference greedy with ties to the larger index, in dense and on-the-fly modes."""
    x = torch.from_numpy(_lattice(60, 7, side=4))
    runs = [augcore.facility_location(x, 30, method=m, mode=mode, tie_break="high")
            for m in ("naive",) for mode in ("dense", "on_the_fly")]
    assert torch.equal(runs[0].indices, runs[1].indices)
    assert torch.equal(runs[0].gains, runs[1].gains)
    # reverse the points: "high" on the reversed problem is "low" on the original, mirrored
    low = augcore.facility_location(x.flip(0), 30, method="naive", tie_break="low")
    assert (59 - low.indices).tolist() == runs[0].indices.tolist()


def test_low_tie_break_is_the_smaller_index_and_lazy_equals_naive():
    x = torch.from_numpy(_lattice(50, 3))
    naive = augcore.facility_location(x, 30, method="naive")
    lazy = augcore.facility_location(x, 30, method="lazy")
    assert torch.equal(naive.indices, lazy.indices) and torch.equal(naive.gains, lazy.gains)
    sim = torch.exp(-torch.cdist(x.double(), x.double()) / 2)
    picks, _, _, _ = reference_greedy(sim, 30)
    # the float64 reference breaks ties to the smaller index; on a lattice its float64
    # ties are the kernel's exact ties, so the picks agree
    assert naive.indices.tolist() == picks


def test_high_tie_break_all_duplicates():
    x = torch.zeros(6, 3)
    naive = augcore.facility_location(x, 5, method="naive", tie_break="high")
    lazy = augcore.facility_location(x, 5, method="lazy", tie_break="high")
    sim = np.ones((6, 6), dtype=np.float32)
    assert naive.indices.tolist() == _submodlib(sim, 5, "NaiveGreedy")[0] == [5, 4, 3, 2, 1]
    # LazyGreedy: after the first pick every stale bound is 6; each is popped, re-evaluated
    # to 0 and pushed back until the last one meets a bound of 0 (the smallest index)
    assert lazy.indices.tolist() == _submodlib(sim, 5, "LazyGreedy")[0] == [5, 0, 4, 3, 2]


def test_tie_break_is_validated():
    with pytest.raises(ValueError, match="tie_break"):
        augcore.facility_location(torch.randn(5, 2), 2, tie_break="random")
    with pytest.raises(ValueError, match="tie_break"):
        augcore.facility_location(torch.randn(5, 2), 2, tie_break=1)
