"""The determinism contract of facility_location (docs/gpu.md, "Determinism").

Gains are exact sums of fixed-point terms, so they do not depend on the order in
which points are summed (input order, threads, SIMD width, device). Checked here on
the CPU against an independent exact computation in Python integers, under point
permutations and thread counts, and for the internal consistency of the methods.
"""
import math

import numpy as np
import pytest
import torch

import augcore
from augcore.ops.reference import reference_greedy, reference_similarity, reference_sqdist


def _fixed_point_exponent(n, bound):
    """F = min(52, 62 - L) - e with n <= 2^L and bound < 2^e (csrc/common/fixed_point.h)."""
    L = max(0, math.ceil(math.log2(n))) if n > 1 else 0
    e = math.floor(math.log2(bound)) + 1 if bound > 0 else 0
    return min(52, 62 - L) - e


def _exact_gains(sim32, picks):
    """Gains of a pick sequence, from float32 similarities (sim32[i, c] = s_ic), exactly:
    float32 terms rounded half-even to multiples of 2^-F, summed as Python integers."""
    n = sim32.shape[0]
    F = _fixed_point_exponent(n, float(sim32.max()))
    m = np.zeros(n, dtype=np.float32)
    gains = []
    for c in picks:
        terms = np.maximum(sim32[:, c] - m, np.float32(0))  # float32 subtraction, as the kernel
        total = sum(round(float(t) * 2.0 ** F) for t in terms)  # Python's round: half to even
        gains.append(float(total) * 2.0 ** -F)
        m = np.maximum(m, sim32[:, c])
    return gains


@pytest.mark.parametrize("n,seed", [(50, 0), (300, 1), (1500, 2)])
@pytest.mark.parametrize("method", ["naive", "lazy", "stochastic"])
def test_gains_are_the_exact_fixed_point_sums(n, seed, method):
    rng = np.random.default_rng(seed)
    sim = rng.random((n, n)).astype(np.float32) * np.float32(3.7)
    res = augcore.facility_location(None, n // 5, similarity=torch.from_numpy(sim), method=method, seed=seed)
    assert res.gains.tolist() == _exact_gains(sim, res.indices.tolist())


def test_objective_is_the_exact_fixed_point_sum():
    rng = np.random.default_rng(3)
    sim = rng.random((200, 200)).astype(np.float32)
    res = augcore.facility_location(None, 20, similarity=torch.from_numpy(sim), method="lazy")
    F = _fixed_point_exponent(200, float(sim.max()))
    m = sim[:, res.indices.numpy()].max(1)
    assert float(res.objective[0]) == float(sum(round(float(v) * 2.0 ** F) for v in m)) * 2.0 ** -F


def _same_until_an_exact_tie(a, b, perm):
    """Group by group, the runs on the original and the permuted points make the same picks
    with bit-identical gains; if they ever pick differently, the two picks had exactly equal
    gains at that step (both are the maximum of the same gains in the same state: a tie,
    settled by index, which the permutation changed), and the runs may part from there."""
    ties = 0
    for g in range(a.budgets.numel()):
        lo, hi = int(a.group_ptr[g]), int(a.group_ptr[g + 1])
        pa, pb = a.indices[lo:hi], perm[b.indices[lo:hi]]
        differ = (pa != pb).nonzero().flatten()
        stop = int(differ[0]) + 1 if differ.numel() else hi - lo
        assert torch.equal(a.gains[lo:lo + stop], b.gains[lo:lo + stop])
        ties += int(differ.numel() > 0)
    return ties


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("mode", ["dense", "on_the_fly"])
@pytest.mark.parametrize("data", ["random", "duplicates"])
def test_permuting_points_keeps_gains_bit_for_bit(seed, mode, data):
    """Another order of the points sums every gain in another order: the gains must not move."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(900, 5, generator=g)
    if data == "duplicates":
        x[450:] = x[:450].clone()
    labels = torch.randint(0, 3, (900,), generator=g)
    perm = torch.randperm(900, generator=g)
    for tie_break in ("low", "high"):
        a = augcore.facility_location(x, 60, labels, method="naive", mode=mode, tie_break=tie_break)
        b = augcore.facility_location(x[perm], 60, labels[perm], method="naive", mode=mode, tie_break=tie_break)
        ties = _same_until_an_exact_tie(a, b, perm)
        if data == "random" and ties == 0:
            assert torch.equal(a.objective, b.objective)


@pytest.mark.parametrize("groups", [1, 6])
def test_thread_count_does_not_change_anything(groups):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(20_000 if groups == 1 else 3000, 4, generator=g)  # one group: >= 16 blocks split over threads
    labels = torch.randint(0, groups, (x.shape[0],), generator=g)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(augcore.facility_location(x, 10 if groups == 1 else 300, labels, method="stochastic",
                                                     eps=0.5, mode="on_the_fly" if groups == 1 else "dense"))
    finally:
        torch.set_num_threads(before)
    for r in results[1:]:
        assert torch.equal(r.indices, results[0].indices) and torch.equal(r.gains, results[0].gains)
        assert torch.equal(r.objective, results[0].objective)


@pytest.mark.parametrize("tie_break", ["low", "high"])
def test_naive_lazy_and_stochastic_agree_where_they_must(tie_break):
    """lazy == naive (tie_break low); stochastic whose sample covers every remaining
    candidate (eps tiny) == naive, for both tie rules, on data full of exact ties."""
    g = torch.Generator().manual_seed(6)
    x = torch.randint(0, 3, (200, 2), generator=g).float()
    labels = torch.randint(0, 2, (200,), generator=g)
    naive = augcore.facility_location(x, 60, labels, method="naive", tie_break=tie_break)
    full_sample = augcore.facility_location(x, 60, labels, method="stochastic", eps=1e-300, tie_break=tie_break)
    assert torch.equal(full_sample.indices, naive.indices) and torch.equal(full_sample.gains, naive.gains)
    if tie_break == "low":
        lazy = augcore.facility_location(x, 60, labels, method="lazy")
        assert torch.equal(lazy.indices, naive.indices) and torch.equal(lazy.gains, naive.gains)


def test_still_the_float64_reference_without_near_ties():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(400, 6, generator=g) * 2
    res = augcore.facility_location(x, 40, method="naive")
    sim = reference_similarity(reference_sqdist(x), "exp", 6.0)
    picks, gains, _, objective = reference_greedy(sim, 40)
    assert res.indices.tolist() == picks
    torch.testing.assert_close(res.gains, torch.tensor(gains, dtype=torch.float64), rtol=1e-5, atol=1e-6)
    assert float(res.objective[0]) == pytest.approx(objective, rel=1e-6)
