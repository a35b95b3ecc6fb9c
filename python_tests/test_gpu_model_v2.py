"""bench/gpu_model.py's v2 column models greedy_v2 as built: a step worked by hand from the docstring of
v2_step_cycles (one block, and a cluster of 8), the cluster size the host plan gives, and the lazy counts
(every candidate at the first step)."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_model", ROOT / "bench" / "gpu_model.py")
gpu_model = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("gpu_model", gpu_model)  # dataclasses resolve the module by name
_spec.loader.exec_module(gpu_model)


def test_one_v2_step_as_the_docstring_states():
    """n = 5,000, 47 stochastic candidates, rows from HBM (600 cycles), 64 B a clock: 3 waves of 16 warps
    (48 rows); 32 KB in flight over 600 cycles = 54.6 B a clock < 64, so 48 x 5,000 x 4 B / 54.6 =
    17,578 cycles (> 240,000 conversions / 16 = 15,000); draws 280 + 47 swaps x 3 x 30; one merge of
    600; commit ceil(5,000 / 4,096) = 2 iterations of 600 + 35."""
    h100 = gpu_model.H100
    rows = 48 * 5_000 * 4 / (16 * 32 * 16 * 4 / 600)
    want = (280 + 47 * 3 * 30) + rows + 600 + 2 * 635
    assert abs(gpu_model.v2_step_cycles(5_000, 47, True, False, 600, h100, 64.0) - want) < 1e-6
    # lazy: no draws; 3 rounds, each a merge and a scan of ceil(5,000 / 512) = 10 x 2 shared latencies
    want_lazy = rows + 3 * (600 + 10 * 2 * 30) + 2 * 635
    assert abs(gpu_model.v2_step_cycles(5_000, 47, False, True, 600, h100, 64.0) - want_lazy) < 1e-6


def test_lazy_evaluates_every_candidate_first_then_the_sample():
    """ceil(5,000 / 500 x ln 100) = 47 after a first step of all 5,000; the sample is capped by what remains."""
    counts = gpu_model.lazy_batch_counts(5_000, 500)
    assert counts[0] == 5_000 and set(counts[1:]) == {47} and len(counts) == 500
    assert gpu_model.lazy_batch_counts(300, 4) == [300, 299, 298, 297]  # sample ceil(75 ln 100) capped at n


def test_one_cluster_step_as_the_docstring_states():
    """The same step over a cluster of 8: a slice of ceil(5,000 / 8) = 625 -> 628 points, so 48 x 628 x 4 B
    at 54.6 B a clock; one cluster barrier (400) and ceil(47 / 512) x 8 remote loads of 200; commit
    ceil(628 / 4,096) = 1 iteration."""
    h100 = gpu_model.H100
    rows = 48 * 628 * 4 / (16 * 32 * 16 * 4 / 600)
    want = (280 + 47 * 3 * 30) + rows + 600 + 400 + 8 * 200 + 635
    assert abs(gpu_model.v2_step_cycles(5_000, 47, True, False, 600, h100, 64.0, cluster=8) - want) < 1e-6


def test_the_models_cluster_size_is_the_host_plans():
    """gpu_model.cluster_size against plan_clusters (torch.ops.augcore.cuda_launch_plan, one on-the-fly launch
    of `groups` equal groups, max_cluster_size 8, 132 SMs)."""
    import torch

    import augcore  # noqa: F401

    for n, groups, method, k in [(5000, 10, "stochastic", 500), (5000, 10, "naive", 500), (5000, 10, "lazy", 500),
                                 (1281, 1000, "stochastic", 128), (3000, 40, "stochastic", 300),
                                 (30_000, 2, "stochastic", 3000), (30_000, 2, "naive", 3000)]:
        ptr = torch.arange(groups + 1, dtype=torch.int64) * n
        bud = torch.full((groups,), k, dtype=torch.int64)
        code = {"naive": 0, "lazy": 1, "stochastic": 2}[method]
        _, launches = torch.ops.augcore.cuda_launch_plan(ptr, bud, False, 2, 1 << 30, 232_448, -1, 2, code, 132, 8,
                                                         0.01)
        candidates = gpu_model.sample_size(n, k, 0.01) if method == "stochastic" else n
        assert gpu_model.cluster_size(n, groups, method, candidates, gpu_model.H100) == launches[0, 7], (n, method)
