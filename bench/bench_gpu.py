"""GPU selection benchmark: logits -> per-class coreset weights, end to end.

Scenarios:
  cifar:    50,000 points, 10 classes, dim 10, budgets 10/30/50 %    (target < 5 ms on an H100/H200)
  imagenet: 1,281,167 points, 1,000 classes, dim 1,000, budgets 10/30 % (target < 1 s)

In one run on the same inputs it times the compiled CUDA op, a plain-PyTorch GPU
implementation (per-class cdist + exp, greedy over a padded (G, n, n) batch) and the
compiled CPU kernels, and compares the CPU's and the GPU's picks class by class,
reporting the first (class, step) where they diverge (the contract says never). At
ImageNet scale the CPU runs on the first ``--cpu-classes`` classes only. Needs a GPU:

    python bench/bench_gpu.py [--scenario cifar|imagenet|all] [--repeats 5] [--method stochastic] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch

import augcore
from augcore.ops import facility_location, grad_proxies, normalize_weights


def _data(n, classes, dim, device, seed=0):
    g = torch.Generator(device=device).manual_seed(seed)
    logits = torch.randn(n, dim, generator=g, device=device)
    labels = torch.arange(n, device=device) % classes
    return logits, labels


def _augcore(logits, labels, fraction, method, memory_limit, num_groups):
    proxies = grad_proxies(logits, labels).errors
    budget = int(round(fraction * logits.shape[0]))
    res = facility_location(proxies, budget, labels, method=method, memory_limit=memory_limit, num_groups=num_groups)
    return res, normalize_weights(res.weights)


def _plain_torch(logits, labels, fraction, method, eps=0.01):
    """Plain-PyTorch GPU baseline: per-class dense similarities, greedy on a padded batch of classes."""
    e = torch.softmax(logits.float(), 1) - torch.nn.functional.one_hot(labels, logits.shape[1]).float()
    classes = int(labels.max()) + 1
    order = torch.sort(labels, stable=True).indices
    sizes = torch.bincount(labels, minlength=classes)
    n_max = int(sizes.max())
    k = max(1, int(round(fraction * logits.shape[0] / classes)))
    pad = torch.zeros(classes, n_max, e.shape[1], device=e.device)
    valid = torch.arange(n_max, device=e.device)[None, :] < sizes[:, None]
    pad[valid] = e[order]
    sim = torch.exp(-torch.cdist(pad, pad) / e.shape[1]) * valid[:, None, :] * valid[:, :, None]
    m = torch.zeros(classes, n_max, device=e.device)
    chosen = torch.zeros(classes, n_max, dtype=torch.bool, device=e.device)
    picks = []
    sample = math.ceil(n_max / k * math.log(1 / eps))
    for _ in range(k):
        if method == "stochastic":
            cand = torch.rand(classes, n_max, device=e.device).masked_fill(chosen | ~valid, 2).argsort(1)[:, :sample]
        else:
            cand = torch.arange(n_max, device=e.device).expand(classes, n_max)
        rows = torch.gather(sim, 1, cand[:, :, None].expand(-1, -1, n_max))
        gains = (rows - m[:, None, :]).clamp_min(0).sum(-1).masked_fill(torch.gather(chosen | ~valid, 1, cand), -1)
        best = cand.gather(1, gains.argmax(1, keepdim=True))[:, 0]
        chosen[torch.arange(classes), best] = True
        m = torch.maximum(m, sim[torch.arange(classes), best])
        picks.append(best)
    return torch.stack(picks, 1)


def _time(fn, repeats, device):
    """Median milliseconds of `repeats` runs after one warm-up (synchronised around each on CUDA)."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def first_divergence(cpu, gpu, classes):
    """(class, step, cpu pick, gpu pick) of the first difference in greedy order, or None."""
    cpu_idx, gpu_idx = cpu.indices.cpu(), gpu.indices.cpu()
    for c in classes:
        a = cpu_idx[int(cpu.group_ptr[c]):int(cpu.group_ptr[c + 1])]
        b = gpu_idx[int(gpu.group_ptr[c]):int(gpu.group_ptr[c + 1])]
        for step, (u, v) in enumerate(zip(a.tolist(), b.tolist())):
            if u != v:
                return c, step, u, v
        if a.numel() != b.numel():
            return c, min(a.numel(), b.numel()), None, None
    return None


SCENARIOS = {
    "cifar": dict(n=50_000, classes=10, dim=10, fractions=(0.1, 0.3, 0.5)),
    "imagenet": dict(n=1_281_167, classes=1_000, dim=1_000, fractions=(0.1, 0.3)),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="all", choices=["all", *SCENARIOS])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--method", default="stochastic", choices=["naive", "lazy", "stochastic"])
    ap.add_argument("--memory-limit", type=int, default=8 << 30)
    ap.add_argument("--cpu-classes", type=int, default=16, help="classes the CPU solves at ImageNet scale")
    ap.add_argument("--skip-torch", action="store_true", help="skip the plain-PyTorch baseline")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    print(f"device: {torch.cuda.get_device_name()}  build: {augcore.build_info()}", flush=True)
    rows = []
    for name in (SCENARIOS if args.scenario == "all" else [args.scenario]):
        sc = SCENARIOS[name]
        logits, labels = _data(sc["n"], sc["classes"], sc["dim"], "cuda")
        classes = sc["classes"]
        for frac in sc["fractions"]:
            row = {"scenario": name, "budget_pct": int(frac * 100), "method": args.method, "classes": classes}
            run = lambda: _augcore(logits, labels, frac, args.method, args.memory_limit, classes)  # noqa: E731
            row["cuda_ms"] = _time(run, args.repeats, "cuda")
            gpu, _ = run()
            row["cuda_similarity_ms"] = gpu.timings["similarity"] * 1e3
            row["cuda_greedy_ms"] = gpu.timings["greedy"] * 1e3
            if not args.skip_torch:
                row["torch_ms"] = _time(lambda: _plain_torch(logits, labels, frac, args.method), 1, "cuda")
            # CPU on the same inputs: all classes (CIFAR) or the first --cpu-classes (ImageNet)
            cpu_classes = classes if name == "cifar" else min(classes, args.cpu_classes)
            keep = (labels < cpu_classes).nonzero().flatten()
            lc, yc = logits[keep].cpu(), labels[keep].cpu()
            per_class = gpu.budgets[:cpu_classes].tolist()

            def cpu_run():
                proxies = grad_proxies(lc, yc).errors
                return facility_location(proxies, per_class, yc, method=args.method, num_groups=cpu_classes)

            row["cpu_ms"] = _time(cpu_run, 1, "cpu") * (classes / cpu_classes)
            row["cpu_classes"] = cpu_classes
            cpu = cpu_run()
            # the GPU's picks of those classes, in the CPU problem's indices
            sub = facility_location(grad_proxies(logits[keep], labels[keep]).errors, per_class, labels[keep],
                                    method=args.method, num_groups=cpu_classes)
            div = first_divergence(cpu, sub, range(cpu_classes))
            row["first_divergence"] = "none" if div is None else "class %d step %d: cpu %s gpu %s" % div
            row["gains_equal"] = bool(torch.equal(cpu.gains, sub.gains.cpu()))
            rows.append(row)
            times = "  ".join(f"{k}={v:.2f}" for k, v in row.items() if k.endswith("_ms"))
            print(f"{name:9s} {row['budget_pct']:2d}%  {times}  divergence={row['first_divergence']}  "
                  f"gains_equal={row['gains_equal']}", flush=True)
        del logits, labels
        torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
