"""pytest-benchmark suite for the compiled selection core (CPU).

    python -m pytest bench/bench_facility_location.py --benchmark-columns=mean,stddev,rounds

For the ratio table against submodlib and apricot, run ``python bench/run.py``.
"""
from __future__ import annotations

import pytest
import torch

import augcore
from common import cifar_like_logits

N, C = 50_000, 10


@pytest.fixture(scope="module")
def cifar():
    logits, labels, emb = cifar_like_logits(N, C, embedding_dim=512)
    return logits, labels, emb


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
@pytest.mark.parametrize("method", ["stochastic", "lazy"])
def test_logits_to_weights(benchmark, cifar, fraction, method):
    """End to end: logits -> proxies -> per-class greedy -> normalised weights."""
    logits, labels, _ = cifar

    def select():
        proxies = augcore.grad_proxies(logits, labels).errors
        res = augcore.facility_location(proxies, int(fraction * N), labels, method=method)
        return augcore.normalize_weights(res.weights)

    weights = benchmark.pedantic(select, rounds=3, warmup_rounds=1)
    assert weights.numel() == int(fraction * N)


@pytest.mark.parametrize("fraction", [0.1])
def test_exact_last_layer(benchmark, cifar, fraction):
    logits, labels, emb = cifar

    def select():
        proxies = augcore.grad_proxies(logits, labels).errors
        return augcore.facility_location(proxies, int(fraction * N), labels, embeddings=emb)

    benchmark.pedantic(select, rounds=2, warmup_rounds=0)


def test_grad_proxies(benchmark, cifar):
    logits, labels, _ = cifar
    benchmark(augcore.grad_proxies, logits, labels)


def test_plain_torch_proxies_baseline(benchmark, cifar):
    logits, labels, _ = cifar
    benchmark(lambda: torch.softmax(logits, 1) - torch.nn.functional.one_hot(labels, C))


# --- before/after on one machine: python bench/bench_facility_location.py --compare OLD_TREE ---------
# OLD_TREE holds another build of the package (e.g. `git archive <commit> augcore csrc CMakeLists.txt`
# built in place); each round runs both builds in fresh subprocesses, alternating, so a load change
# on the machine hits both alike. Prints medians per (budget, method).
_CHILD = r"""
import json, sys, time, torch
import augcore
g = torch.Generator().manual_seed(0)
labels = torch.arange(50_000) % 10
logits = torch.randn(50_000, 10, generator=g) + 3.0 * torch.nn.functional.one_hot(labels, 10)
proxies = augcore.grad_proxies(logits, labels).errors
out = {}
if KERNEL_ONLY:
    # the greedy alone, no similarity phase: naive on one precomputed 3,000 x 3,000 block
    # (30 steps x 3,000 candidates x 3,000 points = 2.7e8 gain terms)
    sim = torch.rand(3000, 3000, generator=g)
    res = augcore.facility_location(None, 30, similarity=sim, method="naive")
    out["naive 3000, greedy only"] = [res.timings["greedy"], float(res.objective.sum())]
    print(json.dumps(out))
    sys.exit(0)
for fraction in (0.1, 0.3, 0.5):
    for method in ("stochastic", "lazy"):
        t0 = time.perf_counter()
        res = augcore.facility_location(proxies, int(fraction * 50_000), labels, method=method)
        out[f"{int(fraction * 100)}% {method}"] = [time.perf_counter() - t0, float(res.objective.sum())]
print(json.dumps(out))
"""


def _compare(old_tree: str, rounds: int, kernel_only: bool) -> None:
    import json
    import os
    import statistics
    import subprocess
    import sys

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs = {"before": [], "after": []}
    for _ in range(rounds):
        for name, tree in (("before", old_tree), ("after", here)):
            env = dict(os.environ, PYTHONPATH=tree)
            child = f"KERNEL_ONLY = {kernel_only}\n" + _CHILD
            text = subprocess.run([sys.executable, "-c", child], env=env, cwd=tree, check=True,
                                  capture_output=True, text=True).stdout
            runs[name].append(json.loads(text.strip().splitlines()[-1]))
    print(f"{'budget, method':24s} {'before s':>9s} {'after s':>9s} {'ratio':>6s} {'min before':>10s} "
          f"{'min after':>9s} {'ratio':>6s}  objective before / after")
    for key in runs["before"][0]:
        b = statistics.median(r[key][0] for r in runs["before"])
        a = statistics.median(r[key][0] for r in runs["after"])
        b_min = min(r[key][0] for r in runs["before"])
        a_min = min(r[key][0] for r in runs["after"])
        print(f"{key:24s} {b:9.3f} {a:9.3f} {a / b:6.2f} {b_min:10.3f} {a_min:9.3f} {a_min / b_min:6.2f}  "
              f"{runs['before'][0][key][1]:.6f} / {runs['after'][0][key][1]:.6f}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="before/after timing of facility_location at CIFAR-10 scale")
    ap.add_argument("--compare", required=True, help="root of the other build's tree")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kernel-only", action="store_true", help="time the greedy alone (naive, precomputed block)")
    args = ap.parse_args()
    _compare(args.compare, args.rounds, args.kernel_only)
