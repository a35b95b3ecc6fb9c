"""The register-blocked distance tiles (AUGCORE_CUDA_TILES=blocked, csrc/cuda/geometry.cuh
group_tiles_blocked_kernel): their schedule emulated on the CPU gives the CPU op's floats, and their
host plan and switch, all without a GPU.

The emulation follows the kernel literally: 32 x 32 tiles of the upper half, k-slices of 32 features
staged with zero padding, thread t = 8 ty + tx holding the 4 x 4 pairs (ty + 8p, tx + 8q) in float32
accumulators updated with separately rounded operations (the kernel's __fsub_rn / mul_add_rn under
--fmad=false), the result tile written and mirrored. Each float32 numpy operation rounds once, so the
emulation computes what the kernel's instruction sequence computes. Controls show that the data tell
orders apart: a fused multiply-add, or sums of the k-slices added at the end, change some values.
The GPU run of the same comparison is test_cuda_selection-style: test_blocked_tiles_equal_cpu_on_gpu.
"""
import numpy as np
import pytest
import torch

import augcore  # noqa: F401  (loads the ops)

OPS = torch.ops.augcore
TILE, SLICE, ROWS, COLS = 32, 32, 4, 4
APART = TILE // ROWS  # 8: a thread's rows (and columns) are 8 apart


def _round_sum(acc, a, b, squared_diff, fused=False):
    """acc + f(a, b) as the kernel's float32 instructions: (a - b)^2 or a * b, each operation rounded."""
    term_a, term_b = (np.float32(a - b), np.float32(a - b)) if squared_diff else (a, b)
    if fused:  # one rounding of acc + a * b (FMA): the control
        return (acc.astype(np.float64) + term_a.astype(np.float64) * term_b.astype(np.float64)).astype(np.float32)
    return np.float32(acc + np.float32(term_a * term_b))


def emulate_blocked_tiles(x, squared_diff=True, fused=False, slice_partials=False):
    """The n x n block of one group (x: n x d float32) as group_tiles_blocked_kernel's accumulators
    compute it: sum over k of (x_ik - x_jk)^2 (or x_ik x_jk), k in order. slice_partials: each k-slice
    summed from zero and the slice sums added (a different order: the control)."""
    n, d = x.shape
    tiles = -(-n // TILE)
    out = np.full((n, n), np.nan, dtype=np.float32)
    ty, tx = np.divmod(np.arange(TILE * TILE // (ROWS * COLS)), TILE // COLS)  # thread t = 8 ty + tx
    rows = ty[:, None] + APART * np.arange(ROWS)[None, :]  # (64, 4): a thread's tile rows
    cols = tx[:, None] + APART * np.arange(COLS)[None, :]  # (64, 4): its tile columns
    for ti in range(tiles):
        for tj in range(ti, tiles):  # blocks below the diagonal return at once
            acc = np.zeros((len(ty), ROWS, COLS), dtype=np.float32)
            for k0 in range(0, d, SLICE):
                kw = min(SLICE, d - k0)
                a_tile = np.zeros((TILE, SLICE), dtype=np.float32)  # rows past n stay 0, as staged
                b_tile = np.zeros((TILE, SLICE), dtype=np.float32)
                ra, rb = x[ti * TILE:(ti + 1) * TILE, k0:k0 + kw], x[tj * TILE:(tj + 1) * TILE, k0:k0 + kw]
                a_tile[:len(ra), :kw], b_tile[:len(rb), :kw] = ra, rb
                part = np.zeros_like(acc) if slice_partials else acc
                for k in range(kw):
                    ai = a_tile[rows, k][:, :, None]  # (64, 4, 1): the 4 row operands in registers
                    bj = b_tile[cols, k][:, None, :]  # (64, 1, 4): the 4 column operands
                    part = _round_sum(part, ai, bj, squared_diff, fused)
                acc = np.float32(acc + part) if slice_partials else part
            res = np.full((TILE, TILE), np.nan, dtype=np.float32)
            res[rows[:, :, None], cols[:, None, :]] = acc
            i, j = np.arange(ti * TILE, (ti + 1) * TILE), np.arange(tj * TILE, (tj + 1) * TILE)
            vi, vj = i < n, j < n
            out[np.ix_(i[vi], j[vj])] = res[np.ix_(vi, vj)]
            if ti != tj:
                out[np.ix_(j[vj], i[vi])] = res[np.ix_(vi, vj)].T
    return out


def _points(n, d, seed):
    g = np.random.default_rng(seed)
    # magnitudes spread over 2^-6 .. 2^6: sums whose rounding depends on the order
    return (g.standard_normal((n, d)) * np.exp2(g.integers(-6, 7, size=(n, d)))).astype(np.float32)


def _cpu_block(x, embeddings=None, bias=0.0):
    n = x.shape[0]
    out = OPS.pairwise_sqdist(torch.from_numpy(x), None if embeddings is None else torch.from_numpy(embeddings),
                              torch.tensor([0, n]), bias)
    return out.numpy().reshape(n, n)


@pytest.mark.parametrize("n,d", [(75, 70), (33, 1), (1, 5), (64, 32), (40, 100)])
def test_blocked_schedule_gives_the_cpu_ops_sqdist(n, d):
    x = _points(n, d, seed=n * 1000 + d)
    got = emulate_blocked_tiles(x)
    assert not np.isnan(got).any()  # every pair written (tile, mirror)
    np.testing.assert_array_equal(got.view(np.int32), _cpu_block(x).view(np.int32))


def test_blocked_schedule_gives_the_cpu_ops_exact_gradient_distances():
    """Exact last-layer gradients: two k-ordered dot products a pair, then the CPU's factored formula."""
    n, d, h, bias = 45, 37, 70, 0.5
    e, emb = _points(n, d, seed=1), _points(n, h, seed=2)
    dot_e = emulate_blocked_tiles(e, squared_diff=False)
    dot_h = emulate_blocked_tiles(emb, squared_diff=False)
    sq = np.empty(n, dtype=np.float32)  # row_gradient_sqnorm: sequential in k
    for i in range(n):
        se = sh = np.float32(0)
        for v in e[i]:
            se = np.float32(se + np.float32(v * v))
        for v in emb[i]:
            sh = np.float32(sh + np.float32(v * v))
        sq[i] = np.float32(se * np.float32(sh + np.float32(bias)))
    # exact_from_dots: max((A_i + A_j) - 2 (dot_e (dot_h + b)), 0)
    prod = np.float32(dot_e * np.float32(dot_h + np.float32(bias)))
    v = np.float32(np.float32(sq[:, None] + sq[None, :]) - np.float32(np.float32(2) * prod))
    got = np.where(v > 0, v, np.float32(0))
    np.testing.assert_array_equal(got.view(np.int32), _cpu_block(e, emb, bias).view(np.int32))


def test_other_summation_orders_differ_on_the_same_points():
    """The controls: the test data tell the kernel's order from an FMA and from per-slice sums."""
    x = _points(75, 70, seed=75070)
    cpu = _cpu_block(x)
    for changed in (emulate_blocked_tiles(x, fused=True), emulate_blocked_tiles(x, slice_partials=True)):
        assert (changed.view(np.int32) != cpu.view(np.int32)).sum() > 50


def test_tile_plan_on_the_cpu():
    """cuda_tile_plan: both variants tile the same 32 x 32 tiles (T_g^2 a non-empty group); blocked runs
    64 threads of 4 x 4 pairs, v1 256 of 4 x 1; each covers the tile exactly once."""
    sizes = [0, 1, 31, 32, 33, 1281, 5000]
    ptr = torch.tensor(np.concatenate([[0], np.cumsum(sizes)]), dtype=torch.int64)
    tiles = sum((-(-s // 32)) ** 2 for s in sizes)
    v1 = OPS.cuda_tile_plan(ptr, 1).tolist()
    blocked = OPS.cuda_tile_plan(ptr, 2).tolist()
    assert v1 == [1, 256, 4, 1, 4 * (2 * 32 * 33 + 32 * 33), tiles]
    assert blocked == [2, 64, 4, 4, 4 * (2 * 32 * 33 + 32 * 33), tiles]
    for _, threads, r, c, _, _ in (v1, blocked):
        assert threads * r * c == TILE * TILE
    with pytest.raises(ValueError, match="tile variant must be 1"):
        OPS.cuda_tile_plan(ptr, 3)


@pytest.mark.parametrize("value,variant", [(None, 1), ("", 1), ("v1", 1), ("blocked", 2)])
def test_tile_switch_reads_the_environment(monkeypatch, value, variant):
    if value is None:
        monkeypatch.delenv("AUGCORE_CUDA_TILES", raising=False)
    else:
        monkeypatch.setenv("AUGCORE_CUDA_TILES", value)
    assert OPS.cuda_tile_plan(torch.tensor([0, 3]))[0].item() == variant


def test_tile_switch_rejects_unknown_values(monkeypatch):
    monkeypatch.setenv("AUGCORE_CUDA_TILES", "v2")
    with pytest.raises(ValueError, match="AUGCORE_CUDA_TILES must be 'v1' .* got 'v2'"):
        OPS.cuda_tile_plan(torch.tensor([0, 3]))


@pytest.mark.parametrize("value,cap", [(None, 16), ("", 16), ("1", 1), ("8", 8), ("16", 16)])
def test_cluster_switch_reads_the_environment(monkeypatch, value, cap):
    if value is None:
        monkeypatch.delenv("AUGCORE_CUDA_CLUSTER", raising=False)
    else:
        monkeypatch.setenv("AUGCORE_CUDA_CLUSTER", value)
    assert OPS.cuda_cluster_cap() == cap


@pytest.mark.parametrize("value", ["0", "17", "-1", "one", "1.5", " 1"])
def test_cluster_switch_rejects_bad_values(monkeypatch, value):
    monkeypatch.setenv("AUGCORE_CUDA_CLUSTER", value)
    with pytest.raises(ValueError, match="AUGCORE_CUDA_CLUSTER must be an integer from 1"):
        OPS.cuda_cluster_cap()


def test_cluster_cap_of_one_keeps_one_block_per_group(monkeypatch):
    """The op plans with min(the device's widest cluster, the cap): on an H100 (132 SMs, clusters of 8),
    CIFAR-10's classes of 5,000 get clusters of 8, and one block each under AUGCORE_CUDA_CLUSTER=1."""
    ptr = torch.arange(0, 50_001, 5_000, dtype=torch.int64)
    budgets = torch.full((10,), 500, dtype=torch.int64)

    def cluster_sizes():
        widest = min(8, OPS.cuda_cluster_cap())
        return set(OPS.cuda_launch_plan(ptr, budgets, False, 0, 8 << 30, 232_448, -1, 2, 2, 132, widest,
                                        0.01)[1][:, 7].tolist())

    monkeypatch.delenv("AUGCORE_CUDA_CLUSTER", raising=False)
    assert cluster_sizes() == {8}
    monkeypatch.setenv("AUGCORE_CUDA_CLUSTER", "1")
    assert cluster_sizes() == {1}


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("exact", [False, True])
def test_blocked_tiles_equal_cpu_on_gpu(monkeypatch, exact):
    """On a GPU: pairwise_sqdist with the blocked tiles equals the CPU op bit for bit (and so v1's)."""
    sizes = [1, 33, 75, 300]
    ptr = torch.tensor(np.concatenate([[0], np.cumsum(sizes)]), dtype=torch.int64)
    x = torch.from_numpy(_points(sum(sizes), 70, seed=3))
    emb = torch.from_numpy(_points(sum(sizes), 40, seed=4)) if exact else None
    cpu = OPS.pairwise_sqdist(x, emb, ptr, 0.25)
    for variant in ("v1", "blocked"):
        monkeypatch.setenv("AUGCORE_CUDA_TILES", variant)
        gpu = OPS.pairwise_sqdist(x.cuda(), None if emb is None else emb.cuda(), ptr, 0.25).cpu()
        assert torch.equal(gpu.view(torch.int32), cpu.view(torch.int32)), variant
