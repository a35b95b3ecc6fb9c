"""Small driver for compute-sanitizer (bench/gpu_check.sh): every kernel path once.

Groups of 40, 100, 300, 700 and 5,000 points (shared-memory rows, global rows with
state in shared memory, and on-the-fly rows), every method, "exp" and "craig",
dense and on-the-fly, both tie rules, plus grad_proxies and pairwise_sqdist. Each
CUDA result is compared with the CPU kernels' (they must be equal exactly). Every call
runs whatever the comparisons give, so the sanitizer sees every kernel path; a difference
is printed as ``MISMATCH <call>`` and counted in the last line, ``driver: <count>
mismatches``. Exit status: 0 when every result matched, 3 when any differed (1 is left to
a Python error, and compute-sanitizer reports its own errors with the status
``gpu_check.sh`` gives it in ``--error-exitcode``, 97), so the three causes stay apart.
``--device cpu`` runs the same calls on the CPU only (what ``gpu_check.sh --dry-run``
does to check the driver itself). Each facility-location call runs once per greedy variant of
``--variants`` (``AUGCORE_CUDA_GREEDY``: v1, the default kernels, and v2, the restructured ones).

    python bench/gpu_sanitize_driver.py [--device cuda|cpu] [--budget 3] [--sizes 40,100,300,700,5000]
                                        [--variants v1,v2]
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys

import torch

import augcore  # noqa: F401  (registers torch.ops.augcore)

OPS = torch.ops.augcore
MISMATCH_EXIT_STATUS = 3  # a CPU/GPU difference; distinct from a Python error (1) and the sanitizer's 97


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--budget", type=int, default=3, help="picks per group (few steps keep sanitizers fast)")
    ap.add_argument("--sizes", default="40,100,300,700,5000")
    ap.add_argument("--quick", action="store_true", help="lazy and stochastic, one similarity (racecheck/synccheck)")
    ap.add_argument("--variants", default="v1,v2", help="greedy kernels to run (AUGCORE_CUDA_GREEDY values)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(sum(sizes), 10, generator=g)
    h = torch.randn(sum(sizes), 6, generator=g)
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.tensor(sizes), 0)
    bud = torch.tensor([min(args.budget, s) for s in sizes], dtype=torch.int64)
    dev = args.device
    failures = 0

    def compare(name, cpu_out, dev_out):
        nonlocal failures
        for a, b in zip(cpu_out, dev_out):
            if a.numel() and not torch.equal(a, b.cpu()):
                print(f"MISMATCH {name}", flush=True)
                failures += 1
                return
        print(f"ok {name}", flush=True)

    labels = torch.randint(0, 10, (sum(sizes),), generator=g)
    compare("grad_proxies", OPS.grad_proxies(x, labels, h, 0), OPS.grad_proxies(x.to(dev), labels.to(dev), h.to(dev), 0))
    for tiles in ("v1", "blocked"):  # both tile kernels (AUGCORE_CUDA_TILES), proxies and exact gradients
        os.environ["AUGCORE_CUDA_TILES"] = tiles
        compare(f"pairwise_sqdist tiles={tiles}", (OPS.pairwise_sqdist(x, None, ptr, 1.0),),
                (OPS.pairwise_sqdist(x.to(dev), None, ptr, 1.0),))
        compare(f"pairwise_sqdist tiles={tiles} exact", (OPS.pairwise_sqdist(x, h, ptr, 1.0),),
                (OPS.pairwise_sqdist(x.to(dev), h.to(dev), ptr, 1.0),))
        craig = (1, 10.0, 1.0, 2, 0.2, 7, 0, 1 << 30, 0)  # craig: the tiles' sqdist + max and transform
        compare(f"facility_location tiles={tiles} craig", OPS.facility_location(x, None, None, ptr, bud, *craig)[:5],
                OPS.facility_location(x.to(dev), None, None, ptr, bud, *craig)[:5])
    os.environ["AUGCORE_CUDA_TILES"] = "v1"
    methods = [1, 2] if args.quick else [0, 1, 2]  # quick: lazy (v2's batched rounds) and stochastic
    kinds = [0] if args.quick else [0, 1]
    modes = [0, 2]  # auto (shared and global rows), on-the-fly
    for variant in args.variants.split(","):
        os.environ["AUGCORE_CUDA_GREEDY"] = variant  # read by the CUDA op at each call
        for method, kind, mode, tie in itertools.product(methods, kinds, modes, [0, 1]):
            if method == 1 and tie == 1:
                continue  # submodlib's LazyGreedy: CPU only
            call = (kind, 10.0, 1.0, method, 0.2, 7, mode, 1 << 30, tie)
            cpu = OPS.facility_location(x, None, None, ptr, bud, *call)
            out = OPS.facility_location(x.to(dev), None, None, ptr, bud, *call)
            compare(f"facility_location {variant} method={method} kind={kind} mode={mode} tie_break={tie}", cpu[:5],
                    out[:5])
        emb_call = (0, 10.0 * 7, 1.0, 2, 0.2, 7, 0, 1 << 30, 0)
        compare(f"facility_location {variant} exact last layer",
                OPS.facility_location(x, h, None, ptr, bud, *emb_call)[:5],
                OPS.facility_location(x.to(dev), h.to(dev), None, ptr, bud, *emb_call)[:5])
    if dev == "cuda":
        torch.cuda.synchronize()
    print(f"driver: {failures} mismatches", flush=True)
    return MISMATCH_EXIT_STATUS if failures else 0


if __name__ == "__main__":
    sys.exit(main())
