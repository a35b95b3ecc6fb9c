"""Ratio tables for the compiled selection core against the libraries researchers use.

    augcore bench                   # 50,000 points, budgets 10/30/50%, a 200,000-point on-the-fly run
    augcore bench --quick           # 10,000 points, 10% only, the reference peer only (seconds)
    augcore bench --json out.json   # also write the rows as JSON

Measured in one process, one run, on the same inputs (:func:`cifar_like_logits`):

* augcore: logits -> proxies -> per-class facility location -> normalised weights;
* the paper's reference backend: submodlib ``FacilityLocationFunction(mode="dense",
  metric="euclidean")`` + LazyGreedy, one class at a time (as the released code does),
  including building the similarity matrix;
* apricot ``FacilityLocationSelection`` (euclidean, lazy and stochastic), per class.

The peers are optional (``pip install submodlib-py apricot-select``); a peer that is not
installed is reported as skipped. Without submodlib the ratios are taken against augcore's
lazy greedy (exact greedy) instead. Objectives are re-evaluated independently in float64
(:func:`float64_objective`). The on-the-fly row runs in a subprocess so that its peak
memory is its own.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

import augcore
from augcore.io import atomic_write_text

CLASSES = 10
FULL_POINTS, QUICK_POINTS = 50_000, 10_000
REFERENCE = "submodlib dense LazyGreedy (reference)"


def cifar_like_logits(n: int = 50_000, classes: int = 10, seed: int = 0, embedding_dim: int = 0):
    """Logits of a model at ~80% train accuracy (true class boosted), balanced labels.

    Returns ``(logits (n, classes) float32, labels (n,) int64, embeddings (n, embedding_dim) or None)``.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=g)]
    logits = torch.randn(n, classes, generator=g) * 1.5
    logits[torch.arange(n), labels] += 2.5
    emb = torch.relu(torch.randn(n, embedding_dim, generator=g)) if embedding_dim else None
    return logits, labels, emb


def float64_objective(points: np.ndarray, labels: np.ndarray, picks: np.ndarray) -> float:
    """Facility location of a selection, evaluated independently in float64.

    Uses the "exp" similarity exp(-d / D) within each class: the objective every method
    of the benchmark is scored by.
    """
    total = 0.0
    dim = points.shape[1]
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        chosen = picks[labels[picks] == c]
        if chosen.size == 0:
            continue
        x = points[members].astype(np.float64)
        y = points[chosen].astype(np.float64)
        d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
        total += np.exp(-np.sqrt(np.maximum(d2, 0)) / dim).max(1).sum()
    return total


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _augcore_select(logits, labels, budget, method, emb=None) -> np.ndarray:
    proxies = augcore.grad_proxies(logits, labels).errors
    res = augcore.facility_location(proxies, budget, labels, method=method, embeddings=emb)
    augcore.normalize_weights(res.weights)
    return res.indices.numpy()


def _per_class_peer(proxies, labels, budgets, pick_one_class) -> np.ndarray:
    picks = []
    for c in range(CLASSES):
        members = np.flatnonzero(labels == c)
        chosen = pick_one_class(proxies[members], int(budgets[c]))
        picks.append(members[np.asarray(chosen, dtype=np.int64)])
    return np.concatenate(picks)


def _submodlib_lazy(x, k):
    import submodlib
    fl = submodlib.FacilityLocationFunction(n=x.shape[0], mode="dense", data=x, metric="euclidean")
    return [i for i, _ in fl.maximize(budget=k, optimizer="LazyGreedy", show_progress=False)]


def _apricot(optimizer: str):
    def pick(x, k):
        import apricot
        return apricot.FacilityLocationSelection(k, metric="euclidean", optimizer=optimizer,
                                                 random_state=0).fit(x).ranking
    return pick


# peer name -> (module it needs, pip package, per-class picker)
PEERS: Dict[str, tuple] = {
    REFERENCE: ("submodlib", "submodlib-py", _submodlib_lazy),
    "apricot lazy": ("apricot", "apricot-select", _apricot("lazy")),
    "apricot stochastic": ("apricot", "apricot-select", _apricot("stochastic")),
}


def missing_peers() -> Dict[str, str]:
    """Peer name -> why it is skipped, for each peer whose library is not installed."""
    return {name: f"skipped: {module} not installed (pip install {package})"
            for name, (module, package, _) in PEERS.items() if importlib.util.find_spec(module) is None}


def _on_the_fly_subprocess(n: int, fraction: float) -> dict:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
    code = f"""
import time, json, torch, augcore
def peak_mib():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
torch.manual_seed(0)
x = torch.randn({n}, 10) * 0.5
before = peak_mib()
t = time.perf_counter()
res = augcore.facility_location(x, int({fraction} * {n}), mode="on_the_fly")
print(json.dumps({{"seconds": time.perf_counter() - t, "peak_rss_mib": peak_mib(),
                   "rss_before_mib": before, "picks": res.indices.numel()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the benchmark's options to ``parser`` (shared by ``augcore bench`` and bench/run.py)."""
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_POINTS:,} points, 10%% only, submodlib only (no apricot), no on-the-fly run")
    parser.add_argument("--points", type=int,
                        help=f"points to select from (default {FULL_POINTS:,}; {QUICK_POINTS:,} with --quick)")
    parser.add_argument("--large-n", type=int, default=200_000,
                        help="points in the single on-the-fly group (default 200,000; not with --quick)")
    parser.add_argument("--json", help="write the machine description and the rows here as JSON")
    return parser


def run_benchmark(quick: bool = False, points: Optional[int] = None, large_n: int = 200_000,
                  out: Callable[[str], None] = print) -> dict:
    """Runs the benchmark; returns ``{"info": ..., "rows": [...], "reference": name}``.

    Each row has ``fraction``, ``method``, ``seconds`` (None when skipped),
    ``speedup_vs_reference``, ``objective_vs_reference`` and, for skipped peers, ``skipped``.
    """
    n = points if points is not None else (QUICK_POINTS if quick else FULL_POINTS)
    if n < 10 * CLASSES:
        raise ValueError(f"points must be at least {10 * CLASSES} (10 per class for a 10% budget), got {n}")
    logits, labels_t, emb = cifar_like_logits(n, CLASSES, embedding_dim=512)
    labels = labels_t.numpy()
    proxies = augcore.grad_proxies(logits, labels_t).errors.numpy()
    fractions = [0.1] if quick else [0.1, 0.3, 0.5]
    skipped = missing_peers()
    reference = REFERENCE if REFERENCE not in skipped else "augcore lazy"
    info = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "threads": augcore.build_info()["openmp_threads"], "torch": torch.__version__, "points": n}
    out(f"# augcore selection benchmark: {n} points, {CLASSES} classes, proxies of dim {CLASSES}; {info}")
    out(f"# reference: {reference}" + ("" if reference == REFERENCE else f" ({skipped[REFERENCE]})"))

    rows: List[dict] = []
    _augcore_select(logits, labels_t, max(1, n // 500), "stochastic")  # warm-up (thread pool, page cache)
    for fraction in fractions:
        budget = int(fraction * n)
        budgets = augcore.split_budget(np.bincount(labels, minlength=CLASSES).tolist(), budget)
        results = {f"augcore {method}": _timed(lambda: _augcore_select(logits, labels_t, budget, method))
                   for method in ("stochastic", "lazy")}
        peers = [REFERENCE]
        if fraction == 0.1 and not quick:   # apricot's first call compiles with numba: a minute
            peers += ["apricot lazy", "apricot stochastic"]
        for name in peers:
            if name in skipped:
                rows.append({"fraction": fraction, "method": name, "seconds": None, "skipped": skipped[name],
                             "speedup_vs_reference": None, "objective_vs_reference": None})
                continue
            results[name] = _timed(lambda: _per_class_peer(proxies, labels, budgets, PEERS[name][2]))
        ref_picks, ref_time = results[reference]
        ref_obj = float64_objective(proxies, labels, ref_picks)
        for name, (picks, secs) in results.items():
            rows.append({"fraction": fraction, "method": name, "seconds": secs,
                         "speedup_vs_reference": ref_time / secs,
                         "objective_vs_reference": float64_objective(proxies, labels, picks) / ref_obj})

    _, secs = _timed(lambda: _augcore_select(logits, labels_t, int(0.1 * n), "stochastic", emb))
    rows.append({"fraction": 0.1, "method": "augcore stochastic, exact last layer (H=512)", "seconds": secs,
                 "speedup_vs_reference": None, "objective_vs_reference": None})
    if not quick:
        large = _on_the_fly_subprocess(large_n, 0.1)
        rows.append({"fraction": 0.1, "method": f"augcore on-the-fly, one group of {large_n} "
                     f"(RSS {large['rss_before_mib']:.0f} MiB before the call)",
                     "seconds": large["seconds"], "peak_rss_mib": large["peak_rss_mib"],
                     "speedup_vs_reference": None, "objective_vs_reference": None})

    out("\n| budget | method | seconds | x reference | objective / reference | peak RSS MiB |")
    out("|---|---|---|---|---|---|")
    for r in rows:
        secs = r["skipped"] if r.get("skipped") else f"{r['seconds']:.3f}"
        speed = f"{r['speedup_vs_reference']:.1f}x" if r["speedup_vs_reference"] else "-"
        obj = f"{100 * r['objective_vs_reference']:.3f}%" if r["objective_vs_reference"] else "-"
        mem = f"{r['peak_rss_mib']:.0f}" if "peak_rss_mib" in r else "-"
        out(f"| {int(100 * r['fraction'])}% | {r['method']} | {secs} | {speed} | {obj} | {mem} |")
    out(f"\n(peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    return {"info": info, "reference": reference, "rows": rows}


def run(args: argparse.Namespace) -> int:
    """Runs the benchmark with parsed :func:`add_arguments` options; writes ``--json`` if given."""
    result = run_benchmark(quick=args.quick, points=args.points, large_n=args.large_n)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m augcore.apps.benchmarks [--quick] [--points N] [--json out.json]``."""
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
