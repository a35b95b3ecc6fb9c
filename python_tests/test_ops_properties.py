"""Property tests over the op surface: the registered ops and their Python wrappers.

* No input crashes the process: every call either returns or raises. (A crash, an
  abort or a wild read would take the test process down with it.)
* Every rejection is a ValueError or TypeError whose message names the parameter.
* Valid but unusual inputs (numpy, float64/float16, non-contiguous views, duplicate
  points, groups of one, N = 0, numpy integer budgets) give the answer of the plain
  float32 torch input.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import augcore
from augcore.ops.reference import reference_sqdist

OPS = torch.ops.augcore
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

small_ints = st.integers(min_value=-3, max_value=12)
weird_floats = st.sampled_from([0.0, -1.0, 1e-300, 1e-3, 0.5, 1.0, 3.0, 1e300, math.inf, -math.inf, math.nan])


def _rejects_naming(call, *names):
    """Runs call(); a rejection must be ValueError/TypeError naming one of `names`."""
    try:
        call()
    except (ValueError, TypeError) as exc:
        message = str(exc)
        assert any(name in message for name in names), f"{type(exc).__name__} does not name {names}: {message}"
        return False
    return True


# --- the registered ops, called the way another framework would ------------------------------------
@SETTINGS
@given(indptr=st.lists(small_ints, min_size=0, max_size=5), d=st.integers(0, 3), n=st.integers(0, 9),
       bias=weird_floats, with_emb=st.booleans())
def test_pairwise_sqdist_op_never_crashes(indptr, d, n, bias, with_emb):
    x = torch.randn(n, d)
    emb = torch.randn(n, 2) if with_emb else None
    ptr = torch.tensor(indptr, dtype=torch.int64)
    ok = _rejects_naming(lambda: OPS.pairwise_sqdist(x, emb, ptr, bias), "indptr", "bias")
    if ok:  # accepted: a valid CSR over the rows, and the blocks are right
        out = OPS.pairwise_sqdist(x, emb, ptr, bias)
        sizes = [b - a for a, b in zip(indptr, indptr[1:])]
        assert indptr[0] == 0 and indptr[-1] == n and all(s >= 0 for s in sizes)
        assert out.numel() == sum(s * s for s in sizes)
        if emb is None and sizes:
            start, s0 = 0, sizes[0]
            torch.testing.assert_close(out[:s0 * s0].view(s0, s0).double(), reference_sqdist(x[start:s0]),
                                       rtol=1e-4, atol=1e-4)


def test_pairwise_sqdist_op_rejects_the_reported_inputs():
    x = torch.randn(6, 2)
    with pytest.raises(ValueError, match="indptr must be non-decreasing"):
        OPS.pairwise_sqdist(x, None, torch.tensor([0, 5, 3, 6]), 1.0)
    with pytest.raises(ValueError, match="indptr must start at 0"):
        OPS.pairwise_sqdist(x, None, torch.tensor([-2, 6]), 1.0)
    with pytest.raises(TypeError, match="indptr must be an integer tensor"):
        OPS.pairwise_sqdist(x, None, torch.tensor([0.0, 6.0]), 1.0)
    with pytest.raises(ValueError, match="indptr must end at N"):
        OPS.pairwise_sqdist(x, None, torch.tensor([0, 7]), 1.0)
    with pytest.raises(TypeError, match="x must be float32"):
        OPS.pairwise_sqdist(x.double(), None, torch.tensor([0, 6]), 1.0)


@SETTINGS
@given(indptr=st.lists(small_ints, min_size=1, max_size=4), budgets=st.lists(small_ints, min_size=0, max_size=4),
       kind=st.integers(-1, 3), method=st.integers(-1, 3), mode=st.integers(-1, 3), tie=st.integers(-1, 2),
       scale=weird_floats, eps=weird_floats, bias=weird_floats, limit=st.sampled_from([-1, 0, 100, 1 << 30]),
       seed=st.integers(-2**63, 2**63 - 1))
def test_facility_location_op_never_crashes(indptr, budgets, kind, method, mode, tie, scale, eps, bias, limit, seed):
    n = max(0, indptr[-1]) if indptr else 0
    x = torch.randn(n, 2)
    ptr, bud = torch.tensor(indptr, dtype=torch.int64), torch.tensor(budgets, dtype=torch.int64)
    sim = torch.rand(sum(max(0, b - a) ** 2 for a, b in zip(indptr, indptr[1:]))) if kind == 2 else None
    _rejects_naming(lambda: OPS.facility_location(x, None, sim, ptr, bud, kind, scale, bias, method, eps, seed, mode,
                                                  limit, tie),
                    "indptr", "budget", "similarity", "method", "mode", "tie_break", "scale", "eps", "bias",
                    "memory_limit")


def test_facility_location_op_rejects_bad_precomputed_similarity():
    x, ptr, bud = torch.zeros(3, 0), torch.tensor([0, 3]), torch.tensor([1])
    for bad in (float("nan"), float("inf"), -1.0):
        sim = torch.ones(9)
        sim[4] = bad
        with pytest.raises(ValueError, match="similarity must be finite and non-negative"):
            OPS.facility_location(x, None, sim, ptr, bud, 2, 1.0, 1.0, 0, 0.1, 0, 0, 1 << 30, 0)


@SETTINGS
@given(labels=st.lists(st.integers(-2, 5), min_size=0, max_size=6), c=st.integers(0, 4), loss=st.integers(-1, 2),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64]))
def test_grad_proxies_op_never_crashes(labels, c, loss, dtype):
    n = len(labels)
    logits = torch.randn(n, c).to(dtype)
    y = torch.tensor(labels, dtype=torch.int64)
    _rejects_naming(lambda: OPS.grad_proxies(logits, y, None, loss), "labels", "logits", "loss")


# --- the Python wrappers ------------------------------------------------------------------------
budgets_any = st.one_of(
    st.integers(-3, 30), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.text(max_size=2),
    st.lists(st.one_of(st.integers(-2, 12), st.floats(0, 5)), max_size=4),
    st.builds(np.int64, st.integers(-2, 30)), st.builds(np.float64, st.floats(0, 20)),
    st.none())


@SETTINGS
@given(budget=budgets_any, eps=st.one_of(weird_floats, st.text(max_size=1)), seed=st.one_of(st.integers(), st.floats()),
       method=st.sampled_from(["naive", "lazy", "stochastic", "greedy", 3]),
       tie_break=st.sampled_from(["low", "high", "LOW", None]), memory_limit=st.one_of(st.integers(-5, 10**9),
                                                                                         st.floats()))
def test_facility_location_rejections_name_the_parameter(budget, eps, seed, method, tie_break, memory_limit):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, generator=g)
    labels = torch.arange(24) % 3
    _rejects_naming(lambda: augcore.facility_location(x, budget, labels, eps=eps, seed=seed, method=method,
                                                      tie_break=tie_break, memory_limit=memory_limit),
                    "budget", "eps", "seed", "method", "tie_break", "memory_limit")


@pytest.mark.parametrize("budget", [1.9, [1, 2.5, 1], np.array([1.5, 1, 1]), torch.tensor(3.5), float("nan"),
                                    True, "3"])
def test_non_integer_budgets_are_rejected_naming_budget(budget):
    with pytest.raises((TypeError, ValueError), match="budget"):
        augcore.facility_location(torch.randn(30, 2), budget, torch.arange(30) % 3)


@pytest.mark.parametrize("budget", [np.int64(6), np.int32(6), torch.tensor(6), [np.int64(2)] * 3, np.array([2, 2, 2]),
                                    torch.tensor([2, 2, 2]), 6.0, torch.tensor(6.0), [2.0, 2.0, 2.0]])
def test_integer_budgets_of_any_kind_are_accepted(budget):  # whole numbers in float form included
    x = torch.randn(30, 2, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(30) % 3
    want = augcore.facility_location(x, 6, labels)
    got = augcore.facility_location(x, budget, labels)
    assert torch.equal(got.indices, want.indices) and torch.equal(got.gains, want.gains)


@SETTINGS
@given(n=st.integers(1, 25), d=st.integers(1, 4), classes=st.integers(1, 4), frac=st.floats(0, 1),
       dup=st.booleans(), seed=st.integers(0, 10**6),
       form=st.sampled_from(["numpy", "float64", "float16", "strided", "transposed"]),
       method=st.sampled_from(["naive", "lazy", "stochastic"]), tie_break=st.sampled_from(["low", "high"]))
def test_unusual_valid_inputs_give_the_plain_answer(n, d, classes, frac, dup, seed, form, method, tie_break):
    if method == "lazy" and tie_break == "high":
        tie_break = "low"
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    if dup:
        x[n // 2:] = x[: n - n // 2].clone()  # duplicates: exact ties everywhere
    labels = torch.randint(0, classes, (n,), generator=g)
    budget = int(frac * n)
    if form == "float16":
        x = x.half().float()  # the values a float16 input holds
    plain = augcore.facility_location(x, budget, labels, method=method, tie_break=tie_break, seed=seed)
    if form == "numpy":
        arg, lab = x.numpy(), labels.numpy()
    elif form == "float64":
        arg, lab = x.double(), labels.int()
    elif form == "float16":
        arg, lab = x.half(), labels
    elif form == "strided":
        arg, lab = torch.stack([x, x], 1)[:, 1], labels
    else:
        arg, lab = x.t().contiguous().t(), labels
    got = augcore.facility_location(arg, budget, lab, method=method, tie_break=tie_break, seed=seed)
    assert torch.equal(got.indices, plain.indices)
    assert torch.equal(got.gains, plain.gains)
    assert torch.equal(got.assignment, plain.assignment)


def test_empty_and_singleton_inputs():
    empty = augcore.facility_location(torch.zeros(0, 3), 0)
    assert empty.indices.numel() == 0 and empty.assignment.numel() == 0
    grouped = augcore.facility_location(torch.zeros(0, 3), 0, torch.zeros(0, dtype=torch.int64))
    assert grouped.indices.numel() == 0
    one = augcore.facility_location(torch.randn(4, 2), [1, 1, 1, 1], torch.arange(4))  # groups of one
    assert one.indices.tolist() == [0, 1, 2, 3] and one.weights.tolist() == [1, 1, 1, 1]
    assert augcore.pairwise_distances(torch.zeros(0, 2)).values.numel() == 0
    p = augcore.grad_proxies(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64))
    assert p.errors.shape == (0, 3)
