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


def _check_against_cpu(x, h, sim, ptr, bud, kind, method, mode, eps=0.1, seed=5, memory_limit=1 << 30, tie_break=0):
    scale = float(x.shape[1] if h is None else x.shape[1] * (h.shape[1] + 1))
    args = (kind, scale, 1.0, METHODS[method], eps, seed, MODES[mode], memory_limit, tie_break)
    cpu = OPS.facility_location(x, h, sim, ptr, bud, *args)
    gpu = OPS.facility_location(x.cuda(), _cuda(h), _cuda(sim), ptr, bud, *args)
    picks, gains, gamma, assign, objective, timings = gpu
    assert picks.is_cuda and gains.is_cuda and gamma.is_cuda and assign.is_cuda and objective.is_cuda
    # fixed-point gains: the same integers on both devices, so everything is equal exactly
    assert torch.equal(picks.cpu(), cpu[0])
    assert torch.equal(gains.cpu(), cpu[1])
    assert torch.equal(gamma.cpu(), cpu[2])
    assert torch.equal(assign.cpu(), cpu[3])
    assert torch.equal(objective.cpu(), cpu[4])
    assert timings.is_cuda and bool((timings >= 0).all())
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
    assert torch.equal(gpu[1].cpu(), cpu[1])


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


def test_wrapper_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(500, 10, generator=g)
    labels = torch.randint(0, 10, (500,), generator=g)
    cpu = facility_location(x, 50, labels, seed=3)
    gpu = facility_location(x.cuda(), 50, labels.cuda(), seed=3)
    assert torch.equal(gpu.indices.cpu(), cpu.indices)
    assert torch.equal(gpu.gains.cpu(), cpu.gains)
    assert torch.equal(gpu.weights.cpu(), cpu.weights)
    assert torch.equal(gpu.assignment.cpu(), cpu.assignment)
    assert gpu.timings["greedy"] > 0


@pytest.mark.parametrize("sizes", [(4831,), (6144,), (98, 103, 109)])
def test_sizes_that_failed_to_launch(sizes):
    """dynamic + static shared memory above 48 KB: the kernel's attribute is now always set."""
    x, _, ptr, bud = _groups(sizes, tuple(max(1, s // 50) for s in sizes), 10, seed=11)
    for method in ("lazy", "stochastic"):
        _check_against_cpu(x, None, None, ptr, bud, 0, method, "auto")


def test_more_than_524288_points_in_one_group_on_the_fly():
    """More point blocks than the old shared partial[] array held (2,048 x 256 points)."""
    x, _, ptr, bud = _groups((530_000,), (2,), 2, seed=12)
    _check_against_cpu(x, None, None, ptr, bud, 0, "stochastic", "on_the_fly", eps=0.99)


@pytest.mark.parametrize("method", ["naive", "stochastic"])
def test_tie_break_high_and_duplicates_match_cpu(method):
    g = torch.Generator().manual_seed(13)
    x = torch.randint(0, 3, (300, 2), generator=g).float()  # a lattice: exact ties everywhere
    ptr, bud = torch.tensor([0, 120, 300]), torch.tensor([30, 60])
    for tie_break in (0, 1):
        _check_against_cpu(x, None, None, ptr, bud, 0, method, "auto", tie_break=tie_break)


def test_overflowing_distances_give_the_cpu_answer():
    """craig with distances that overflow float32: both devices count them as FLT_MAX."""
    x = torch.tensor([[0.0], [3e38], [-3e38], [1.0], [2.0]])
    ptr, bud = torch.tensor([0, 5]), torch.tensor([3])
    for method in ("naive", "stochastic"):
        _check_against_cpu(x, None, None, ptr, bud, 1, method, "dense")
        _check_against_cpu(x, None, None, ptr, bud, 1, method, "on_the_fly")


def test_grad_proxies_cuda_checks_label_range():
    with pytest.raises(ValueError, match="labels must lie in"):
        OPS.grad_proxies(torch.randn(4, 3).cuda(), torch.tensor([0, 1, 3, 2]).cuda(), None, 0)
    with pytest.raises(ValueError, match="labels must lie in"):
        OPS.grad_proxies(torch.randn(4, 3).cuda(), torch.tensor([0, -1, 1, 2]).cuda(), None, 0)


def test_lazy_with_high_ties_is_cpu_only():
    x, _, ptr, bud = _groups((30,), (5,), 3, seed=14)
    with pytest.raises(ValueError, match="CPU tensors only"):
        OPS.facility_location(x.cuda(), None, None, ptr, bud, 0, 3.0, 1.0, 1, 0.1, 0, 0, 1 << 30, 1)


def test_cpu_only_similarity_and_apricot_lazy_refuse_cuda_tensors():
    x = torch.randn(40, 3, device="cuda")
    with pytest.raises(ValueError, match="CPU tensors only"):
        facility_location(x, 4, similarity="craig_squared")
    with pytest.raises(ValueError, match="CPU tensors only"):
        facility_location(x, 4, method="lazy", tie_break="apricot")
    picks = facility_location(x, 4, method="naive", tie_break="apricot").indices.cpu()
    assert torch.equal(picks, facility_location(x.cpu(), 4, method="naive", tie_break="low").indices)
