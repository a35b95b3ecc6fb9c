"""The CUDA greedy's launch plan is host code, tested here without a GPU.

torch.ops.augcore.cuda_launch_plan returns what facility_location_cuda launches:
which groups get shared-memory, global or on-the-fly similarities, where the greedy
state lives, the dynamic shared memory each launch requests, and the batches of dense
groups under the memory limit. The sizes include those that failed to launch before
(groups of 4,831-6,144 points with state in shared memory, shared-rows groups of
98-109 points): their dynamic + static shared memory exceeded 48 KB while the kernel's
limit was raised only when the dynamic part alone did.
"""
import pytest
import torch

import augcore  # noqa: F401

OPS = torch.ops.augcore
H200_OPTIN = 232_448   # cudaDevAttrMaxSharedMemoryPerBlockOptin on sm_90 (227 KB)
A100_OPTIN = 166_912   # sm_80 (163 KB)
DEFAULT_LIMIT = 48 * 1024
SHARED, GLOBAL, ON_THE_FLY = 0, 1, 2
AUTO, DENSE, FLY = 0, 1, 2


def _plan(sizes, budgets=None, precomputed=False, mode=AUTO, memory_limit=1 << 30, optin=H200_OPTIN, static=-1):
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.tensor(sizes, dtype=torch.int64), 0)
    bud = torch.tensor(budgets if budgets is not None else [max(1, s // 10) if s else 0 for s in sizes],
                       dtype=torch.int64)
    groups, launches = OPS.cuda_launch_plan(ptr, bud, precomputed, mode, memory_limit, optin, static)
    rows = [dict(zip(("rows", "first", "count", "max_n", "dynamic", "state_in_shared", "workspace"), r))
            for r in launches.tolist()]
    return groups.tolist(), rows, sizes, bud.tolist()


def _check_invariants(groups, rows, sizes, budgets, optin, static, memory_limit, mode, precomputed):
    active = [g for g, k in enumerate(budgets) if k > 0]
    assert sorted(groups) == active  # every active group launched exactly once
    for r in rows:
        members = groups[r["first"]:r["first"] + r["count"]]
        assert r["count"] == len(members) > 0
        assert r["max_n"] == max(sizes[g] for g in members)
        # what the launch asks for is what the device allows once the attribute is set
        assert r["dynamic"] + static <= optin
        rows_bytes = 4 * r["max_n"] ** 2 if r["rows"] == SHARED else 0
        state_bytes = 8 * r["max_n"] if r["state_in_shared"] else 0
        assert r["dynamic"] == rows_bytes + state_bytes
        if r["rows"] == SHARED:
            assert r["state_in_shared"] and not precomputed
        if r["rows"] == GLOBAL and not precomputed:
            assert r["workspace"] == sum(sizes[g] ** 2 for g in members)
            if len(members) > 1:
                assert 4 * r["workspace"] <= memory_limit  # batches fit the memory limit
        else:
            assert r["workspace"] == 0
        if r["rows"] == ON_THE_FLY:
            assert not precomputed and mode != DENSE
            assert mode == FLY or all(4 * sizes[g] ** 2 > memory_limit for g in members)
        # the state goes to shared memory exactly when it fits
        assert r["state_in_shared"] == (rows_bytes + 8 * r["max_n"] + static <= optin)


STATIC = 10_752  # about the kernel's static shared memory (GreedyShared), as sm_90 reports it


@pytest.mark.parametrize("optin", [H200_OPTIN, A100_OPTIN])
@pytest.mark.parametrize("sizes", [
    [40, 100, 300, 700, 5000],
    list(range(98, 110)),                       # shared rows that failed (dynamic + static > 48 KB)
    [4831, 5000, 5500, 6144],                   # state in shared memory that failed
    [5000] * 10,                                # CIFAR-10
    [1, 0, 2, 229, 230, 231, 232, 240],         # around the shared-rows limit
    [27_000, 28_000, 30_000, 40_000],           # around the shared-state limit
])
@pytest.mark.parametrize("mode", [AUTO, DENSE, FLY])
def test_plan_invariants(sizes, optin, mode):
    for precomputed in (False, True):
        for limit in (1 << 30, 4 * 5000 * 5000 + 1, 4 * 700 * 700):
            groups, rows, sizes_, budgets = _plan(sizes, precomputed=precomputed, mode=mode, memory_limit=limit,
                                                 optin=optin, static=STATIC)
            _check_invariants(groups, rows, sizes_, budgets, optin, STATIC, limit, mode, precomputed)


def test_sizes_that_failed_to_launch_now_request_what_the_device_allows():
    groups, rows, sizes, _ = _plan(list(range(98, 110)), static=STATIC)
    assert len(rows) == 1 and rows[0]["rows"] == SHARED
    assert rows[0]["dynamic"] + STATIC > DEFAULT_LIMIT  # needs the raised attribute (set once per device)
    assert rows[0]["dynamic"] + STATIC <= H200_OPTIN
    _, rows, _, _ = _plan([4831, 6144], static=STATIC)
    assert [r["rows"] for r in rows] == [GLOBAL]
    assert rows[0]["state_in_shared"] and rows[0]["dynamic"] == 8 * 6144
    assert rows[0]["dynamic"] + STATIC > DEFAULT_LIMIT


def test_cifar_scale_is_one_dense_batch_with_state_in_shared_memory():
    groups, rows, _, _ = _plan([5000] * 10, static=STATIC)
    assert groups == list(range(10))
    assert len(rows) == 1 and rows[0]["rows"] == GLOBAL and rows[0]["count"] == 10
    assert rows[0]["workspace"] == 10 * 5000 ** 2 and rows[0]["state_in_shared"]


def test_imagenet_scale_batches_under_the_memory_limit():
    sizes = [1281] * 999 + [1300]
    groups, rows, _, budgets = _plan(sizes, static=STATIC)
    _check_invariants(groups, rows, sizes, budgets, H200_OPTIN, STATIC, 1 << 30, AUTO, False)
    assert all(r["rows"] == GLOBAL for r in rows) and len(rows) == 7
    for batch, following in zip(rows, rows[1:]):  # a batch closes only when the next group does not fit
        next_group = groups[following["first"]]
        assert 4 * (batch["workspace"] + sizes[next_group] ** 2) > 1 << 30


def test_groups_too_large_for_shared_state_use_a_workspace_and_budget_zero_groups_are_skipped():
    groups, rows, _, _ = _plan([40_000, 50, 7], budgets=[3, 0, 2], mode=FLY, static=STATIC)
    assert sorted(groups) == [0, 2]
    fly = [r for r in rows if r["rows"] == ON_THE_FLY]
    assert len(fly) == 1 and not fly[0]["state_in_shared"] and fly[0]["dynamic"] == 0


def test_build_static_size_is_used_by_default():
    """static=-1 is this build's sizeof(GreedyShared): about 10.5 KB."""
    limit_with = {}
    for static in (-1, 0):
        _, rows, _, _ = _plan([238], static=static)
        limit_with[static] = rows[0]["rows"]
    assert limit_with[0] == SHARED and limit_with[-1] == GLOBAL  # 4*238^2 + 8*238 fits 227 KB only without it


@pytest.mark.parametrize("indptr,budgets,match", [
    ([0, 5, 3], [1, 0], "non-decreasing"),
    ([-2, 3], [1], "start at 0"),
    ([0, 3], [4], "out of range"),
    ([0, 3], [1, 1], "one entry per group"),
])
def test_plan_rejects_bad_groups(indptr, budgets, match):
    with pytest.raises(ValueError, match=match):
        OPS.cuda_launch_plan(torch.tensor(indptr), torch.tensor(budgets), False, 0, 1 << 30, H200_OPTIN, -1)
