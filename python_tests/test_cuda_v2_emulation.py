"""A CPU emulation of the v2 CUDA greedy (csrc/cuda/facility_location_cuda.cu, greedy_v2_kernel, selected
with AUGCORE_CUDA_GREEDY=v2), step for step, checked against the compiled CPU op bit for bit.

No GPU is needed: the emulation follows the kernel's own schedule (16 warps, one candidate per warp,
warp w taking positions w, w + 16, ... of the remaining array; the lanes' load pattern and the
shuffle tree of warp_gain; thread 0 merging the warps in order; the batched lazy greedy's rounds over
the warps' shares of 32-position chunks), with the kernel's fixed-point arithmetic, and must give the
CPU op's picks and gains exactly: naive and stochastic with both tie rules, and lazy (tie_break low),
whose exact batched rule must give naive's picks. Inputs are precomputed similarities on a lattice of
1/8 steps, so exact ties in gain are frequent.

The cluster schedule (greedy_v2_cluster_kernel, v2 on sm_90 where the host plans clusters) is emulated
too: C blocks own slices of the points (cluster_slice), each forms every candidate's partial gain over
its slice with warp_gain's lane schedule, every block sums the C partials in rank order and takes the
argmax (threads over positions, the xor shuffle tree, thread 0 merging the warps in order); it must
give the CPU op's picks and gains, and the data must contain exact ties between candidates whose
partial gains differ slice by slice."""
import numpy as np
import pytest
import torch

from augcore.ops import facility_location
from augcore.ops.reference import counter_hash, stochastic_sample_size, uniform_below

WARP, WARPS = 32, 16
THREADS = WARP * WARPS
SCALAR_LOADS, VECTOR_LOADS = 8, 4  # kScalarLoads, kVectorLoads
INT64_MAX = (1 << 63) - 1


def fixed_point(n, bound):
    """csrc/common/fixed_point.h fixed_point_for: (magic, magic bits, quantum)."""
    L = 0
    while (1 << L) < n:
        L += 1
    e = 0
    if bound > 0:
        e = -149
        while bound >= 2.0 ** e:
            e += 1
    F = min(52, 62 - L) - e
    magic = np.float64(2.0 ** (52 - F))
    return magic, int(np.array(magic).view(np.int64)), 2.0 ** -F


def terms(row, m, fp):
    """The fixed-point terms max(0, s - m) of a float32 row against m (float32 subtraction, one double add)."""
    t = np.maximum(row - m, np.float32(0)).astype(np.float64) + fp[0]
    return t.view(np.int64) - fp[1]


def warp_gain(row, m, fp, vector):
    """warp_gain's schedule: per-lane sums in the lanes' load order, then the xor shuffle tree (uint64)."""
    n = row.size
    t = terms(row, m, fp).astype(np.uint64)
    lanes = np.zeros(WARP, dtype=np.uint64)
    if vector:
        for j0 in range(0, n // 4, WARP * VECTOR_LOADS):
            for lane in range(WARP):
                for v in range(VECTOR_LOADS):
                    j = j0 + lane + v * WARP
                    if j < n // 4:
                        lanes[lane] += t[4 * j:4 * j + 4].sum(dtype=np.uint64)
    else:
        for i0 in range(0, n, WARP * SCALAR_LOADS):
            for lane in range(WARP):
                for v in range(SCALAR_LOADS):
                    i = i0 + lane + v * WARP
                    if i < n:
                        lanes[lane] += t[i]
    for off in (16, 8, 4, 2, 1):
        lanes = lanes + lanes[np.arange(WARP) ^ off]
    assert len(set(lanes.tolist())) == 1  # every lane holds the sum
    return int(lanes[0])


def better(g, i, g2, i2, ties_high):
    return g > g2 or (g == g2 and (i > i2 if ties_high else i < i2))


def merge(results, best, ties_high):
    """Thread 0's merge of the warps' (gain, index, position) in warp order; None: no result."""
    for res in results:
        if res is not None and (best is None or better(res[0], res[1], best[0], best[1], ties_high)):
            best = res
    return best


def v2_group(S, k, method, ties_high, seed=0, group=0, eps=0.01):
    """One group through greedy_v2_kernel. S[c, i] = s_ic (the op's candidate-major block).
    Returns (picks, gains, evaluations per step)."""
    n = S.shape[0]
    fp = fixed_point(n, float(S.max()))
    gains_all = lambda cs: terms(S[cs], m[None, :], fp).sum(1)  # noqa: E731  (exact: integers)
    m = np.zeros(n, dtype=np.float32)
    assigned = np.zeros(n, dtype=bool)
    rem = list(range(n))
    bound, stamp = [INT64_MAX] * n, [-1] * n
    sample = stochastic_sample_size(n, k, eps) if k else 0
    picks, gains, evaluations = [], [], []
    for step in range(k):
        r = n - step
        count = min(r, max(1, min(n, sample))) if method == "stochastic" else r
        if method == "stochastic":
            for j in range(count):
                t = j + uniform_below(counter_hash(seed, group, step, j), r - j)
                rem[j], rem[t] = rem[t], rem[j]
        best = None
        if method != "lazy":
            fresh = gains_all(rem[:count])
            results = []
            for w in range(WARPS):
                mine = None
                for p in range(w, count, WARPS):
                    if mine is None or better(int(fresh[p]), rem[p], mine[0], mine[1], ties_high):
                        mine = (int(fresh[p]), rem[p], p)
                results.append(mine)
            best = merge(results, None, ties_high)
            evaluations.append(count)
        else:
            evaluated = 0
            while True:
                results = []
                for w in range(WARPS):
                    top = None  # the warp's best stale (bound, index, position) over its 32-position chunks
                    for p in range(w * WARP, r, THREADS):
                        for q in range(p, min(p + WARP, r)):
                            c = rem[q]
                            if stamp[c] != step and (top is None or better(bound[c], c, top[0], top[1], ties_high)):
                                top = (bound[c], c, q)
                    if top is not None and (best is None or better(top[0], top[1], best[0], best[1], ties_high)):
                        g = int(gains_all([top[1]])[0])
                        bound[top[1]], stamp[top[1]] = g, step
                        results.append((g, top[1], top[2]))
                        evaluated += 1
                    else:
                        results.append(None)
                if all(res is None for res in results):
                    break
                best = merge(results, best, ties_high)
            evaluations.append(evaluated)
        g, c, q = best
        picks.append(c)
        gains.append(g * fp[2])
        rem[q] = rem[r - 1]
        rem.pop()
        s = S[c]
        move = ~assigned | (s > m)
        assigned |= move
        m = np.where(move, np.maximum(m, s), m)
    return picks, gains, evaluations


def cluster_slice(n, C):
    """csrc/facility_location/cuda_launch_plan.h cluster_slice: ceil(n / C) rounded up to a multiple of 4."""
    return ((n + C - 1) // C + 3) // 4 * 4


def reduce_best_in_warp(lanes, ties_high):
    """reduce_best_in_warp: the xor shuffle tree over 32 lanes' (gain, index, position) or None."""
    for off in (16, 8, 4, 2, 1):
        nxt = []
        for lane in range(WARP):
            mine, other = lanes[lane], lanes[lane ^ off]
            if other is not None and (mine is None or better(other[0], other[1], mine[0], mine[1], ties_high)):
                mine = other
            nxt.append(mine)
        lanes = nxt
    assert all(lane == lanes[0] for lane in lanes)
    return lanes[0]


def cluster_argmax(totals, rem, count, ties_high):
    """One cluster block's argmax: thread t scans positions t, t + 512, ..., each warp's shuffle tree,
    thread 0 merging the 16 warps in order."""
    threads = [None] * THREADS
    for p in range(count):
        t = p % THREADS
        if threads[t] is None or better(totals[p], rem[p], threads[t][0], threads[t][1], ties_high):
            threads[t] = (totals[p], rem[p], p)
    warps = [reduce_best_in_warp(threads[w * WARP:(w + 1) * WARP], ties_high) for w in range(WARPS)]
    return merge(warps, None, ties_high)


def v2_cluster_group(S, k, method, ties_high, C, seed=0, group=0, eps=0.01):
    """One group through greedy_v2_cluster_kernel with C blocks. Returns (picks, gains, steps whose best gain ties another candidate's with different partials)."""
    n = S.shape[0]
    fp = fixed_point(n, float(S.max()))
    slice_ = cluster_slice(n, C)
    slices = [(min(n, b * slice_), min(n, min(n, b * slice_) + slice_)) for b in range(C)]
    m = np.zeros(n, dtype=np.float32)
    assigned = np.zeros(n, dtype=bool)
    rem = list(range(n))
    sample = stochastic_sample_size(n, k, eps) if k else 0
    picks, gains, cross_slice_ties = [], [], 0
    for step in range(k):
        r = n - step
        count = min(r, sample) if method == "stochastic" else r
        if method == "stochastic":
            for j in range(count):
                t = j + uniform_below(counter_hash(seed, group, step, j), r - j)
                rem[j], rem[t] = rem[t], rem[j]
        # each block's partial gains: warp_gain's lane schedule over the slice is the plain integer sum
        # (test_warp_gain_on_a_cluster_slice), so the emulation sums vectorised
        partials = [terms(S[rem[:count], lo:hi], m[None, lo:hi], fp).sum(1).tolist() for lo, hi in slices]
        totals = [0] * count
        for b in range(C):  # rank order
            totals = [t + x for t, x in zip(totals, partials[b])]
        g, c, q = cluster_argmax(totals, rem, count, ties_high)  # every block: the same data, the same argmax
        tied = [p for p in range(count) if totals[p] == g and p != q]
        cross_slice_ties += any([partials[b][p] for b in range(C)] != [partials[b][q] for b in range(C)]
                                for p in tied)
        picks.append(c)
        gains.append(g * fp[2])
        rem[q] = rem[r - 1]
        rem.pop()
        s = S[c]
        for lo, hi in slices:  # each block commits its own points
            move = ~assigned[lo:hi] | (s[lo:hi] > m[lo:hi])
            assigned[lo:hi] |= move
            m[lo:hi] = np.where(move, np.maximum(m[lo:hi], s[lo:hi]), m[lo:hi])
    return picks, gains, cross_slice_ties


def _lattice(n, seed):
    """A symmetric similarity matrix with entries on a 1/8 lattice in [0, 1] and ones on the diagonal."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 9, (n, n), generator=g).float() / 8
    s = torch.maximum(a, a.t())
    s.fill_diagonal_(1.0)
    return s


@pytest.mark.parametrize("method,tie_break", [("naive", "low"), ("naive", "high"), ("stochastic", "low"),
                                              ("stochastic", "high"), ("lazy", "low")])
def test_v2_schedule_gives_the_cpu_ops_picks_and_gains(method, tie_break):
    sizes, budgets = [37, 300, 600], [37, 40, 25]  # 37: every step down to one remaining candidate
    sims = [_lattice(n, seed) for seed, n in enumerate(sizes)]
    N = sum(sizes)
    full = torch.zeros(N, N)
    labels = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    start = 0
    for s in sims:
        full[start:start + s.shape[0], start:start + s.shape[0]] = s
        start += s.shape[0]
    cpu = facility_location(None, budgets, labels, similarity=full, method=method, tie_break=tie_break, seed=3,
                            num_groups=len(sizes))
    start = 0
    for g, (s, k) in enumerate(zip(sims, budgets)):
        block = s.t().contiguous().numpy()  # candidate-major: block[c, i] = s_ic
        picks, gains, evaluations = v2_group(block, k, method, tie_break == "high", seed=3, group=g)
        lo, hi = int(cpu.group_ptr[g]), int(cpu.group_ptr[g + 1])
        assert [start + c for c in picks] == cpu.indices[lo:hi].tolist(), (g, method, tie_break)
        assert torch.equal(torch.tensor(gains, dtype=torch.float64), cpu.gains[lo:hi]), (g, method, tie_break)
        if method == "lazy" and k > 5:  # bounds pay off after the first step, which evaluates everything
            assert evaluations[0] == s.shape[0] and sum(evaluations[1:]) < sum(range(s.shape[0] - k + 1,
                                                                                      s.shape[0]))
        start += s.shape[0]


@pytest.mark.parametrize("n", [1, 31, 100, 512, 1000])
def test_warp_gain_lane_schedule_is_the_exact_fixed_point_sum(n):
    """Both load paths of warp_gain (scalar: 8 loads a lane; float4: 4 vector loads a lane) and the shuffle
    tree give the integer sum of the terms, whose value times 2^-F is the CPU op's first gain."""
    s = _lattice(n, 7)
    fp = fixed_point(n, 1.0)
    m = np.zeros(n, dtype=np.float32)
    block = s.t().contiguous().numpy()
    exact = [int(terms(block[c], m, fp).sum()) for c in range(n)]
    for c in range(min(n, 4)):
        assert warp_gain(block[c], m, fp, vector=False) == exact[c]
        if n % 4 == 0:
            assert warp_gain(block[c], m, fp, vector=True) == exact[c]
    cpu = facility_location(None, 1, None, similarity=s, method="naive")
    best = max(range(n), key=lambda c: (exact[c], -c))
    assert int(cpu.indices[0]) == best and float(cpu.gains[0]) == exact[best] * fp[2]


@pytest.mark.parametrize("method,tie_break,C", [("naive", "low", 3), ("naive", "high", 8), ("stochastic", "low", 2),
                                                ("stochastic", "high", 5)])
def test_v2_cluster_schedule_gives_the_cpu_ops_picks_and_gains(method, tie_break, C):
    """Slices of 37 points over 8 blocks leave blocks with no points; 300 and 600 points take the float4 path."""
    sizes, budgets = [37, 300, 600], [37, 30, 12]
    sims = [_lattice(n, seed) for seed, n in enumerate(sizes)]
    labels = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    cpu = facility_location(None, budgets, labels, similarity=torch.block_diag(*sims), method=method,
                            tie_break=tie_break, seed=3, num_groups=len(sizes))
    start, ties = 0, 0
    for g, (s, k) in enumerate(zip(sims, budgets)):
        block = s.t().contiguous().numpy()
        picks, gains, cross_slice_ties = v2_cluster_group(block, k, method, tie_break == "high", C, seed=3, group=g)
        lo, hi = int(cpu.group_ptr[g]), int(cpu.group_ptr[g + 1])
        assert [start + c for c in picks] == cpu.indices[lo:hi].tolist(), (g, method, tie_break, C)
        assert torch.equal(torch.tensor(gains, dtype=torch.float64), cpu.gains[lo:hi]), (g, method, tie_break, C)
        ties += cross_slice_ties
        start += s.shape[0]
    assert ties > 0  # the tie rule was exercised across slices, not only within one block


@pytest.mark.parametrize("n,C", [(600, 5), (300, 2), (37, 8)])
def test_warp_gain_on_a_cluster_slice(n, C):
    """warp_gain over a block's slice [lo, hi) (row from lo, m from lo; float4 path when n % 4 == 0) is the
    integer sum of the slice's terms, and the slices' sums add up to the group's gain."""
    s = _lattice(n, 11)
    fp = fixed_point(n, 1.0)
    m = (torch.randint(0, 9, (n,), generator=torch.Generator().manual_seed(5)).float() / 8).numpy()
    block = s.t().contiguous().numpy()
    slice_ = cluster_slice(n, C)
    for c in (0, n // 2, n - 1):
        parts = []
        for b in range(C):
            lo = min(n, b * slice_)
            hi = min(n, lo + slice_)
            part = warp_gain(block[c, lo:hi], m[lo:hi], fp, vector=False)
            if n % 4 == 0:
                assert warp_gain(block[c, lo:hi], m[lo:hi], fp, vector=True) == part
            assert part == int(terms(block[c, lo:hi], m[lo:hi], fp).sum())
            parts.append(part)
        assert sum(parts) == int(terms(block[c], m, fp).sum())


@pytest.mark.parametrize("n,C", [(5000, 8), (5000, 9), (37, 8), (1000, 3), (4, 16)])
def test_cluster_slices_cover_the_group_once_on_float4_boundaries(n, C):
    slice_ = cluster_slice(n, C)
    slices = [(min(n, b * slice_), min(n, min(n, b * slice_) + slice_)) for b in range(C)]
    assert [i for lo, hi in slices for i in range(lo, hi)] == list(range(n))
    assert slice_ % 4 == 0 and all(lo % 4 == 0 for lo, hi in slices if lo < hi)  # empty ones start at n
    if n % 4 == 0:
        assert all((hi - lo) % 4 == 0 for lo, hi in slices)
