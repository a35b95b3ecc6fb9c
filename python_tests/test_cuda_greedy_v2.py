"""The v2 CUDA greedy (AUGCORE_CUDA_GREEDY=v2: one candidate per warp, an exact batched lazy greedy).

On the CPU: the variant switch (the environment variable, its refusal of other values) and the v2
launch plan (lazy state of 20 bytes a point, v2's smaller static shared memory, the cluster size of
each launch on sm_90). On a GPU: every
field of the result equal to the CPU op's, in every method, similarity and storage mode, with groups
whose rows are 16-byte aligned (vector loads) and not, state in shared and in global memory."""
import pytest
import torch

import augcore  # noqa: F401

OPS = torch.ops.augcore
H200_OPTIN = 232_448
NAIVE, LAZY, STOCHASTIC = 0, 1, 2
SHARED, GLOBAL, ON_THE_FLY = 0, 1, 2
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("value,variant", [(None, 1), ("", 1), ("v1", 1), ("v2", 2)])
def test_variant_from_the_environment(monkeypatch, value, variant):
    if value is None:
        monkeypatch.delenv("AUGCORE_CUDA_GREEDY", raising=False)
    else:
        monkeypatch.setenv("AUGCORE_CUDA_GREEDY", value)
    assert OPS.cuda_greedy_variant() == variant


@pytest.mark.parametrize("value", ["V2", "2", "v3", " v2"])
def test_other_values_are_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("AUGCORE_CUDA_GREEDY", value)
    with pytest.raises(ValueError, match=f"AUGCORE_CUDA_GREEDY must be 'v1' .* or 'v2' .*, got '{value}'"):
        OPS.cuda_greedy_variant()


def _plan(sizes, variant, method, optin=H200_OPTIN, mode=0):
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.tensor(sizes), 0)
    bud = torch.tensor([max(1, s // 10) for s in sizes])
    _, launches = OPS.cuda_launch_plan(ptr, bud, False, mode, 1 << 30, optin, -1, variant, method)
    return [dict(zip(("rows", "first", "count", "max_n", "dynamic", "state_in_shared", "workspace"), r))
            for r in launches.tolist()]


def test_v2_lazy_keeps_bounds_and_stamps_beside_the_state():
    """20 bytes a point (m, rem, an int64 bound, an int stamp) for v2's lazy greedy, 8 otherwise; a group
    whose 8-byte state fits but whose 20-byte state does not moves its state to global memory."""
    for variant, method, per_point in [(1, LAZY, 8), (2, NAIVE, 8), (2, STOCHASTIC, 8), (2, LAZY, 20)]:
        (launch,) = _plan([5000], variant, method)
        assert launch["rows"] == GLOBAL and launch["state_in_shared"]
        assert launch["dynamic"] == per_point * 5000
    big = 15_000  # 120 KB of v1 state, 300 KB of v2 lazy state: more than sm_90's 227 KB
    assert _plan([big], 2, NAIVE, mode=2)[0]["state_in_shared"]
    lazy = _plan([big], 2, LAZY, mode=2)[0]
    assert lazy["rows"] == ON_THE_FLY and not lazy["state_in_shared"] and lazy["dynamic"] == 0
    # shared rows need their state in shared memory too: a group that fits with 8 bytes a point but not
    # with 20 gets global rows instead
    n = 238  # 4 n^2 + 8 n = 228,480 fits 232,448 - 2,400; 4 n^2 + 20 n = 231,336 does not
    assert _plan([n], 2, NAIVE)[0]["rows"] == SHARED
    assert _plan([n], 2, LAZY)[0]["rows"] == GLOBAL


def test_v2_static_shared_memory_is_smaller():
    """static=-1: the variant's own struct (v2 drops v1's 8 KB per-candidate gain array)."""
    n = 236  # 4 n^2 + 8 n = 224,672 bytes: above 232,448 - 10,592 (v1's struct), below 232,448 - 2,400 (v2's)
    v1 = _plan([n], 1, NAIVE)[0]
    v2 = _plan([n], 2, NAIVE)[0]
    assert v1["rows"] == GLOBAL and v2["rows"] == SHARED


def _groups(sizes, budgets, dim, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(sizes), dim, generator=g)
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.tensor(sizes), 0)
    return x, ptr, torch.tensor(budgets, dtype=torch.int64)


@needs_gpu
@pytest.mark.parametrize("method", [NAIVE, LAZY, STOCHASTIC])
@pytest.mark.parametrize("kind", [0, 1])
@pytest.mark.parametrize("mode", [0, 2])
def test_v2_matches_the_cpu_op(monkeypatch, method, kind, mode):
    # 40: shared rows (n % 4 == 0: float4 loads); 37: shared rows, scalar path; 12 with budget 0;
    # 300 and 701: global or on-the-fly rows, aligned and not
    x, ptr, bud = _groups((40, 37, 0, 12, 300, 701), (6, 37, 0, 0, 30, 20), 10, seed=1)
    args = (kind, 10.0, 1.0, method, 0.1, 5, mode, 1 << 30, 0)
    cpu = OPS.facility_location(x, None, None, ptr, bud, *args)
    monkeypatch.setenv("AUGCORE_CUDA_GREEDY", "v2")
    gpu = OPS.facility_location(x.cuda(), None, None, ptr, bud, *args)
    for a, b in zip(cpu[:5], gpu[:5]):
        assert torch.equal(a, b.cpu())


@needs_gpu
@pytest.mark.parametrize("method", [LAZY, STOCHASTIC])
def test_v2_state_in_global_memory_and_ties_high(monkeypatch, method):
    x, ptr, bud = _groups((40_000,), (6,), 3, seed=5)
    tie = 0 if method == LAZY else 1
    args = (0, 3.0, 1.0, method, 0.9, 2, 2, 1 << 30, tie)
    cpu = OPS.facility_location(x, None, None, ptr, bud, *args)
    monkeypatch.setenv("AUGCORE_CUDA_GREEDY", "v2")
    gpu = OPS.facility_location(x.cuda(), None, None, ptr, bud, *args)
    for a, b in zip(cpu[:5], gpu[:5]):
        assert torch.equal(a, b.cpu())


# ---- several SMs per group: the cluster plan (host code, CPU) and the cluster kernel (GPU) ----------------
H100_SMS = 132
V2_STATIC = -1
CLUSTER_COLUMNS = ("rows", "first", "count", "max_n", "dynamic", "state_in_shared", "workspace", "cluster",
                   "cap")


def _cluster_plan(sizes, method, max_cluster, sms=H100_SMS, budgets=None, mode=0, eps=0.01, optin=H200_OPTIN):
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.tensor(sizes), 0)
    bud = torch.tensor(budgets if budgets is not None else [max(1, s // 10) for s in sizes])
    _, launches = OPS.cuda_launch_plan(ptr, bud, False, mode, 1 << 30, optin, V2_STATIC, 2, method, sms,
                                       max_cluster, eps)
    return [dict(zip(CLUSTER_COLUMNS, r)) for r in launches.tolist()]


def _slice(n, c):
    return -(-(-(-n // c)) // 4) * 4  # ceil(ceil(n / c) / 4) * 4


def test_cifar10_classes_get_clusters_of_eight_portable_or_nine_non_portable():
    """10 classes of 5,000 at 10%: 8 blocks a class (80 of 132 SMs) where 8 is the largest cluster; with 16
    allowed, 9 (a slice of at least 512 points: 5,000 // 512). Stochastic: a buffer of 47 candidates (the
    CPU's sample size ceil(5000 / 500 ln 100)); naive: all 5,000."""
    for max_cluster, size in [(8, 8), (16, 9)]:
        (launch,) = _cluster_plan([5000] * 10, STOCHASTIC, max_cluster)
        assert launch["rows"] == GLOBAL and launch["cluster"] == size and launch["cap"] == 47
        assert launch["state_in_shared"] and launch["dynamic"] == 16 * 47 + 4 * _slice(5000, size) + 4 * 5000
    (naive,) = _cluster_plan([5000] * 10, NAIVE, 8)
    assert naive["cluster"] == 8 and naive["cap"] == 5000
    assert naive["dynamic"] == 16 * 5000 + 4 * 628 + 4 * 5000 == 102_512


def test_clusters_only_where_they_apply():
    assert _cluster_plan([5000] * 10, STOCHASTIC, 1)[0]["cluster"] == 1  # sm_80: no clusters
    assert _cluster_plan([5000] * 10, LAZY, 16)[0]["cluster"] == 1  # lazy keeps one block
    # one on-the-fly launch of 100 classes: 132 // 100 = 1 block each; of 40: 132 // 40 = 3
    assert _cluster_plan([5000] * 100, STOCHASTIC, 16, mode=2)[0]["cluster"] == 1
    assert _cluster_plan([5000] * 40, STOCHASTIC, 16, mode=2)[0]["cluster"] == 3
    # dense rows come in batches of the memory limit (1 GiB: 10 blocks of 100 MB), each launch its own SMs
    assert {r["count"]: r["cluster"] for r in _cluster_plan([5000] * 40, STOCHASTIC, 16)} == {10: 9}
    assert _cluster_plan([1000], NAIVE, 16)[0]["cluster"] == 1  # 1000 // 512 = 1: too few points to split
    shared = _cluster_plan([100, 5000], NAIVE, 16)
    assert [(r["rows"], r["cluster"]) for r in shared] == [(SHARED, 1), (GLOBAL, 9)]


def test_a_cluster_keeps_the_state_in_shared_memory_that_one_block_could_not():
    """30,000 points on the fly: one block's 240 KB state does not fit 227 KB; a cluster of 16 keeps 4 B a
    point of rem, a 1,876-point m slice and 2 x 47 stochastic partials. Naive's 2 x 30,000 partials do not
    fit, so naive stays one block with its state in global memory."""
    (sto,) = _cluster_plan([30_000], STOCHASTIC, 16, budgets=[3000], mode=2)
    one = _cluster_plan([30_000], STOCHASTIC, 1, budgets=[3000], mode=2)[0]
    assert not one["state_in_shared"] and one["cluster"] == 1
    assert sto["rows"] == ON_THE_FLY and sto["cluster"] == 16 and sto["state_in_shared"]
    assert sto["dynamic"] == 16 * 47 + 4 * _slice(30_000, 16) + 4 * 30_000
    (naive,) = _cluster_plan([30_000], NAIVE, 16, budgets=[3000], mode=2)
    assert naive["cluster"] == 1 and not naive["state_in_shared"]


@pytest.mark.parametrize("sizes", [[5000] * 10, [700, 2600, 9000, 1200], [20_000, 20_000]])
@pytest.mark.parametrize("method", [NAIVE, STOCHASTIC])
@pytest.mark.parametrize("max_cluster", [2, 8, 16])
def test_cluster_plan_invariants(sizes, method, max_cluster):
    for r in _cluster_plan(sizes, method, max_cluster, mode=2):
        c = r["cluster"]
        if c == 1:
            continue
        assert 2 <= c <= max_cluster and r["count"] * c <= H100_SMS and r["max_n"] // c >= 512
        assert r["dynamic"] == 16 * r["cap"] + 4 * _slice(r["max_n"], c) + 4 * r["max_n"]
        assert r["dynamic"] + 2400 <= H200_OPTIN and r["state_in_shared"]


def test_cluster_plan_refuses_bad_device_numbers():
    with pytest.raises(ValueError, match="sm_count must be >= 0, got -1"):
        _cluster_plan([5000], NAIVE, 8, sms=-1)
    with pytest.raises(ValueError, match="max_cluster_size must be >= 1, got 0"):
        _cluster_plan([5000], NAIVE, 0)


@needs_gpu
@pytest.mark.parametrize("method", [NAIVE, STOCHASTIC])
@pytest.mark.parametrize("kind,mode,tie", [(0, 0, 0), (1, 0, 1), (0, 2, 1), (1, 2, 0)])
def test_v2_cluster_matches_the_cpu_op(monkeypatch, method, kind, mode, tie):
    """Groups of 2,048 (float4 rows), 1,537 and 1,100 points: clusters of 4 blocks (2,048 // 512) on sm_90,
    one block per group on sm_80; dense or on-the-fly rows, exp or craig, both tie rules."""
    x, ptr, bud = _groups((2048, 1537, 1100), (40, 30, 25), 4, seed=9)
    x = (x * 2).round() / 2  # a coarse lattice: exact ties in gain
    args = (kind, 3.0, 1.0, method, 0.1, 5, mode, 1 << 30, tie)
    cpu = OPS.facility_location(x, None, None, ptr, bud, *args)
    monkeypatch.setenv("AUGCORE_CUDA_GREEDY", "v2")
    gpu = OPS.facility_location(x.cuda(), None, None, ptr, bud, *args)
    for a, b in zip(cpu[:5], gpu[:5]):
        assert torch.equal(a, b.cpu())


@needs_gpu
def test_v2_cluster_precomputed_matches_the_cpu_op(monkeypatch):
    x, ptr, bud = _groups((2048, 1100), (30, 20), 3, seed=4)
    sims = [torch.exp(-torch.cdist(x[a:b], x[a:b])).t().contiguous() for a, b in zip(ptr[:-1], ptr[1:])]
    sim = torch.cat([s.flatten() for s in sims])
    args = (2, 1.0, 1.0, NAIVE, 0.1, 5, 0, 1 << 30, 0)
    cpu = OPS.facility_location(x, None, sim, ptr, bud, *args)
    monkeypatch.setenv("AUGCORE_CUDA_GREEDY", "v2")
    gpu = OPS.facility_location(x.cuda(), None, sim.cuda(), ptr, bud, *args)
    for a, b in zip(cpu[:5], gpu[:5]):
        assert torch.equal(a, b.cpu())
