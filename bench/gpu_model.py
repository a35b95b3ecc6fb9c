"""Performance model of augcore's CUDA selection path on an H100 / H200 (sm_90): predictions, not measurements.

Every number this file gives is computed from the counts below and the stated constants; no
GPU has run these kernels for the project yet (docs/gpu.md, "Predicted times"). It serves two
purposes: ``bench/bench_gpu.py`` writes ``predicted_ms`` beside each measured time, so the
first GPU run shows where the model is wrong; and it says how far the current kernel is from
the targets and from the floor, and what the restructured greedy kernel (v2, ``AUGCORE_CUDA_GREEDY=v2``,
compiled but not yet run) is predicted to give.

Model (per logits -> weights call, ``grad_proxies`` + ``facility_location``, stochastic or lazy):

* proxies and the wrapper's sorted copy: bandwidth-bound, bytes / HBM bandwidth, or instruction-bound
  (the polynomial exp/log) when that is longer.
* similarity tiles (``group_tiles_kernel``, 32 x 32 tiles, 8 rows of threads, 4 pairs a thread):
  per feature a warp issues 5 shared loads (1 for b, 4 for a) and 12 FP32 operations (no FMA: the
  exact contract), so it is bound by the shared-memory pipe (1 warp-wide load a clock per SM)
  unless the n^2 x 4 B writes take longer. The upper triangle of tiles is computed, padded to 32.
* register-blocked tiles (``group_tiles_blocked_kernel``, ``AUGCORE_CUDA_TILES=blocked``, as built:
  the same tiles, 64 threads of 4 x 4 pairs): per feature a warp issues 8 shared loads (4 row and 4
  column operands, one wavefront each) and 48 FP32 operations for 16 pairs a thread; the larger of
  the FP32 pipe, the shared pipe and the issue slots (56 instructions a warp, 4 a clock per SM) bounds
  it, here the issue slots, at 7/6 of the FP32 pipe.
* greedy (``greedy_kernel``, one 512-thread block per group, one block per SM): a latency model,
  step by step, because the kernel keeps one global load in flight per warp (SASS read in issue 23):
  - stochastic draws: parallel, then ``count`` dependent swaps by one thread (3 shared latencies);
  - gains: (candidate, 256-point block) tasks over 16 warps; a task is 8 dependent iterations of
    (row load latency + the term's dependent ALU chain) plus its shuffle tree, 64-bit division
    and shared-memory CAS loop;
  - selection: shuffles, 3 barriers and a 16-warp loop by one thread;
  - commit: ceil(n / 512) dependent iterations, each a row load and an assignment load (global);
  groups run in waves of (number of SMs) blocks; every launch is one batch of ``memory_limit``.
* greedy v2 (``greedy_v2_kernel``, ``AUGCORE_CUDA_GREEDY=v2``, as built: one block per group, one
  candidate per warp): a throughput model per step, ``v2_step_cycles`` (rows streamed at the smallest
  of the SM's HBM share, the loads in flight over the latency and the conversion rate; a merge per
  step or lazy round; a commit with 8 loads in flight); lazy's evaluations per step are assumed
  (``lazy_batch_counts``). On sm_90, naive and stochastic run over a thread-block cluster of C blocks
  per group (``greedy_v2_cluster_kernel``, C from ``cluster_size``, the host plan's rule with the
  portable limit of 8): each block streams its slice of ~n / C points, and a step adds a cluster
  barrier and the reduction of C partial gains a candidate from distributed shared memory.
* the floor: the same work spread over every SM with no latency exposed: the larger of HBM
  traffic, FP32 issue, and the fixed-point conversions (16 a clock per SM), summed over phases.

Constants, with their sources (values as read there; the latencies are the model's weakest part):
  SMs, clock, FP32/FP64 lanes, HBM bandwidth: NVIDIA H100 / H200 datasheets and the H100
    whitepaper (H100 SXM5: 132 SMs, 1.98 GHz, 128 FP32 and 64 FP64 lanes per SM, 3.35 TB/s HBM3,
    50 MB L2; H200 SXM: same SMs, 4.8 TB/s HBM3e).
  Per-SM instruction rates: 16 conversions from/to 64-bit types a clock (the CUDA C++ Programming
    Guide's throughput table, "Arithmetic Instructions", as recalled for compute capability 9.0:
    not re-checked against the current guide, so treat it as an assumption); one 32-lane 32-bit
    shared-memory load a clock (32 banks of 4 bytes).
  Latencies: shared memory ~30 cycles, L2 ~260, HBM ~600: assumed round values of the order that
    published Hopper microbenchmarks report (e.g. Luo et al., arXiv:2402.13499), not taken from a
    table; with the dependent-ALU chains, barrier and host costs (estimates, named below) they are
    the model's weakest constants, the first to correct from gpu_check's measurements.

    python bench/gpu_model.py              the predicted-time table (markdown, as in docs/gpu.md)
    python bench/gpu_model.py --gpu h200    the same for an H200
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    name: str
    sms: int = 132
    clock_hz: float = 1.98e9
    hbm_bytes_per_s: float = 3.35e12
    l2_bytes: float = 50e6
    fp32_lanes: int = 128          # FP32 results a clock per SM (no FMA counted twice: each op is one)
    conversions_per_clock: int = 16  # float32 -> float64 (F2F.F64.F32) a clock per SM
    smem_loads_per_clock: int = 1  # warp-wide 32-bit shared loads a clock per SM (32 banks x 4 B)
    latency_smem: int = 30
    latency_l2: int = 260
    latency_hbm: int = 600


H100 = Gpu("H100 SXM")
H200 = Gpu("H200 SXM", hbm_bytes_per_s=4.8e12)
GPUS = {"h100": H100, "h200": H200}

# Estimates of this model (not measured): cycles of dependent work the kernel's SASS chains per unit.
TERM_CHAIN_CYCLES = 35     # fsub, compare/select, f32->f64, dadd, 64-bit integer add, after the load arrives
TASK_TAIL_CYCLES = 425     # u64 shuffle tree (5 levels), 64-bit division/modulo of the task index, shared CAS loop
SELECT_CYCLES = 1_000      # per chunk: candidate scan, 3 shuffle trees, 3 barriers, thread 0's 16-warp loop
SWAP_CYCLES = 3            # shared-memory latencies per Fisher-Yates swap (draw, two rem reads; then stores)
DRAW_ROUND_CYCLES = 280    # one round of 512 parallel counter-hash draws and its two barriers
EXP_INSTRUCTIONS = 45      # __fsqrt_rn + the polynomial exp of one similarity
HOST_SECONDS = 50e-6       # the wrapper's one device-to-host sync, ~10 launches, the sort (assumed)
V2_SELECT_CYCLES = 600     # v2, per step or lazy round: 16 warp results to shared memory, 2 barriers, thread 0's merge
V2_BYTES_IN_FLIGHT = 16 * 32 * 16 * 4  # v2: 16 warps x 32 lanes x 16 floats (4 float4 loads a lane)
CLUSTER_SYNC_CYCLES = 400  # v2 cluster, per step: barrier.cluster arrive + wait across the cluster's SMs (assumed)
LATENCY_DSMEM = 200        # v2 cluster: one ld.shared::cluster of another block's partial gain (assumed)
PORTABLE_CLUSTER, MIN_CLUSTER_SLICE = 8, 512  # csrc/facility_location/cuda_launch_plan.h
SHARED_BYTES_V2 = 232_448 - 2_400  # sm_90's opt-in shared memory a block minus v2's static part

GREEDY_THREADS, WARPS, TASK_POINTS, CHUNK = 512, 16, 256, 1024


@dataclass(frozen=True)
class Scenario:
    name: str
    n: int           # points, all groups
    classes: int
    dim: int


SCENARIOS = {
    "cifar": Scenario("cifar", 50_000, 10, 10),
    "imagenet": Scenario("imagenet", 1_281_167, 1_000, 1_000),
}
TARGET_MS = {"cifar": 5.0, "imagenet": 1_000.0}
TABLE_ROWS = [("cifar", 10), ("cifar", 30), ("cifar", 50), ("imagenet", 10), ("imagenet", 30)]


def sample_size(n: int, k: int, eps: float) -> int:
    """csrc/facility_location/plan.h stochastic_sample_size: ceil(n / k ln(1/eps)) clamped to [1, n]."""
    size = math.ceil(n / k * math.log(1.0 / eps))
    return max(1, min(n, size))


def candidate_counts(n: int, k: int, method: str, eps: float = 0.01):
    """Candidates evaluated at each of the k steps: the sample (stochastic) or every remaining point
    (naive, and lazy, which the CUDA op evaluates naively)."""
    s = sample_size(n, k, eps)
    return [min(n - step, s) if method == "stochastic" else n - step for step in range(k)]


def _seconds(cycles: float, gpu: Gpu) -> float:
    return cycles / gpu.clock_hz


def proxies_seconds(sc: Scenario, gpu: Gpu) -> float:
    """grad_proxies (read logits, write errors) plus the wrapper's sorted copy (read and write N x D)."""
    values = sc.n * sc.dim
    traffic = 4 * values * 4
    instructions = values * 30  # shared polynomial exp per element, the log per row amortised
    return max(traffic / gpu.hbm_bytes_per_s, instructions / (gpu.fp32_lanes * gpu.sms * gpu.clock_hz))


def _tiles(n: int) -> int:
    t = -(-n // 32)
    return t * (t + 1) // 2


# Per tile kernel (cuda_launch_plan.h TilePlan): warps a tile, pairs a thread, warp-wide shared loads a feature.
TILE_KERNELS = {"v1": (8, 4, 5), "blocked": (2, 16, 8)}
ISSUE_PER_CLOCK = 4  # warp instructions an SM issues a clock (4 schedulers)


def similarity_seconds(sc: Scenario, gpu: Gpu, tiles_kernel: str = "v1") -> float:
    """The tile kernel (``group_tiles_kernel``, or ``group_tiles_blocked_kernel`` for "blocked") over every
    group (dense global rows), all SMs busy: per tile the largest of FP32 issue (3 operations a pair and
    feature, the exp a pair), shared loads and all issue slots, or the writes of S when longer."""
    n = sc.n // sc.classes
    tiles = sc.classes * _tiles(n)
    k_steps = sc.dim
    warps_per_tile, pairs_per_thread, loads_per_feature = TILE_KERNELS[tiles_kernel]
    fp_ops = k_steps * 3 * pairs_per_thread + pairs_per_thread * EXP_INSTRUCTIONS  # a thread's, a tile
    fp_clk = warps_per_tile * fp_ops / (gpu.fp32_lanes / 32)
    lds_clk = warps_per_tile * k_steps * loads_per_feature / gpu.smem_loads_per_clock
    issue_clk = warps_per_tile * (fp_ops + k_steps * loads_per_feature) / ISSUE_PER_CLOCK
    compute = tiles * max(fp_clk, lds_clk, issue_clk) / gpu.sms
    writes = sc.classes * n * n * 4 / gpu.hbm_bytes_per_s
    return max(_seconds(compute, gpu), writes)


def _row_latency(gpu: Gpu, rows_bytes_live: float) -> int:
    return gpu.latency_l2 if rows_bytes_live <= gpu.l2_bytes else gpu.latency_hbm


def greedy_step_cycles(n: int, count: int, stochastic: bool, row_latency: int, smem_latency: int) -> float:
    """One step of the current greedy_kernel for a group of n points and `count` candidates."""
    cycles = 0.0
    if stochastic:
        cycles += -(-count // GREEDY_THREADS) * DRAW_ROUND_CYCLES + count * SWAP_CYCLES * smem_latency
    blocks = -(-n // TASK_POINTS)
    tail_points = n - (blocks - 1) * TASK_POINTS
    for q0 in range(0, count, CHUNK):
        cc = min(CHUNK, count - q0)
        tasks = cc * blocks
        # a warp's tasks: mostly full 256-point blocks (8 iterations); the group's last block is shorter
        mean_iterations = ((blocks - 1) * 8 + -(-tail_points // 32)) / blocks
        task = mean_iterations * (row_latency + TERM_CHAIN_CYCLES) + TASK_TAIL_CYCLES
        cycles += -(-tasks // WARPS) * task + SELECT_CYCLES
    commit = -(-n // GREEDY_THREADS) * (row_latency + row_latency + TERM_CHAIN_CYCLES)
    return cycles + commit


def greedy_seconds(sc: Scenario, budget_pct: int, method: str, gpu: Gpu, memory_limit: int = 8 << 30,
                   eps: float = 0.01) -> float:
    """The current greedy_kernel: one block per group, groups in waves of `sms`, batches of memory_limit."""
    n = sc.n // sc.classes
    k = max(1, round(budget_pct / 100 * n))
    block_bytes = n * n * 4
    per_batch = max(1, memory_limit // block_bytes)
    live = min(sc.classes, gpu.sms, per_batch) * block_bytes
    latency = _row_latency(gpu, live)
    per_group = sum(greedy_step_cycles(n, c, method == "stochastic", latency, gpu.latency_smem)
                    for c in candidate_counts(n, k, method, eps))
    batches = -(-sc.classes // per_batch)
    waves = sum(-(-min(per_batch, sc.classes - b * per_batch) // gpu.sms) for b in range(batches))
    return _seconds(per_group * waves, gpu)


def lazy_batch_counts(n: int, k: int, eps: float = 0.01):
    """Candidates the exact batched lazy greedy (v2) is assumed to evaluate per step: all n at the first
    step (no bound is known yet), then as many as the stochastic sample (the top stale bounds until the
    best fresh gain beats every other bound). The later counts are an assumption of this model, not a
    measured count."""
    s = sample_size(n, k, eps)
    return [n] + [min(n - step, s) for step in range(1, k)]


def _v2_counts(n: int, k: int, method: str, eps: float):
    return lazy_batch_counts(n, k, eps) if method == "lazy" else candidate_counts(n, k, method, eps)


def cluster_slice(n: int, cluster: int) -> int:
    """cuda_launch_plan.h cluster_slice: the points a cluster block owns, ceil(n / C) rounded up to 4."""
    return (-(-n // cluster) + 3) // 4 * 4


def cluster_size(n: int, groups: int, method: str, candidates: int, gpu: Gpu,
                 max_cluster: int = PORTABLE_CLUSTER) -> int:
    """plan_clusters' rule for a launch of `groups` groups of n points: naive or stochastic, the widest
    C <= max_cluster with groups x C <= SMs and C <= n / 512 whose shared memory a block (two buffers of
    `candidates` partial gains, the m slice, rem) fits; else 1 (one block per group)."""
    widest = min(max_cluster, gpu.sms // groups, n // MIN_CLUSTER_SLICE)
    if method == "lazy" or widest < 2:
        return 1
    fits = 16 * candidates + 4 * cluster_slice(n, widest) + 4 * n <= SHARED_BYTES_V2
    return widest if fits else 1


def v2_step_cycles(n: int, evaluations: int, stochastic: bool, lazy: bool, row_latency: int, gpu: Gpu,
                   sm_bytes_per_clock: float, cluster: int = 1) -> float:
    """One step of greedy_v2_kernel (one block per group): a warp evaluates a whole candidate with
    V2_BYTES_IN_FLIGHT / 16 bytes of loads in flight; the SM streams rows at the smallest of
    ``sm_bytes_per_clock`` (its share of HBM, at most 64 B a clock), the bytes in flight over the row
    latency, and its conversions (16 a clock); warps idle when fewer than 16 candidates remain in a
    wave. Lazy works in rounds of up to 16 candidates, each with a scan of its share of rem (shared
    memory) and a merge. Then the commit: ceil(n / (512 x 8)) iterations of 8 row loads in flight.
    With a cluster of C > 1 blocks (its SM's part, every block alike): the terms and the commit cover the
    block's slice (``cluster_slice``) instead of n, and the step adds a cluster barrier and
    ceil(evaluations / 512) x C dependent distributed-shared-memory loads (the sums of the partials)."""
    points = cluster_slice(n, cluster) if cluster > 1 else n
    cycles = 0.0
    if stochastic:
        cycles += -(-evaluations // GREEDY_THREADS) * DRAW_ROUND_CYCLES + evaluations * SWAP_CYCLES * gpu.latency_smem
    waves = -(-evaluations // WARPS)
    terms = waves * WARPS * points
    rate = min(sm_bytes_per_clock, V2_BYTES_IN_FLIGHT / row_latency)
    cycles += max(terms * 4 / rate, terms / gpu.conversions_per_clock)
    rounds = waves if lazy else 1
    scan = -(-n // GREEDY_THREADS) * 2 * gpu.latency_smem if lazy else 0
    cycles += rounds * (V2_SELECT_CYCLES + scan)
    if cluster > 1:
        cycles += CLUSTER_SYNC_CYCLES + -(-evaluations // GREEDY_THREADS) * cluster * LATENCY_DSMEM
    commit = -(-points // (GREEDY_THREADS * 8)) * (row_latency + TERM_CHAIN_CYCLES)
    return cycles + commit


def restructured_greedy_seconds(sc: Scenario, budget_pct: int, method: str, gpu: Gpu, eps: float = 0.01,
                                memory_limit: int = 8 << 30, max_cluster: int = PORTABLE_CLUSTER) -> float:
    """greedy_v2 as built (AUGCORE_CUDA_GREEDY=v2): a cluster of ``cluster_size`` blocks per group on
    sm_90 (naive, stochastic), else one block; groups in waves of `sms`, batches of memory_limit as the
    current kernel; ``v2_step_cycles`` per step, with the batched lazy greedy's assumed counts
    (``lazy_batch_counts``) for "lazy"."""
    n = sc.n // sc.classes
    k = max(1, round(budget_pct / 100 * n))
    block_bytes = n * n * 4
    per_batch = max(1, memory_limit // block_bytes)
    active = min(sc.classes, gpu.sms, per_batch)
    counts = _v2_counts(n, k, method, eps)
    cluster = cluster_size(n, min(sc.classes, per_batch), method, max(counts), gpu, max_cluster)
    latency = _row_latency(gpu, active * block_bytes)
    sm_bytes = (min(64.0, gpu.hbm_bytes_per_s / (active * cluster * gpu.clock_hz)) if latency == gpu.latency_hbm
                else 64.0)
    per_group = sum(v2_step_cycles(n, c, method == "stochastic", method == "lazy", latency, gpu, sm_bytes, cluster)
                    for c in counts)
    batches = -(-sc.classes // per_batch)
    waves = sum(-(-min(per_batch, sc.classes - b * per_batch) // gpu.sms) for b in range(batches))
    return _seconds(per_group * waves, gpu)


def floor_seconds(sc: Scenario, budget_pct: int, method: str, gpu: Gpu, eps: float = 0.01) -> float:
    """Every SM busy, no latency exposed: proxies + distances (FP32 issue or the n^2 x 4 B of S
    written, whichever is longer) + every gain term read once from HBM or converted (16 a clock per
    SM), whichever is longer. Lazy: the batched lazy greedy's assumed counts (``lazy_batch_counts``)."""
    n = sc.n // sc.classes
    k = max(1, round(budget_pct / 100 * n))
    counts = _v2_counts(n, k, method, eps)
    terms = sc.classes * n * sum(counts)
    gains = max(terms * 4 / gpu.hbm_bytes_per_s, terms / (gpu.conversions_per_clock * gpu.sms * gpu.clock_hz))
    pairs = sc.classes * n * (n + 1) / 2
    distances = max(pairs * (3 * sc.dim + EXP_INSTRUCTIONS) / (gpu.fp32_lanes * gpu.sms * gpu.clock_hz),
                    sc.classes * n * n * 4 / gpu.hbm_bytes_per_s)
    return proxies_seconds(sc, gpu) + distances + gains


def predict(scenario: str, budget_pct: int, method: str = "stochastic", gpu: Gpu = H100,
            memory_limit: int = 8 << 30, max_cluster: int = PORTABLE_CLUSTER) -> dict:
    """Predicted milliseconds of one logits -> weights call with the current kernels, by phase, with the
    v2 greedy's prediction (``restructured_ms``: the same proxies and similarity tiles), the v2 greedy with
    the register-blocked tiles (``restructured_blocked_ms``; ``blocked_similarity_ms`` their phase) and the
    floor. max_cluster: the widest v2 cluster (1: AUGCORE_CUDA_CLUSTER=1, one block per group)."""
    sc = SCENARIOS[scenario]
    proxies = proxies_seconds(sc, gpu)
    similarity = similarity_seconds(sc, gpu)
    blocked_similarity = similarity_seconds(sc, gpu, "blocked")
    greedy = greedy_seconds(sc, budget_pct, method, gpu, memory_limit)
    v2_greedy = restructured_greedy_seconds(sc, budget_pct, method, gpu, memory_limit=memory_limit,
                                            max_cluster=max_cluster)
    restructured = proxies + similarity + v2_greedy + HOST_SECONDS
    return {
        "proxies_ms": 1e3 * proxies,
        "similarity_ms": 1e3 * similarity,
        "blocked_similarity_ms": 1e3 * blocked_similarity,
        "restructured_blocked_ms": 1e3 * (proxies + blocked_similarity + v2_greedy + HOST_SECONDS),
        "greedy_ms": 1e3 * greedy,
        "total_ms": 1e3 * (proxies + similarity + greedy + HOST_SECONDS),
        "restructured_ms": 1e3 * restructured,
        "floor_ms": 1e3 * floor_seconds(sc, budget_pct, method, gpu),
        "target_ms": TARGET_MS[scenario],
    }


def gpu_for_device_name(name: str) -> Gpu:
    """The model's GPU for torch.cuda.get_device_name(): H200 when the name says so, else H100."""
    return H200 if "H200" in name.upper() else H100


def markdown_table(gpu: Gpu = H100) -> str:
    lines = [f"| {gpu.name}: case | method | current kernel (v1), ms (similarity / greedy) | v2, ms | "
             "v2 + blocked tiles, ms (similarity) | floor, ms | target, ms |",
             "|---|---|---|---|---|---|---|"]
    for scenario, pct in TABLE_ROWS:
        for method in ("stochastic", "lazy"):
            p = predict(scenario, pct, method, gpu)
            lines.append(f"| {scenario} {pct}% | {method} | {_fmt(p['total_ms'])} ({_fmt(p['similarity_ms'])} / "
                         f"{_fmt(p['greedy_ms'])}) | {_fmt(p['restructured_ms'])} | "
                         f"{_fmt(p['restructured_blocked_ms'])} "
                         f"({_fmt(p['blocked_similarity_ms'])}) | {_fmt(p['floor_ms'])} | "
                         f"{_fmt(p['target_ms'])} |")
    return "\n".join(lines)


def _fmt(ms: float) -> str:
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 1 else f"{ms:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", default="h100", choices=sorted(GPUS))
    args = ap.parse_args()
    print(markdown_table(GPUS[args.gpu]))


if __name__ == "__main__":
    main()
