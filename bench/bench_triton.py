"""Triton backend against the CPU op on the same inputs: both times and their ratio in one run.

Each case builds CIFAR-like proxies, runs ``facility_location(..., backend="triton")`` on the
GPU and ``backend="cpu"`` on a CPU copy of the same tensors, reports the median time of each
(after one warm-up call, which also compiles the Triton kernels), the ratio cpu / triton, and
whether every field of the two results is equal bit for bit (the backend's contract).

Without a GPU, the Triton kernels run in Triton's CPU interpreter (TRITON_INTERPRET=1, set
here before they are imported). Then this only checks that the benchmark runs and that the
results are equal: an interpreter time says nothing about a GPU, and the rows say so
("interpreted": true). ``--smoke`` runs CI-sized cases (a few hundred points).

    python bench/bench_triton.py [--smoke] [--repeats 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # read when augcore's Triton kernels are first imported

from augcore.ops import facility_location  # noqa: E402

FIELDS = ("indices", "gains", "weights", "assignment", "objective")
# (name, points, classes, dim, budget fraction, method); lazy is evaluated naively on Triton
CASES = [("cifar", 50_000, 10, 10, 0.1, "stochastic"), ("cifar", 50_000, 10, 10, 0.3, "stochastic"),
         ("cifar-10k", 10_000, 10, 10, 0.1, "lazy")]
SMOKE_CASES = [("smoke", 240, 4, 10, 0.1, "stochastic"), ("smoke", 240, 4, 10, 0.1, "lazy")]


def proxies(n, classes, dim, seed=0):
    """Softmax-like points (rows sum to 0 after subtracting a one-hot) and balanced labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    p = torch.softmax(torch.randn(n, dim, generator=g) * 2, 1) - torch.nn.functional.one_hot(labels % dim, dim)
    return p.float(), labels


def median_ms(fn, repeats, device):
    fn()  # warm-up: compiles the Triton kernels on first use
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def run_case(name, n, classes, dim, fraction, method, device, repeats):
    x, labels = proxies(n, classes, dim)
    budget = int(round(fraction * n))
    xd, yd = x.to(device), labels.to(device)

    def cpu():
        return facility_location(x, budget, labels, method=method, backend="cpu")

    def triton():
        return facility_location(xd, budget, yd, method=method, backend="triton")

    row = {"case": name, "points": n, "classes": classes, "dim": dim, "budget_pct": int(round(fraction * 100)),
           "method": method, "device": str(device), "interpreted": device.type == "cpu"}
    row["triton_ms"] = median_ms(triton, repeats, device)
    row["cpu_ms"] = median_ms(cpu, repeats, torch.device("cpu"))
    row["cpu_over_triton"] = row["cpu_ms"] / row["triton_ms"]
    want, got = cpu(), triton()
    row["equal"] = all(torch.equal(getattr(want, f), getattr(got, f).cpu()) for f in FIELDS)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="CI-sized cases (what the interpreter can run)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    interpreted = device.type == "cpu"
    cases = SMOKE_CASES if args.smoke or interpreted else CASES
    where = "Triton's CPU interpreter: a run check, not a GPU timing" if interpreted else torch.cuda.get_device_name()
    print(f"triton on {where}; cpu: {torch.get_num_threads()} threads", flush=True)
    rows = []
    for case in cases:
        row = run_case(*case, device=device, repeats=1 if interpreted else args.repeats)
        rows.append(row)
        print(f"{row['case']:10s} {row['budget_pct']:3d}% {row['method']:10s} triton {row['triton_ms']:10.2f} ms  "
              f"cpu {row['cpu_ms']:10.2f} ms  cpu/triton {row['cpu_over_triton']:7.2f}x  equal={row['equal']}"
              + ("  (interpreted)" if interpreted else ""), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    equal = all(r["equal"] for r in rows)
    print("triton: " + ("ok, every result equal to the CPU op's" if equal else "FAIL, a result differs from the CPU op's"))
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
