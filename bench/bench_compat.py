"""The drop-ins against the libraries they replace, on one class of 5,000 points, same run.

    python bench/bench_compat.py [--n 5000] [--dim 10] [--budget 500] [--threads 0] [--repeats 2]

Input: the seed code's case, one class of n gradient proxies e_i = softmax(z_i) - onehot(y_i)
(``cifar_like_logits``, 10 classes, so 10-d points), euclidean similarity, budget 10%.

* submodlib: ``FacilityLocationFunction(n=, data=, metric="euclidean", mode="dense")
  .maximize(budget=, optimizer="LazyGreedy")``, what the coreset paper's released code
  calls per class, against ``augcore.compat.submodlib`` with the same call.
* apricot: ``FacilityLocationSelection(budget, metric="euclidean", optimizer="lazy").fit(X)``
  against ``augcore.compat.apricot``.

Each library's first call in the process is timed on its own (apricot's includes
numba's compilation), then the best of ``--repeats`` further calls; the speedup is
against that warm time. Each drop-in is best of three. The picks of the last calls
are compared. ``--threads`` sets torch's (and the kernel's OpenMP) thread count, 0
keeps the default.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import cifar_like_logits  # noqa: E402


def proxies(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """The n points of class 0 from a balanced ``dim``-class set of n * dim."""
    logits, labels, _ = cifar_like_logits(n * dim, dim, seed=seed)
    logits, labels = logits[labels == 0], labels[labels == 0]
    onehot = torch.nn.functional.one_hot(labels, dim).float()
    return (torch.softmax(logits.float(), 1) - onehot).numpy()


def timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="warm library calls after the first")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x = proxies(args.n, args.dim)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, n={args.n} d={args.dim} budget={args.budget}")
    rows = []

    import submodlib

    from augcore.compat import submodlib as compat_submodlib

    def run_submodlib(module, **extra):
        obj = module.FacilityLocationFunction(n=args.n, data=x, metric="euclidean", mode="dense")
        return obj.maximize(budget=args.budget, optimizer="LazyGreedy", **extra)

    first_s, _ = timed(lambda: run_submodlib(submodlib, show_progress=False), 1)
    ref_s, ref = timed(lambda: run_submodlib(submodlib, show_progress=False), args.repeats)
    ours_s, ours = timed(lambda: run_submodlib(compat_submodlib), 3)
    rows.append(("submodlib LazyGreedy", first_s, ref_s, ours_s, [i for i, _ in ref] == [i for i, _ in ours]))

    import apricot

    from augcore.compat import apricot as compat_apricot

    def run_apricot(module):
        return module.FacilityLocationSelection(args.budget, metric="euclidean", optimizer="lazy").fit(x).ranking

    first_s, _ = timed(lambda: run_apricot(apricot), 1)
    ref_s, ref = timed(lambda: run_apricot(apricot), args.repeats)
    ours_s, ours = timed(lambda: run_apricot(compat_apricot), 3)
    rows.append(("apricot lazy", first_s, ref_s, ours_s, ref.tolist() == ours.tolist()))

    print(f"{'call':<22}{'first s':>9}{'library s':>11}{'augcore s':>11}{'speedup':>9}  same picks")
    for name, first_s, ref_s, ours_s, same in rows:
        print(f"{name:<22}{first_s:>9.3f}{ref_s:>11.3f}{ours_s:>11.3f}{ref_s / ours_s:>8.1f}x  {same}")


if __name__ == "__main__":
    main()
