"""Ratio tables for the compiled selection core against the libraries researchers use.

    python bench/run.py                 # everything (a few minutes on 2 cores)
    python bench/run.py --quick         # 10% only, fewer peers, no 200k run
    python bench/run.py --json out.json

Measured in one process, one run, on the same inputs (bench/common.py):
* augcore: logits -> proxies -> per-class facility location -> normalised weights;
* the paper's reference backend: submodlib FacilityLocationFunction(mode="dense",
  metric="euclidean") + LazyGreedy, one class at a time (as the released code does),
  including building the similarity matrix;
* apricot FacilityLocationSelection (euclidean, lazy and stochastic), per class.
Objectives are re-evaluated independently in float64 (common.float64_objective).
The on-the-fly row runs in a subprocess so its peak RSS is its own.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import augcore  # noqa: E402
from common import cifar_like_logits, float64_objective  # noqa: E402

N, C = 50_000, 10


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def augcore_select(logits, labels, budget, method, emb=None):
    proxies = augcore.grad_proxies(logits, labels).errors
    res = augcore.facility_location(proxies, budget, labels, method=method, embeddings=emb)
    augcore.normalize_weights(res.weights)
    return res.indices.numpy()


def per_class_peer(proxies, labels, budgets, pick_one_class):
    picks = []
    for c in range(C):
        members = np.flatnonzero(labels == c)
        chosen = pick_one_class(proxies[members], int(budgets[c]))
        picks.append(members[np.asarray(chosen, dtype=np.int64)])
    return np.concatenate(picks)


def submodlib_lazy(x, k):
    import submodlib
    fl = submodlib.FacilityLocationFunction(n=x.shape[0], mode="dense", data=x, metric="euclidean")
    return [i for i, _ in fl.maximize(budget=k, optimizer="LazyGreedy", show_progress=False)]


def apricot_select(optimizer):
    def pick(x, k):
        import apricot
        return apricot.FacilityLocationSelection(k, metric="euclidean", optimizer=optimizer,
                                                 random_state=0).fit(x).ranking
    return pick


def on_the_fly_subprocess(n: int, fraction: float) -> dict:
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10%% only, submodlib + apricot lazy, no 200k run")
    ap.add_argument("--large-n", type=int, default=200_000, help="points in the single on-the-fly group")
    ap.add_argument("--json", help="write the rows here as JSON")
    args = ap.parse_args(argv)

    logits, labels_t, emb = cifar_like_logits(N, C, embedding_dim=512)
    labels = labels_t.numpy()
    proxies = augcore.grad_proxies(logits, labels_t).errors.numpy()
    fractions = [0.1] if args.quick else [0.1, 0.3, 0.5]
    rows = []
    info = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "threads": augcore.build_info()["openmp_threads"], "torch": torch.__version__}
    print(f"# augcore selection benchmark: {N} points, {C} classes, proxies of dim {C}; {info}")

    augcore_select(logits, labels_t, 100, "stochastic")  # warm-up (thread pool, page cache)
    for fraction in fractions:
        budget = int(fraction * N)
        budgets = augcore.split_budget(np.bincount(labels, minlength=C).tolist(), budget)
        results = {}
        for method in ("stochastic", "lazy"):
            picks, secs = timed(lambda: augcore_select(logits, labels_t, budget, method))
            results[f"augcore {method}"] = (picks, secs)
        peers = {"submodlib dense LazyGreedy (reference)": submodlib_lazy}
        if fraction == 0.1:
            peers["apricot lazy"] = apricot_select("lazy")
            if not args.quick:
                peers["apricot stochastic"] = apricot_select("stochastic")
        for name, fn in peers.items():
            picks, secs = timed(lambda: per_class_peer(proxies, labels, budgets, fn))
            results[name] = (picks, secs)
        ref_name = "submodlib dense LazyGreedy (reference)"
        ref_time = results[ref_name][1]
        ref_obj = float64_objective(proxies, labels, results[ref_name][0])
        for name, (picks, secs) in results.items():
            obj = float64_objective(proxies, labels, picks)
            rows.append({"fraction": fraction, "method": name, "seconds": secs, "speedup_vs_reference": ref_time / secs,
                         "objective_vs_reference": obj / ref_obj})

    picks, secs = timed(lambda: augcore_select(logits, labels_t, int(0.1 * N), "stochastic", emb))
    rows.append({"fraction": 0.1, "method": "augcore stochastic, exact last layer (H=512)", "seconds": secs,
                 "speedup_vs_reference": None, "objective_vs_reference": None})
    if not args.quick:
        large = on_the_fly_subprocess(args.large_n, 0.1)
        rows.append({"fraction": 0.1, "method": f"augcore on-the-fly, one group of {args.large_n} "
                     f"(RSS {large['rss_before_mib']:.0f} MiB before the call)",
                     "seconds": large["seconds"], "peak_rss_mib": large["peak_rss_mib"],
                     "speedup_vs_reference": None, "objective_vs_reference": None})

    print("\n| budget | method | seconds | x reference | objective / reference | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        speed = f"{r['speedup_vs_reference']:.1f}x" if r["speedup_vs_reference"] else "-"
        obj = f"{100 * r['objective_vs_reference']:.3f}%" if r["objective_vs_reference"] else "-"
        mem = f"{r['peak_rss_mib']:.0f}" if "peak_rss_mib" in r else "-"
        print(f"| {int(100 * r['fraction'])}% | {r['method']} | {r['seconds']:.3f} | {speed} | {obj} | {mem} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"info": info, "rows": rows}, fh, indent=1)
    print(f"\n(peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
