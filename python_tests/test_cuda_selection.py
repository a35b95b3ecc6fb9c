"""CUDA pairwise distances and facility-location greedy against the CPU kernels and float64 references.

Skipped where no GPU is present (the one allowed skip).
"""
import pytest
import torch

import augcore  # noqa: F401
from augcore.ops import facility_location, pairwise_distances
from augcore.ops.reference import reference_greedy, reference_similarity, reference_sqdist

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

OPS = torch.ops.augcore if hasattr(torch.ops, "augcore") else None
METHODS = {"naive": 0, "lazy": 1, "stochastic": 2}
KINDS = {"exp": 0, "craig": 1}
MODES = {"auto": 0, "dense": 1, "on_the_fly": 2}


def _groups(sizes, budgets, dim, emb_dim=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(sizes), dim, generator=g)
    h = torch.randn(sum(sizes), emb_dim, generator=g) if emb_dim else None
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.tensor(sizes), 0)
    return x, h, ptr, torch.tensor(budgets, dtype=torch.int64)


def _cuda(t):
    return None if t is None else t.cuda()


@pytest.mark.parametrize("emb_dim", [None, 7])
def test_pairwise_sqdist_cuda_equals_cpu_bit_for_bit(emb_dim):
    x, h, ptr, _ = _groups((1, 0, 33, 70), (0, 0, 0, 0), 40, emb_dim)
    cpu = OPS.pairwise_sqdist(x, h, ptr, 1.0)
    gpu = OPS.pairwise_sqdist(x.cuda(), _cuda(h), ptr, 1.0)
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
    lo, hi = 34, 104
    ref = reference_sqdist(x[lo:hi], None if h is None else h[lo:hi], 1.0)
    torch.testing.assert_close(gpu.cpu()[-70 * 70:].view(70, 70).double(), ref, rtol=1e-4, atol=1e-3)


def test_pairwise_distances_wrapper_on_cuda():
    x = torch.randn(50, 6)
    labels = torch.randint(0, 4, (50,))
    a = pairwise_distances(x.cuda(), labels.cuda())
    b = pairwise_distances(x, labels)
    assert torch.equal(a.values.cpu(), b.values)


def _check_against_cpu(x, h, sim, ptr, bud, kind, method, mode, eps=0.1, seed=5, memory_limit=1 << 30):
    scale = float(x.shape[1] if h is None else x.shape[1] * (h.shape[1] + 1))
    args = (kind, scale, 1.0, METHODS[method], eps, seed, MODES[mode], memory_limit)
    cpu = OPS.facility_location(x, h, sim, ptr, bud, *args)
    gpu = OPS.facility_location(x.cuda(), _cuda(h), _cuda(sim), ptr, bud, *args)
    picks, gains, gamma, assign, objective, timings = gpu
    assert picks.is_cuda and gains.is_cuda and gamma.is_cuda and assign.is_cuda and objective.is_cuda
    assert torch.equal(picks.cpu(), cpu[0])
    assert torch.equal(gamma.cpu(), cpu[2])
    assert torch.equal(assign.cpu(), cpu[3])
    torch.testing.assert_close(gains.cpu(), cpu[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(objective.cpu(), cpu[4], rtol=1e-12, atol=1e-12)
    return gpu


@pytest.mark.parametrize("method", ["naive", "lazy", "stochastic"])
@pytest.mark.parametrize("kind", ["exp", "craig"])
@pytest.mark.parametrize("mode", ["auto", "dense", "on_the_fly"])
def test_facility_location_cuda_matches_cpu(method, kind, mode):
    # group sizes cover: a shared-memory group (40), empty, budget 0, and ones too large for shared memory
    x, _, ptr, bud = _groups((40, 0, 12, 300, 700), (6, 0, 0, 30, 20), 10, seed=1)
    _check_against_cpu(x, None, None, ptr, bud, KINDS[kind], method, mode)


@pytest.mark.parametrize("method", ["naive", "stochastic"])
def test_facility_location_cuda_exact_last_layer_space(method):
    x, h, ptr, bud = _groups((30, 260), (4, 25), 6, emb_dim=9, seed=2)
    _check_against_cpu(x, h, None, ptr, bud, 0, method, "auto")
    _check_against_cpu(x, h, None, ptr, bud, 0, method, "on_the_fly")


def test_facility_location_cuda_batches_under_a_small_memory_limit():
    x, _, ptr, bud = _groups((200, 300, 250, 150), (10, 12, 9, 7), 5, seed=3)
    _check_against_cpu(x, None, None, ptr, bud, 0, "stochastic", "auto", memory_limit=4 * 300 * 300 + 4 * 200 * 200)


def test_facility_location_cuda_precomputed_similarity():
    x, _, ptr, bud = _groups((25, 60), (5, 8), 4, seed=4)
    blocks = [reference_similarity(reference_sqdist(x[int(ptr[g]):int(ptr[g + 1])]), "exp", 4.0).float().reshape(-1)
              for g in range(2)]
    sim = torch.cat(blocks)
    empty = torch.zeros(x.shape[0], 0)
    cpu = OPS.facility_location(empty, None, sim, ptr, bud, 2, 1.0, 1.0, 0, 0.1, 0, 0, 1 << 30)
    gpu = OPS.facility_location(empty.cuda(), None, sim.cuda(), ptr, bud, 2, 1.0, 1.0, 0, 0.1, 0, 0, 1 << 30)
    assert torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[3].cpu(), cpu[3])


def test_facility_location_cuda_large_group_state_in_global_memory():
    # 40,000 points: m and the remaining array no longer fit in shared memory
    x, _, ptr, bud = _groups((40000,), (4,), 3, seed=5)
    _check_against_cpu(x, None, None, ptr, bud, 0, "stochastic", "on_the_fly", eps=0.9)


@pytest.mark.parametrize("method", ["naive", "stochastic"])
def test_facility_location_cuda_against_float64_reference(method):
    x, _, ptr, bud = _groups((64, 90), (7, 9), 8, seed=6)
    picks, gains, gamma, assign, objective, _ = OPS.facility_location(
        x.cuda(), None, None, ptr, bud, 0, 8.0, 1.0, METHODS[method], 0.1, 9, 0, 1 << 30)
    start = 0
    for g in range(2):
        lo, hi, k = int(ptr[g]), int(ptr[g + 1]), int(bud[g])
        sim = reference_similarity(reference_sqdist(x[lo:hi]), "exp", 8.0)
        sel, ref_gains, ref_assign, ref_obj = reference_greedy(sim, k, method, 0.1, 9, g)
        assert (picks[start:start + k].cpu() - lo).tolist() == sel
        torch.testing.assert_close(gains[start:start + k].cpu(), torch.tensor(ref_gains, dtype=torch.float64),
                                   rtol=1e-5, atol=1e-5)
        assert torch.equal(assign[lo:hi].cpu() - lo, ref_assign)
        assert abs(float(objective[g]) - ref_obj) <= 1e-5 * ref_obj
        assert int(gamma[start:start + k].sum()) == hi - lo
        start += k


def test_facility_location_cuda_runs_on_the_current_stream():
    x, _, ptr, bud = _groups((120, 80), (10, 6), 5, seed=7)
    cpu = OPS.facility_location(x, None, None, ptr, bud, 0, 5.0, 1.0, 2, 0.1, 1, 0, 1 << 30)
    xs = x.cuda()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out = OPS.facility_location(xs, None, None, ptr, bud, 0, 5.0, 1.0, 2, 0.1, 1, 0, 1 << 30)
    stream.synchronize()
    assert torch.equal(out[0].cpu(), cpu[0])


def test_wrapper_on_cuda_matches_cpu_and_triton_backend():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(500, 10, generator=g)
    labels = torch.randint(0, 10, (500,), generator=g)
    cpu = facility_location(x, 50, labels, seed=3)
    gpu = facility_location(x.cuda(), 50, labels.cuda(), seed=3)
    tri = facility_location(x.cuda(), 50, labels.cuda(), seed=3, backend="triton")
    for r in (gpu, tri):
        assert torch.equal(r.indices.cpu(), cpu.indices)
        assert torch.equal(r.weights.cpu(), cpu.weights)
        assert torch.equal(r.assignment.cpu(), cpu.assignment)
