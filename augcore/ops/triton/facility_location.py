"""Segmented facility-location greedy in Triton: every group advances one step per launch.

Each greedy step is three kernels over all groups at once:

- ``_swap_kernel`` (stochastic only): one program per group applies the partial
  Fisher-Yates swaps to that group's ``remaining`` array, in order, with draws from
  the counter-based generator (``csrc/common/rng.h``; computed on the host with
  numpy: they depend on (seed, group, step, j) and the remaining count only, never
  on earlier picks, so no value comes back from the device);
- ``_gain_kernel``: the fused distance + similarity + marginal-gain reduction: a
  program takes one candidate and a block of points of its group, recomputes the
  squared distances from the proxies (sum over k of (x_ik - x_ck)^2 in k order, the
  CPU's per-pair arithmetic), applies exp(-d / scale) with the CPU's exp
  polynomial, and reduces max(0, s - m_i) over the block; partial sums are added in
  float64;
- ``_commit_kernel``: updates m_i and each point's pick rank with the chosen
  candidate's similarities (same code path, so m holds the same values the gains
  saw).

Picks are taken on the device (larger gain, ties to the smaller index); the only
device->host transfer is none at all until the caller reads the results. Memory is
O(N + G * sample) : no n x n matrix exists.

Scope: proxy space with the "exp" similarity (the reference code's default).
Exact last-layer distances, "craig" and precomputed matrices go to the compiled
kernels; asking this backend for them raises ``ValueError``.

Float notes: a pair's similarity is the CPU kernel's float32 value when the kernel
runs without FMA contraction (``enable_fp_fusion=False`` is passed at launch, and
the interpreter does no contraction). A block's partial gain is a ``tl.sum`` whose
order is Triton's, so gains match the CPU to float rounding and picks match unless
two candidates' gains lie within that rounding.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch
import triton
import triton.language as tl

_MASK32 = 0xFFFFFFFF


# --- counter-based draws, vectorised (the same functions as csrc/common/rng.h) -----------------
def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        z = x
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _mulhi64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """High 64 bits of the 128-bit product, from 32-bit halves (no overflow in uint64)."""
    m32 = np.uint64(_MASK32)
    s32 = np.uint64(32)
    with np.errstate(over="ignore"):
        al, ah, bl, bh = a & m32, a >> s32, b & m32, b >> s32
        lo_lo, hi_lo, lo_hi, hi_hi = al * bl, ah * bl, al * bh, ah * bh
        cross = (lo_lo >> s32) + (hi_lo & m32) + lo_hi
        return (hi_lo >> s32) + (cross >> s32) + hi_hi


def fisher_yates_targets(seed: int, groups: np.ndarray, step: int, remaining: np.ndarray, width: int) -> np.ndarray:
    """t[g, j] = j + uniform_below(counter_hash(seed, g, step, j), r_g - j) for j < width (uint64 math).

    Entries with j >= r_g are meaningless; callers only use j < count_g <= r_g.
    """
    key = _splitmix64(np.array([seed & ((1 << 64) - 1)], dtype=np.uint64))
    j = np.arange(width, dtype=np.uint64)[None, :]
    h = _splitmix64(_splitmix64(_splitmix64(key ^ groups.astype(np.uint64)[:, None]) ^ np.uint64(step)) ^ j)
    span = np.maximum(remaining.astype(np.int64)[:, None] - j.astype(np.int64), 1).astype(np.uint64)
    return (j + _mulhi64(h, span)).astype(np.int64)


# --- kernels -----------------------------------------------------------------------------------
@triton.jit
def _exp_nonpositive(x):
    """csrc/cpu/utils.h exp_nonpositive, operation by operation (float32)."""
    x = tl.maximum(x, -87.0)
    fx = x * 1.44269504088896341 + 0.5
    n = fx.to(tl.int32)  # truncation toward zero, as static_cast<int>
    n = n - (n.to(tl.float32) > fx).to(tl.int32)
    fn = n.to(tl.float32)
    x = x - fn * 0.693359375 + fn * 2.12194440e-4
    y = x * 0.0 + 1.9875691500e-4
    y = y * x + 1.3981999507e-3
    y = y * x + 8.3334519073e-3
    y = y * x + 4.1665795894e-2
    y = y * x + 1.6666665459e-1
    y = y * x + 5.0000001201e-1
    y = y * x * x + x + 1.0
    scale = ((n + 127) << 23).to(tl.float32, bitcast=True)
    return y * scale


@triton.jit
def _similarity_to(x_ptr, D, c_row, rows, mask, neg_inv_scale):
    """s(c, i) for the rows i of a block: exp(-sqrt(sum_k (x_ck - x_ik)^2) / scale), k in order."""
    acc = tl.zeros(rows.shape, dtype=tl.float32)
    for k in range(0, D):
        xc = tl.load(x_ptr + c_row.to(tl.int64) * D + k)
        xi = tl.load(x_ptr + rows.to(tl.int64) * D + k, mask=mask, other=0.0)
        diff = xc - xi
        acc = acc + diff * diff
    return _exp_nonpositive(tl.sqrt_rn(acc) * neg_inv_scale)


@triton.jit
def _swap_kernel(rem_ptr, indptr_ptr, count_ptr, target_ptr, width):
    g = tl.program_id(0)
    base = tl.load(indptr_ptr + g)
    count = tl.load(count_ptr + g)
    for j in range(0, count):
        t = tl.load(target_ptr + g * width + j)
        a = tl.load(rem_ptr + base + j)
        b = tl.load(rem_ptr + base + t)
        tl.store(rem_ptr + base + j, b)
        tl.store(rem_ptr + base + t, a)


@triton.jit
def _gain_kernel(x_ptr, rem_ptr, indptr_ptr, count_ptr, m_ptr, partial_ptr, D, neg_inv_scale, S_MAX, NB_MAX,
                 BLOCK_N: tl.constexpr):
    pid = tl.program_id(0)
    b = tl.program_id(1)
    g = pid // S_MAX
    q = pid % S_MAX
    count = tl.load(count_ptr + g)
    if q < count:
        base = tl.load(indptr_ptr + g)
        n = tl.load(indptr_ptr + g + 1) - base
        c = tl.load(rem_ptr + base + q)
        local = b * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = local < n
        s = _similarity_to(x_ptr, D, base + c, base + local, mask, neg_inv_scale)
        m = tl.load(m_ptr + base + local, mask=mask, other=0.0)
        contrib = tl.where(mask, tl.maximum(s - m, 0.0), 0.0)
        tl.store(partial_ptr + pid * NB_MAX + b, tl.sum(contrib, axis=0))


@triton.jit
def _commit_kernel(x_ptr, pick_ptr, indptr_ptr, m_ptr, assign_ptr, step, D, neg_inv_scale, BLOCK_N: tl.constexpr):
    g = tl.program_id(0)
    b = tl.program_id(1)
    c = tl.load(pick_ptr + g)
    if c >= 0:
        base = tl.load(indptr_ptr + g)
        n = tl.load(indptr_ptr + g + 1) - base
        local = b * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = local < n
        s = _similarity_to(x_ptr, D, base + c, base + local, mask, neg_inv_scale)
        m = tl.load(m_ptr + base + local, mask=mask, other=0.0)
        a = tl.load(assign_ptr + base + local, mask=mask, other=0)
        upd = mask & ((a < 0) | (s > m))
        tl.store(m_ptr + base + local, tl.maximum(m, s), mask=upd)
        tl.store(assign_ptr + base + local, a * 0 + step, mask=upd)


def _launch_options():
    return {} if _interpreting() else {"enable_fp_fusion": False}


def _interpreting() -> bool:
    import os
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


# --- driver -----------------------------------------------------------------------------------
def facility_location_triton(x: torch.Tensor, indptr: torch.Tensor, budgets: torch.Tensor, scale: float,
                             method: int, eps: float, seed: int, block_n: int = 128
                             ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Greedy facility location over CSR groups of sorted proxies ``x`` with s = exp(-d / scale).

    Same contract and outputs as the compiled op's first five: (picks (K,) sorted positions in
    greedy order per group, gains (K,) float64, gamma (K,) int64, assignment (N,) sorted position
    of each point's medoid or -1, objective (G,) float64). ``indptr``/``budgets`` are host int64
    tensors; ``method`` 0/1 (naive; lazy returns naive's picks) or 2 (stochastic).
    """
    if x.dim() != 2 or x.dtype != torch.float32 or not x.is_contiguous():
        raise ValueError("facility_location_triton: x must be a contiguous float32 (N, D) tensor")
    if method not in (0, 1, 2):
        raise ValueError(f"facility_location_triton: unknown method {method}")
    if not 0.0 < eps < 1.0:
        raise ValueError(f"facility_location_triton: eps must lie in (0, 1), got {eps}")
    if not scale > 0:
        raise ValueError(f"facility_location_triton: scale must be positive, got {scale}")
    if x.device.type != "cuda" and not _interpreting():
        raise ValueError("facility_location_triton: Triton kernels need CUDA tensors "
                         "(or TRITON_INTERPRET=1 set before importing augcore.ops.triton, for CPU tensors)")
    if indptr.device.type != "cpu" or budgets.device.type != "cpu":
        raise ValueError("facility_location_triton: indptr and budgets must be host tensors")
    dev = x.device
    ptr = indptr.to(torch.int64)
    bud = budgets.to(torch.int64)
    G, N, D = ptr.numel() - 1, x.shape[0], x.shape[1]
    sizes = (ptr[1:] - ptr[:-1])
    if G < 0 or int(ptr[0]) != 0 or int(ptr[-1]) != N or bud.numel() != G:
        raise ValueError("facility_location_triton: indptr/budgets mismatch")
    if bool((bud < 0).any()) or bool((bud > sizes).any()):
        raise ValueError("facility_location_triton: every budget must lie in [0, group size]")
    sel_ptr = torch.zeros(G + 1, dtype=torch.int64)
    torch.cumsum(bud, 0, out=sel_ptr[1:])
    K = int(sel_ptr[-1])
    picks = torch.empty(K, dtype=torch.int64, device=dev)
    gains = torch.empty(K, dtype=torch.float64, device=dev)
    gamma = torch.zeros(K, dtype=torch.int64, device=dev)
    assignment = torch.full((N,), -1, dtype=torch.int64, device=dev)
    objective = torch.zeros(G, dtype=torch.float64, device=dev)
    if K == 0:
        return picks, gains, gamma, assignment, objective

    sizes_np, bud_np = sizes.numpy(), bud.numpy()
    stochastic = method == 2
    sample = np.zeros(G, dtype=np.int64)
    active = bud_np > 0
    # the CPU's expression: ceil(n / k * ln(1 / eps)) in double
    sample[active] = [math.ceil(float(n) / float(k) * math.log(1.0 / eps))
                      for n, k in zip(sizes_np[active], bud_np[active])]
    k_max = int(bud_np.max())
    n_max = int(sizes_np.max())
    s_max = int(min(n_max, sample.max())) if stochastic else n_max
    nb_max = triton.cdiv(n_max, block_n)
    groups_np = np.arange(G)

    ptr_dev = ptr.to(dev)
    local_idx = torch.arange(N, device=dev) - torch.repeat_interleave(ptr_dev[:-1], sizes.to(dev), output_size=N)
    rem = local_idx.to(torch.int32)
    m = torch.zeros(N, dtype=torch.float32, device=dev)
    rank = torch.full((N,), -1, dtype=torch.int64, device=dev)
    partial = torch.empty(G * s_max * nb_max, dtype=torch.float32, device=dev)
    base_dev = ptr_dev[:-1]
    group_picks = torch.full((G, k_max), -1, dtype=torch.int64, device=dev)
    group_gains = torch.zeros((G, k_max), dtype=torch.float64, device=dev)
    neg_inv_scale = float(np.float32(-1.0 / scale))
    opts = _launch_options()
    q_range = torch.arange(s_max, device=dev)
    big = torch.iinfo(torch.int64).max

    for step in range(k_max):
        live = bud_np > step
        remaining = np.where(live, sizes_np - step, 0)
        count_np = np.where(live, np.minimum(remaining, sample) if stochastic else remaining, 0)
        count = torch.from_numpy(count_np).to(dev, non_blocking=True)
        if stochastic:
            targets = torch.from_numpy(fisher_yates_targets(seed, groups_np, step, remaining, s_max)).to(dev)
            _swap_kernel[(G,)](rem, ptr_dev, count, targets, s_max, **opts)
        _gain_kernel[(G * s_max, nb_max)](x, rem, ptr_dev, count, m, partial, D, neg_inv_scale, s_max, nb_max,
                                          BLOCK_N=block_n, **opts)
        # per candidate: the float block partials summed in float64
        cand_gain = partial.view(G, s_max, nb_max).to(torch.float64).sum(-1)
        valid = q_range[None, :] < count[:, None]
        cand_idx = rem[(base_dev[:, None] + q_range[None, :].clamp_max(n_max - 1)).clamp_max(max(N - 1, 0))]
        cand_gain = torch.where(valid, cand_gain, torch.full_like(cand_gain, -1.0))
        best_gain = cand_gain.max(1, keepdim=True).values
        tie_idx = torch.where(valid & (cand_gain == best_gain), cand_idx.to(torch.int64), torch.full_like(
            cand_idx, big, dtype=torch.int64))
        best_idx = tie_idx.min(1).values  # larger gain, ties to the smaller index
        best_q = (valid & (tie_idx == best_idx[:, None])).to(torch.int64).argmax(1)
        live_dev = torch.from_numpy(live).to(dev)
        pick = torch.where(live_dev, best_idx, torch.full_like(best_idx, -1))
        group_picks[:, step] = pick
        group_gains[:, step] = best_gain[:, 0]
        # swap-remove the pick from each live group's remaining array
        last = (base_dev + torch.from_numpy(np.maximum(remaining - 1, 0)).to(dev)).clamp_max(max(N - 1, 0))
        slot = (base_dev + best_q).clamp_max(max(N - 1, 0))
        rem[slot[live_dev]] = rem[last[live_dev]]
        _commit_kernel[(G, nb_max)](x, pick, ptr_dev, m, rank, step, D, neg_inv_scale, BLOCK_N=block_n, **opts)

    # pack per-group picks, ranks -> positions, gamma, objective (sequential float64 sum per group)
    keep = torch.arange(k_max, device=dev)[None, :] < bud.to(dev)[:, None]
    picks.copy_((group_picks + base_dev[:, None])[keep])
    gains.copy_(group_gains[keep])
    group_of = torch.repeat_interleave(torch.arange(G, device=dev), sizes.to(dev), output_size=N)
    assigned = rank >= 0
    sel_dev = sel_ptr.to(dev)
    flat = sel_dev[group_of[assigned]] + rank[assigned]
    assignment[assigned] = picks[flat]
    gamma.index_add_(0, flat, torch.ones_like(flat))
    m64 = m.to(torch.float64)
    objective.index_add_(0, group_of, m64)
    return picks, gains, gamma, assignment, objective
