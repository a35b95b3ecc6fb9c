"""Triton facility-location greedy against the compiled CPU op and the float64 reference.

Without a GPU the kernels run on the CPU under TRITON_INTERPRET=1 (set here, before
Triton compiles anything); with one they run compiled on CUDA tensors.
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import augcore  # noqa: E402,F401
from augcore.ops import facility_location  # noqa: E402
from augcore.ops.reference import (counter_hash, reference_greedy, reference_similarity,  # noqa: E402
                                   reference_sqdist, uniform_below)
from augcore.ops.triton import facility_location_triton, fisher_yates_targets  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
METHODS = {"naive": 0, "lazy": 1, "stochastic": 2}


def _problem(seed=0, sizes=(15, 0, 7, 19), budgets=(3, 0, 2, 4), dim=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(sizes), dim, generator=g)
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.tensor(sizes), 0)
    return x, ptr, torch.tensor(budgets, dtype=torch.int64)


def test_fisher_yates_targets_match_the_reference_generator():
    seed, groups, step = 2**63 + 12345, np.array([0, 3, 7]), 5
    remaining = np.array([40, 17, 1000])
    t = fisher_yates_targets(seed, groups, step, remaining, 12)
    for row, g in enumerate(groups):
        for j in range(12):
            expect = j + uniform_below(counter_hash(seed, int(g), step, j), int(remaining[row]) - j)
            assert t[row, j] == expect


@pytest.mark.parametrize("method", ["naive", "lazy", "stochastic"])
def test_triton_matches_cpu_kernel_and_float64_reference(method):
    x, ptr, bud = _problem(seed=1)
    scale, eps, seed = 5.0, 0.2, 7
    got = facility_location_triton(x.to(DEVICE), ptr, bud, scale, METHODS[method], eps, seed)
    cpu = torch.ops.augcore.facility_location(x, None, None, ptr, bud, 0, scale, 1.0, METHODS[method], eps, seed, 0,
                                              1 << 30)
    picks, gains, gamma, assign, objective = (t.cpu() for t in got)
    assert torch.equal(picks, cpu[0])
    assert torch.equal(gamma, cpu[2])
    assert torch.equal(assign, cpu[3])
    torch.testing.assert_close(gains, cpu[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(objective, cpu[4], rtol=1e-12, atol=1e-12)  # same m values, float64 sums
    ref_method = "naive" if method == "lazy" else method
    sel_ptr = torch.cat([torch.zeros(1, dtype=torch.int64), bud.cumsum(0)])
    for g in range(bud.numel()):
        lo, hi = int(ptr[g]), int(ptr[g + 1])
        if hi == lo:
            continue
        sim = reference_similarity(reference_sqdist(x[lo:hi]), "exp", scale)
        sel, ref_gains, ref_assign, ref_obj = reference_greedy(sim, int(bud[g]), ref_method, eps, seed, g)
        mine = picks[int(sel_ptr[g]):int(sel_ptr[g + 1])] - lo
        assert mine.tolist() == sel
        torch.testing.assert_close(gains[int(sel_ptr[g]):int(sel_ptr[g + 1])],
                                   torch.tensor(ref_gains, dtype=torch.float64), rtol=1e-5, atol=1e-5)
        if sel:
            assert torch.equal(assign[lo:hi] - lo, ref_assign)
            assert abs(float(objective[g]) - ref_obj) <= 1e-5 * max(1.0, ref_obj)
        assert int(gamma[int(sel_ptr[g]):int(sel_ptr[g + 1])].sum()) == (hi - lo if sel else 0)


def test_wrapper_backend_triton_matches_compiled_backend():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 4, generator=g)
    labels = torch.randint(0, 3, (40,), generator=g)
    a = facility_location(x.to(DEVICE), 9, labels.to(DEVICE), method="stochastic", eps=0.3, seed=11,
                          backend="triton")
    b = facility_location(x, 9, labels, method="stochastic", eps=0.3, seed=11, backend="compiled")
    assert torch.equal(a.indices.cpu(), b.indices)
    assert torch.equal(a.weights.cpu(), b.weights)
    assert torch.equal(a.assignment.cpu(), b.assignment)


def test_triton_backend_rejects_what_it_does_not_implement():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="triton"):
        facility_location(x, 2, similarity="craig", backend="triton")
    with pytest.raises(ValueError, match="triton"):
        facility_location(x, 2, embeddings=torch.randn(10, 4), backend="triton")
    with pytest.raises(ValueError, match="backend"):
        facility_location(x, 2, backend="cupy")
    with pytest.raises(ValueError, match="budget"):
        facility_location_triton(x.to(DEVICE), torch.tensor([0, 10]), torch.tensor([11]), 3.0, 0, 0.1, 0)
