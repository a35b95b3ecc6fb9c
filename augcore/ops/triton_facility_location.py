"""``facility_location(..., backend="triton")``: the portable GPU backend.

The host side of the Triton kernels (``triton_kernels.py``): it takes the arguments of
the compiled op (points sorted by group, host ``indptr``/``budgets``) and returns what the
op returns, computed by one persistent greedy program per group (every step in one
launch) and, in dense mode, one fused distance -> similarity launch. Picks, gains,
weights, assignments and objectives equal the CPU op's bit for bit; the one thing the
CPU runs that this backend refuses is ``method="lazy"`` with ``tie_break="high"`` or
``"apricot"`` (heap replays), as the CUDA op does. No host synchronisation: the
per-group fixed point is computed on the device.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional, Tuple

import numpy as np
import torch
import triton

from augcore.ops import triton_kernels as K

_NAIVE, _LAZY, _STOCHASTIC = 0, 1, 2
_EXP, _CRAIG, _PRECOMPUTED, _CRAIG_SQUARED = 0, 1, 2, 3
_DENSE, _ON_THE_FLY = 1, 2
_TIES_LOW, _TIES_HIGH = 0, 1


def interpreted() -> bool:
    """Whether the kernels were built for Triton's CPU interpreter (``TRITON_INTERPRET=1``
    when they were first imported)."""
    return K.INTERPRETED


def check_device(device: torch.device, name: str) -> None:
    """Raises unless Triton can run on ``device``: any GPU torch's Triton supports, or the
    CPU when the kernels were built for the interpreter."""
    if device.type == "cpu" and not interpreted():
        raise ValueError(
            f"backend='triton' runs on GPU tensors (CUDA, ROCm, XPU); {name} is on the CPU. Use "
            "backend='cpu' (or 'auto') for CPU tensors; Triton's CPU interpreter is for testing: set "
            "TRITON_INTERPRET=1 before augcore's Triton kernels are first imported")


def _pow2_at_least(v: int, low: int, high: int) -> int:
    return max(low, min(high, 1 << max(0, int(v) - 1).bit_length()))


class _Stopwatch:
    """Device seconds between marks: events on a GPU (read when asked), wall clock in the
    interpreter (which runs synchronously)."""

    def __init__(self, device: torch.device):
        self._events = None
        if device.type == "cuda":
            self._events = torch.cuda.Event
        elif device.type == "xpu":
            self._events = torch.xpu.Event
        self._marks = []

    def mark(self) -> None:
        if self._events is None:
            self._marks.append(time.perf_counter())
        else:
            event = self._events(enable_timing=True)
            event.record()
            self._marks.append(event)

    def seconds(self) -> Callable[[], Tuple[float, ...]]:
        marks = list(self._marks)
        if self._events is None:
            return lambda: tuple(b - a for a, b in zip(marks, marks[1:]))

        def read() -> Tuple[float, ...]:
            marks[-1].synchronize()
            return tuple(a.elapsed_time(b) / 1e3 for a, b in zip(marks, marks[1:]))
        return read


def facility_location_triton(x: torch.Tensor, embeddings: Optional[torch.Tensor], similarity: Optional[torch.Tensor],
                             indptr: torch.Tensor, budgets: torch.Tensor, kind: int, scale: float, bias: float,
                             method: int, eps: float, seed: int, mode: int, memory_limit: int, tie_break: int):
    """The compiled op's contract on Triton; returns (picks, gains, gamma, assignment
    positions, objective, device seconds as a callable giving (similarity, greedy))."""
    if method == _LAZY and tie_break != _TIES_LOW:
        raise ValueError("tie_break='high' and 'apricot' with method='lazy' replay a library's heap and run on CPU "
                         "tensors only (backend='cpu'); backend='triton' takes tie_break='low' with 'lazy', or "
                         "'naive'/'stochastic' with any tie_break")
    with np.errstate(over="ignore"):
        neg_inv_scale = np.float32(-1.0 / scale)  # the CPU op's static_cast<float>(-1.0 / scale)
    if not (scale > 0 and np.isfinite(neg_inv_scale)):
        raise ValueError(f"scale must be a positive number whose inverse is a finite float32, got {scale}")
    log_inv_eps = math.log(1.0 / eps) if eps > 0 else math.inf
    if not math.isfinite(log_inv_eps):
        raise ValueError(f"eps must be large enough that log(1/eps) is finite, got {eps}")
    device = x.device
    check_device(device, "proxies")
    sizes = (indptr[1:] - indptr[:-1]).tolist()
    ks = budgets.tolist()
    G, N = len(sizes), x.shape[0]
    K_total = int(sum(ks))
    pick_offsets = np.concatenate([[0], np.cumsum(ks, dtype=np.int64)]).astype(np.int64)
    active = [g for g in range(G) if ks[g] > 0]
    long = dict(dtype=torch.int64, device=device)
    assign_local = torch.full((N,), -1, **long)
    picks_local = torch.empty(K_total, **long)
    gain_fixed = torch.empty(K_total, **long)
    objective = torch.zeros(G, dtype=torch.float64, device=device)
    watch = _Stopwatch(device)
    watch.mark()
    if not active:
        watch.mark()
        watch.mark()
        return (picks_local, gain_fixed.to(torch.float64), torch.zeros(0, **long), assign_local, objective,
                watch.seconds())

    A = len(active)
    base = [int(indptr[g]) for g in active]
    n_act = [sizes[g] for g in active]
    k_act = [ks[g] for g in active]
    precomputed = kind == _PRECOMPUTED
    stored = precomputed or mode == _DENSE or (
        mode != _ON_THE_FLY and 4 * sum(n * n for n in n_act) <= memory_limit)
    if precomputed:
        all_offsets = np.concatenate([[0], np.cumsum(np.square(np.asarray(sizes, dtype=np.int64)))])
        sim_off = [int(all_offsets[g]) for g in active]
    else:
        sim_off = np.concatenate([[0], np.cumsum(np.square(np.asarray(n_act, dtype=np.int64)))[:-1]]).tolist()
    samples = [max(1, min(n, math.ceil(n / k * log_inv_eps))) for n, k in zip(n_act, k_act)]
    log2_sizes = [max(0, n - 1).bit_length() for n in n_act]  # smallest L with 2^L >= n
    meta = torch.tensor([active, base, n_act, k_act, pick_offsets[active].tolist(), sim_off, samples], dtype=torch.int64)
    group_ids, bases, group_sizes, group_budgets, pick_off, sim_offsets, sample_sizes = meta.to(device).unbind(0)
    log2_size = torch.tensor(log2_sizes, dtype=torch.int32).to(device)

    D = x.shape[1]
    H = embeddings.shape[1] if embeddings is not None else 0
    has_emb = embeddings is not None
    emb = embeddings if has_emb else x
    sq = x.new_empty(N if has_emb else 1)
    options = dict(K.COMPILE_OPTIONS)
    tile = 64 if interpreted() else 32
    if has_emb:
        K.embedding_sqnorm_kernel[(triton.cdiv(N, 128),)](x, emb, sq, N, D, H, float(bias), BLOCK=128, **options)

    # the bound of each group's similarities, as float32 bits
    bound_bits = torch.zeros(A, dtype=torch.int32, device=device)
    max_n = max(n_act)
    block = _pow2_at_least(max_n, 16, tile)
    tiles = triton.cdiv(max_n, block)
    sim_kind = _EXP if precomputed else kind
    if kind in (_CRAIG, _CRAIG_SQUARED):
        K.max_sqdist_kernel[(A, tiles, tiles)](x, emb, sq, bases, group_sizes, bound_bits, D, H, float(bias),
                                               KIND=kind, HAS_EMB=has_emb, BLOCK=block, **options)
    elif precomputed:
        areas = group_sizes * group_sizes
        chunk = 1024
        K.block_max_kernel[(A, triton.cdiv(max_n * max_n, chunk))](similarity, sim_offsets, areas, bound_bits,
                                                                  BLOCK=chunk, **options)
    else:
        bound_bits.fill_(int(np.float32(1.0).view(np.int32)))
    dmax = torch.empty(A, dtype=torch.float32, device=device)
    magic = torch.empty(A, dtype=torch.float64, device=device)
    magic_bits = torch.empty(A, **long)
    quantum = torch.empty(A, dtype=torch.float64, device=device)
    fp_block = _pow2_at_least(A, 16, 1024)
    K.fixed_point_kernel[(triton.cdiv(A, fp_block),)](bound_bits, log2_size, dmax, magic, magic_bits, quantum, A,
                                                     KIND=sim_kind, BLOCK=fp_block, **options)

    sim = similarity
    if stored and not precomputed:
        sim = torch.empty(sum(n * n for n in n_act), dtype=torch.float32, device=device)
        K.dense_similarity_kernel[(A, tiles, tiles)](x, emb, sq, bases, group_sizes, sim_offsets, dmax, sim, D, H,
                                                     float(bias), float(neg_inv_scale), KIND=kind, HAS_EMB=has_emb,
                                                     BLOCK=block, **options)
    if sim is None:
        sim = x.new_empty(1)
    watch.mark()

    m_work = torch.empty(N, dtype=torch.float32, device=device)
    rem_work = torch.empty(N, **long)
    draw_work = torch.empty(N, **long)
    objective_fixed = torch.empty(A, **long)
    block_n = _pow2_at_least(max_n, 16, 128)
    block_c = _pow2_at_least(max_n, 16, 64 if interpreted() else 32)
    K.greedy_kernel[(A,)](x, emb, sq, sim, group_ids, bases, group_sizes, group_budgets, pick_off, sim_offsets,
                          sample_sizes, dmax, magic, magic_bits, m_work, assign_local, rem_work, draw_work,
                          picks_local, gain_fixed, objective_fixed, torch.tensor([seed], **long), D, H,
                          float(bias), float(neg_inv_scale), KIND=sim_kind, HAS_EMB=has_emb, STORED=stored, METHOD=method,
                          TIES_HIGH=tie_break == _TIES_HIGH, BLOCK_C=block_c, BLOCK_N=block_n, **options)
    watch.mark()

    # back to the op's outputs: sorted positions, float64 gains, gamma; all on the device
    group_of_pick = torch.repeat_interleave(torch.arange(A, device=device), group_budgets, output_size=K_total)
    picks = picks_local + bases[group_of_pick]
    gains = gain_fixed.to(torch.float64) * quantum[group_of_pick]
    objective[group_ids] = objective_fixed.to(torch.float64) * quantum
    group_of_point = torch.repeat_interleave(torch.arange(G, device=device), (indptr[1:] - indptr[:-1]).to(device),
                                             output_size=N)
    assigned = assign_local >= 0
    assign_pos = torch.where(assigned, assign_local + indptr[:-1].to(device)[group_of_point], assign_local)
    rank = torch.zeros(N, **long)
    rank[picks] = torch.arange(K_total, device=device)
    # gathers and a scatter-add, no boolean indexing: no host synchronisation
    gamma = torch.zeros(K_total, **long).index_add_(0, rank[assign_pos.clamp_min(0)], assigned.to(torch.int64))
    return picks, gains, gamma, assign_pos, objective, watch.seconds()
