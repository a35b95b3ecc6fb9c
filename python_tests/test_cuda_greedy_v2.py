"""The v2 CUDA greedy (AUGCORE_CUDA_GREEDY=v2: one candidate per warp, an exact batched lazy greedy).

On the CPU: the variant switch (the environment variable, its refusal of other values) and the v2
launch plan (lazy state of 20 bytes a point, v2's smaller static shared memory). On a GPU: every
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
