"""Triton kernels of the portable GPU facility-location backend.

Every value here is computed by the same IEEE operations, in the same order, as the CPU
kernels (``csrc/cpu/geometry.h``, ``csrc/common/{exp,fixed_point,rng}.h``), so a launch gives
the CPU op's picks and gains bit for bit:

* squared distances are k-ordered sums with one rounding per operation (the kernels are
  compiled with ``enable_fp_fusion=False``: no FMA contraction); "craig_squared" sums in
  float64 and rounds once;
* square roots are ``sqrt_rn`` (correctly rounded, as the CPU's ``sqrtps``), never
  Triton's approximate ``sqrt``; no division is evaluated on the device;
* the "exp" similarity is the project's polynomial (Cephes' expf, ``exp_nonpositive``);
* every gain term max(0, s - m) becomes an integer by one float64 addition of a magic
  constant, and gains are integer sums, so ``tl.sum`` order cannot change them;
* stochastic samples use the counter-based generator (splitmix64, a 64x64 -> 128
  multiply-high done in 32-bit halves) and the CPU's partial Fisher-Yates swaps.

The module is imported on first use of ``backend="triton"``: Triton decides at decoration
time whether kernels run compiled or in its interpreter (``TRITON_INTERPRET=1``).
"""
from __future__ import annotations

import numpy as np
import triton
import triton.language as tl

# Constants as exactly representable float32 values, so that no conversion can round them.
_F32 = lambda v: float(np.float32(v))  # noqa: E731
FLT_MAX = tl.constexpr(float(np.finfo(np.float32).max))
EXP_LOWEST = tl.constexpr(-87.0)
LOG2E = tl.constexpr(_F32(1.44269504088896341))
LN2_HI = tl.constexpr(_F32(0.693359375))
LN2_LO = tl.constexpr(_F32(2.12194440e-4))
EXP_P0 = tl.constexpr(_F32(1.9875691500e-4))
EXP_P1 = tl.constexpr(_F32(1.3981999507e-3))
EXP_P2 = tl.constexpr(_F32(8.3334519073e-3))
EXP_P3 = tl.constexpr(_F32(4.1665795894e-2))
EXP_P4 = tl.constexpr(_F32(1.6666665459e-1))
EXP_P5 = tl.constexpr(_F32(5.0000001201e-1))

# similarity kinds and methods: the op's integer codes (csrc/ops.h)
KIND_EXP = tl.constexpr(0)
KIND_CRAIG = tl.constexpr(1)
KIND_CRAIG_SQUARED = tl.constexpr(3)
METHOD_STOCHASTIC = tl.constexpr(2)

COMPILE_OPTIONS = {"enable_fp_fusion": False}
# Triton builds each kernel for its interpreter or for the GPU when it is decorated
INTERPRETED = bool(triton.knobs.runtime.interpret)


# --- element-wise pieces -----------------------------------------------------------------
@triton.jit
def exp_nonpositive(x):
    """common/exp.h: Cephes' expf polynomial for x <= 0, operation for operation."""
    x = tl.where(x < EXP_LOWEST, EXP_LOWEST, x)
    fn = tl.floor(x * LOG2E + 0.5)
    x = x - fn * LN2_HI + fn * LN2_LO
    y = x * EXP_P0 + EXP_P1  # common/exp.h: y = p0; y = y * x + p1
    y = y * x + EXP_P2
    y = y * x + EXP_P3
    y = y * x + EXP_P4
    y = y * x + EXP_P5
    y = y * x * x + x + 1.0
    two_n = ((fn.to(tl.int32) + 127) << 23).to(tl.float32, bitcast=True)
    return y * two_n


@triton.jit
def similarity_from_sqdist(d2, neg_inv_scale, dmax, KIND: tl.constexpr):
    """SimilarityTransform of facility_location_cpu.cpp; NaN and overflow count as FLT_MAX."""
    d2 = tl.where(d2 <= FLT_MAX, d2, FLT_MAX)
    if KIND == KIND_EXP:
        s = exp_nonpositive(tl.sqrt_rn(d2) * neg_inv_scale)
    elif KIND == KIND_CRAIG:
        s = dmax - tl.sqrt_rn(d2)
    else:
        s = dmax - d2
    return s


@triton.jit
def pair_sqdist(x_ptr, emb_ptr, sq_ptr, rows, cols, mask, D, H, bias, KIND: tl.constexpr,
                HAS_EMB: tl.constexpr):
    """Squared distances between sorted rows ``rows`` (a column vector) and ``cols`` (a row
    vector): GroupGeometry::sqdist_tile, every sum in k order."""
    if HAS_EMB:
        # exact last-layer gradients: A_i + A_j - 2 <e_i, e_j> (<h_i, h_j> + b)
        ex = tl.zeros(mask.shape, tl.float32)
        for k in range(D):
            a = tl.load(x_ptr + rows * D + k, mask=mask, other=0.0)
            b = tl.load(x_ptr + cols * D + k, mask=mask, other=0.0)
            ex += a * b
        eh = tl.zeros(mask.shape, tl.float32)
        for k in range(H):
            a = tl.load(emb_ptr + rows * H + k, mask=mask, other=0.0)
            b = tl.load(emb_ptr + cols * H + k, mask=mask, other=0.0)
            eh += a * b
        ai = tl.load(sq_ptr + rows, mask=mask, other=0.0)
        aj = tl.load(sq_ptr + cols, mask=mask, other=0.0)
        v = (ai + aj) - 2.0 * (ex * (eh + bias))
        d2 = tl.where(v > 0.0, v, 0.0)  # NaN -> 0, as the CPU and the GPU's fmaxf
    elif KIND == KIND_CRAIG_SQUARED:
        acc = tl.zeros(mask.shape, tl.float64)
        for k in range(D):
            a = tl.load(x_ptr + rows * D + k, mask=mask, other=0.0).to(tl.float64)
            b = tl.load(x_ptr + cols * D + k, mask=mask, other=0.0).to(tl.float64)
            diff = a - b  # exact in float64
            acc += diff * diff
        d2 = acc.to(tl.float32)
    else:
        acc = tl.zeros(mask.shape, tl.float32)
        for k in range(D):
            a = tl.load(x_ptr + rows * D + k, mask=mask, other=0.0)
            b = tl.load(x_ptr + cols * D + k, mask=mask, other=0.0)
            acc += (a - b) * (a - b)
        d2 = acc
    return d2


@triton.jit
def fixed_point_terms(s, m, magic, magic_bits):
    """fixed_point.h: round(max(0, s - m) * 2^F) as int64, by one float64 addition."""
    t = s - m
    t = tl.where(t > 0.0, t, 0.0)
    return (t.to(tl.float64) + magic).to(tl.int64, bitcast=True) - magic_bits


@triton.jit
def splitmix64(x):
    x = x + 0x9E3779B97F4A7C15
    z = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)


@triton.jit
def multiply_high64(a, b):
    """The high 64 bits of the 128-bit product of two uint64 values (rng.h uniform_below)."""
    low = 0xFFFFFFFF
    a_lo = a & low
    a_hi = a >> 32
    b_lo = b & low
    b_hi = b >> 32
    lo_lo = a_lo * b_lo
    lo_hi = a_lo * b_hi
    hi_lo = a_hi * b_lo
    mid = (lo_lo >> 32) + (lo_hi & low) + (hi_lo & low)
    return a_hi * b_hi + (lo_hi >> 32) + (hi_lo >> 32) + (mid >> 32)


# --- kernels -------------------------------------------------------------------------------
@triton.jit
def embedding_sqnorm_kernel(x_ptr, emb_ptr, sq_ptr, N, D, H, bias, BLOCK: tl.constexpr):
    """A_i = <e_i, e_i> (<h_i, h_i> + b), each dot in k order (GroupGeometry's sq_)."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < N
    ex = tl.zeros([BLOCK], tl.float32)
    for k in range(D):
        a = tl.load(x_ptr + i * D + k, mask=mask, other=0.0)
        ex += a * a
    eh = tl.zeros([BLOCK], tl.float32)
    for k in range(H):
        a = tl.load(emb_ptr + i * H + k, mask=mask, other=0.0)
        eh += a * a
    tl.store(sq_ptr + i, ex * (eh + bias), mask=mask)


@triton.jit
def max_sqdist_kernel(x_ptr, emb_ptr, sq_ptr, base_ptr, size_ptr, out_bits_ptr, D, H, bias,
                      KIND: tl.constexpr, HAS_EMB: tl.constexpr, BLOCK: tl.constexpr):
    """Each group's largest (finite) squared distance, for the craig kinds. Squared
    distances are >= 0, so their float bits order as integers: an integer atomic max is
    exact in any order."""
    u = tl.program_id(0)
    base = tl.load(base_ptr + u)
    n = tl.load(size_ptr + u)
    i = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    j = tl.program_id(2).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    if (tl.program_id(1) * BLOCK < n) & (tl.program_id(2) * BLOCK < n):
        mask = (i[:, None] < n) & (j[None, :] < n)
        d2 = pair_sqdist(x_ptr, emb_ptr, sq_ptr, base + i[:, None], base + j[None, :], mask, D, H, bias,
                         KIND, HAS_EMB)
        d2 = tl.where(d2 <= FLT_MAX, d2, FLT_MAX)
        bits = tl.where(mask, d2.to(tl.int32, bitcast=True), 0)
        tl.atomic_max(out_bits_ptr + u, tl.max(tl.max(bits, axis=1), axis=0))


@triton.jit
def dense_similarity_kernel(x_ptr, emb_ptr, sq_ptr, base_ptr, size_ptr, sim_off_ptr, dmax_ptr, sim_ptr,
                            D, H, bias, neg_inv_scale, KIND: tl.constexpr, HAS_EMB: tl.constexpr,
                            BLOCK: tl.constexpr):
    """Fused distance -> similarity for one tile of a group's n x n block (dense mode)."""
    u = tl.program_id(0)
    base = tl.load(base_ptr + u)
    n = tl.load(size_ptr + u)
    i = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    j = tl.program_id(2).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    if (tl.program_id(1) * BLOCK < n) & (tl.program_id(2) * BLOCK < n):
        mask = (i[:, None] < n) & (j[None, :] < n)
        d2 = pair_sqdist(x_ptr, emb_ptr, sq_ptr, base + i[:, None], base + j[None, :], mask, D, H, bias,
                         KIND, HAS_EMB)
        s = similarity_from_sqdist(d2, neg_inv_scale, tl.load(dmax_ptr + u), KIND)
        tl.store(sim_ptr + tl.load(sim_off_ptr + u) + i[:, None] * n + j[None, :], s, mask=mask)


@triton.jit
def candidate_similarities(x_ptr, emb_ptr, sq_ptr, sim_ptr, sim_off, base, n, cand, pts, mask, dmax,
                           D, H, bias, neg_inv_scale, KIND: tl.constexpr, HAS_EMB: tl.constexpr,
                           STORED: tl.constexpr):
    """s[c, i] for candidates ``cand`` (column vector) and points ``pts`` (row vector),
    local positions: read from the stored block, or recomputed from the points."""
    if STORED:
        s = tl.load(sim_ptr + sim_off + cand * n + pts, mask=mask, other=0.0)
    else:
        d2 = pair_sqdist(x_ptr, emb_ptr, sq_ptr, base + cand, base + pts, mask, D, H, bias, KIND, HAS_EMB)
        s = similarity_from_sqdist(d2, neg_inv_scale, dmax, KIND)
    return s


@triton.jit(do_not_specialize=["D", "H"])
def greedy_kernel(x_ptr, emb_ptr, sq_ptr, sim_ptr,
                  group_ptr, base_ptr, size_ptr, budget_ptr, pick_off_ptr, sim_off_ptr, sample_ptr,
                  dmax_ptr, magic_ptr, magic_bits_ptr,
                  m_ptr, assign_ptr, rem_ptr, draw_ptr,
                  pick_ptr, gain_ptr, objective_ptr,
                  seed_ptr, D, H, bias, neg_inv_scale,
                  KIND: tl.constexpr, HAS_EMB: tl.constexpr, STORED: tl.constexpr, METHOD: tl.constexpr,
                  TIES_HIGH: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr):
    """One program per group runs every greedy step of that group (GreedySolver::naive /
    ::stochastic of facility_location_cpu.cpp). m, the assignment, the remaining array and
    the draws live in O(N) global workspaces at the group's offset; barriers order each
    phase's stores before the next phase's loads by other threads."""
    u = tl.program_id(0)
    group = tl.load(group_ptr + u)
    base = tl.load(base_ptr + u)
    n = tl.load(size_ptr + u)
    k = tl.load(budget_ptr + u)
    pick_off = tl.load(pick_off_ptr + u)
    sim_off = tl.load(sim_off_ptr + u)
    sample = tl.load(sample_ptr + u)
    dmax = tl.load(dmax_ptr + u)
    magic = tl.load(magic_ptr + u)
    magic_bits = tl.load(magic_bits_ptr + u)
    m_g = m_ptr + base
    assign_g = assign_ptr + base
    rem_g = rem_ptr + base
    draw_g = draw_ptr + base
    lanes_c = tl.arange(0, BLOCK_C).to(tl.int64)
    lanes_n = tl.arange(0, BLOCK_N).to(tl.int64)

    for i0 in range(0, n, BLOCK_N):
        i = i0 + lanes_n
        tl.store(m_g + i, tl.zeros([BLOCK_N], tl.float32), mask=i < n)
        tl.store(assign_g + i, tl.full([BLOCK_N], -1, tl.int64), mask=i < n)
        tl.store(rem_g + i, i, mask=i < n)
    tl.debug_barrier()

    group_key = group.to(tl.uint64)
    # the seed comes as an int64 tensor: a scalar argument's type would follow its value (i32, u32, i64)
    seed_key = splitmix64(tl.load(seed_ptr).to(tl.uint64, bitcast=True))
    for step in range(k):
        r = n - step
        s_count = r
        if METHOD == METHOD_STOCHASTIC:
            s_count = tl.minimum(r, sample)
            # the draws depend on (seed, group, step, j) and r only: computed in parallel, then
            # applied as the CPU's partial Fisher-Yates swaps, in order
            step_key = splitmix64(splitmix64(seed_key ^ group_key) ^ tl.cast(step, tl.uint64))
            for j0 in range(0, s_count, BLOCK_C):
                j = j0 + lanes_c
                h = splitmix64(step_key ^ j.to(tl.uint64))
                t = j + multiply_high64(h, (r - j).to(tl.uint64)).to(tl.int64)
                tl.store(draw_g + j, t, mask=j < s_count)
            tl.debug_barrier()
            for j in range(s_count):
                t = tl.load(draw_g + j, volatile=True)
                a = tl.load(rem_g + j, volatile=True)
                b = tl.load(rem_g + t, volatile=True)
                tl.debug_barrier()
                tl.store(rem_g + j, b)
                tl.store(rem_g + t, a)
                tl.debug_barrier()

        best_gain = tl.full([], -1, tl.int64)
        best_idx = tl.full([], -1, tl.int64)
        best_q = tl.full([], 0, tl.int64)
        for c0 in range(0, s_count, BLOCK_C):
            q = c0 + lanes_c
            c_mask = q < s_count
            cand = tl.load(rem_g + q, mask=c_mask, other=0, volatile=True)
            gain = tl.zeros([BLOCK_C], tl.int64)
            for i0 in range(0, n, BLOCK_N):
                i = i0 + lanes_n
                mask = c_mask[:, None] & (i[None, :] < n)
                s = candidate_similarities(x_ptr, emb_ptr, sq_ptr, sim_ptr, sim_off, base, n, cand[:, None],
                                           i[None, :], mask, dmax, D, H, bias, neg_inv_scale, KIND, HAS_EMB,
                                           STORED)
                m = tl.load(m_g + i, mask=i < n, other=0.0, volatile=True)
                terms = fixed_point_terms(s, m[None, :], magic, magic_bits)
                gain += tl.sum(tl.where(mask, terms, 0), axis=1)
            gain = tl.where(c_mask, gain, -1)
            block_gain = tl.max(gain, axis=0)
            tied = c_mask & (gain == block_gain)
            if TIES_HIGH:
                block_idx = tl.max(tl.where(tied, cand, -1), axis=0)
                wins = (block_gain > best_gain) | ((block_gain == best_gain) & (block_idx > best_idx))
            else:
                block_idx = tl.min(tl.where(tied, cand, n), axis=0)
                wins = (block_gain > best_gain) | ((block_gain == best_gain) & (block_idx < best_idx))
            block_q = tl.min(tl.where(tied & (cand == block_idx), q, s_count), axis=0)
            best_gain = tl.where(wins, block_gain, best_gain)
            best_idx = tl.where(wins, block_idx, best_idx)
            best_q = tl.where(wins, block_q, best_q)

        # commit: a point moves to the pick only if strictly more similar (the first pick takes all)
        best_row = tl.zeros([1], tl.int64) + best_idx
        for i0 in range(0, n, BLOCK_N):
            i = i0 + lanes_n
            i_mask = i < n
            s = candidate_similarities(x_ptr, emb_ptr, sq_ptr, sim_ptr, sim_off, base, n, best_row[:, None],
                                       i[None, :], i_mask[None, :], dmax, D, H, bias, neg_inv_scale, KIND,
                                       HAS_EMB, STORED)
            s = tl.max(s, axis=0)
            m = tl.load(m_g + i, mask=i_mask, other=0.0, volatile=True)
            owner = tl.load(assign_g + i, mask=i_mask, other=0, volatile=True)
            moves = (owner < 0) | (s > m)
            tl.store(assign_g + i, tl.where(moves, best_idx, owner), mask=i_mask)
            tl.store(m_g + i, tl.where(moves, tl.maximum(m, s), m), mask=i_mask)
        tl.store(pick_ptr + pick_off + step, best_idx)
        tl.store(gain_ptr + pick_off + step, best_gain)
        last = tl.load(rem_g + r - 1, volatile=True)
        tl.debug_barrier()
        tl.store(rem_g + best_q, last)
        tl.debug_barrier()

    objective = tl.zeros([BLOCK_N], tl.int64)
    for i0 in range(0, n, BLOCK_N):
        i = i0 + lanes_n
        m = tl.load(m_g + i, mask=i < n, other=0.0, volatile=True)
        terms = (m.to(tl.float64) + magic).to(tl.int64, bitcast=True) - magic_bits
        objective += tl.where(i < n, terms, 0)
    tl.store(objective_ptr + u, tl.sum(objective, axis=0))


@triton.jit
def fixed_point_kernel(bound_bits_ptr, log2_size_ptr, dmax_ptr, magic_ptr, magic_bits_ptr, quantum_ptr, count,
                       KIND: tl.constexpr, BLOCK: tl.constexpr):
    """fixed_point_for(n, bound) of every group, from its bound's float32 bits: for the
    craig kinds the bits are the largest squared distance (dmax = its sqrt_rn for
    "craig"), otherwise the bound itself. e is the smallest exponent with bound < 2^e,
    read off the bits; F = min(52, 62 - L) - e; magic = 2^(52 - F), quantum = 2^-F."""
    u = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = u < count
    bound = tl.load(bound_bits_ptr + u, mask=mask, other=0).to(tl.float32, bitcast=True)
    if KIND == KIND_CRAIG:
        bound = tl.sqrt_rn(bound)
    tl.store(dmax_ptr + u, bound, mask=mask)
    bits = bound.to(tl.int32, bitcast=True)
    biased = (bits >> 23) & 0xFF
    mantissa = bits & 0x7FFFFF
    mantissa_bits = ((mantissa.to(tl.float32).to(tl.int32, bitcast=True) >> 23) & 0xFF) - 126  # bit length
    e = tl.where(biased > 0, biased - 126, tl.where(mantissa > 0, mantissa_bits - 149, 0))
    L = tl.load(log2_size_ptr + u, mask=mask, other=0)
    F = (tl.minimum(62 - L, 52) - e).to(tl.int64)
    magic_bits = (52 - F + 1023) << 52
    tl.store(magic_bits_ptr + u, magic_bits, mask=mask)
    tl.store(magic_ptr + u, magic_bits.to(tl.float64, bitcast=True), mask=mask)
    tl.store(quantum_ptr + u, ((1023 - F) << 52).to(tl.float64, bitcast=True), mask=mask)


@triton.jit
def block_max_kernel(sim_ptr, sim_off_ptr, area_ptr, out_bits_ptr, BLOCK: tl.constexpr):
    """Each precomputed block's largest entry (entries are checked finite and >= 0, so
    their bits order as integers)."""
    u = tl.program_id(0)
    t = tl.program_id(1).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    area = tl.load(area_ptr + u)
    if tl.program_id(1) * BLOCK < area:
        v = tl.load(sim_ptr + tl.load(sim_off_ptr + u) + t, mask=t < area, other=0.0)
        tl.atomic_max(out_bits_ptr + u, tl.max(v.to(tl.int32, bitcast=True), axis=0))
