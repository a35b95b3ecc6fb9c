"""GPU selection benchmark: logits -> per-class coreset weights, end to end.

Scenarios (ARCHITECTURE.md, issue 3):
  cifar:    50,000 points, 10 classes, dim 10, budgets 10/30/50 %   (target < 5 ms on an H200)
  imagenet: 1,281,167 points, 1,000 classes, dim 1,000, budgets 10/30 % (target < 1 s, memory bounded)

Each scenario times, in one run on the same inputs: the compiled CUDA op, the Triton
backend, a plain-PyTorch GPU implementation (dense per-class cdist + exp, greedy
over a padded (G, n, n) batch; stochastic sampling with torch.randperm), and the
compiled CPU kernels; it prints milliseconds and ratios. Needs a CUDA GPU:

    python bench/bench_gpu.py [--scenario cifar|imagenet|all] [--repeats 5] [--method stochastic]
"""
from __future__ import annotations

import argparse
import math
import time

import torch

import augcore  # noqa: F401
from augcore.ops import facility_location, grad_proxies, normalize_weights


def _data(n, classes, dim, device, seed=0):
    g = torch.Generator(device=device).manual_seed(seed)
    logits = torch.randn(n, dim, generator=g, device=device)
    labels = torch.arange(n, device=device) % classes
    return logits, labels


def _augcore(logits, labels, fraction, backend, method, memory_limit):
    proxies = grad_proxies(logits, labels).errors
    budget = int(round(fraction * logits.shape[0]))
    res = facility_location(proxies, budget, labels, method=method, backend=backend, memory_limit=memory_limit)
    return normalize_weights(res.weights)


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
    fn()  # warm-up (compilation, allocator)
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


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
    ap.add_argument("--skip-cpu", action="store_true", help="skip the CPU kernels (slow at ImageNet scale)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    print(f"device: {torch.cuda.get_device_name()}  build: {augcore.build_info()}")
    names = SCENARIOS if args.scenario == "all" else [args.scenario]
    for name in names:
        sc = SCENARIOS[name]
        logits, labels = _data(sc["n"], sc["classes"], sc["dim"], "cuda")
        for frac in sc["fractions"]:
            row = {}
            row["cuda"] = _time(lambda: _augcore(logits, labels, frac, "compiled", args.method, args.memory_limit),
                                args.repeats, "cuda")
            if args.method != "lazy":
                row["triton"] = _time(lambda: _augcore(logits, labels, frac, "triton", args.method, args.memory_limit),
                                      max(1, args.repeats // 2), "cuda")
            row["torch"] = _time(lambda: _plain_torch(logits, labels, frac, args.method), 1, "cuda")
            if not args.skip_cpu:
                lc, yc = logits.cpu(), labels.cpu()
                row["cpu"] = _time(lambda: _augcore(lc, yc, frac, "compiled", args.method, args.memory_limit), 1,
                                   "cpu")
            ratios = "  ".join(f"{k}/cuda={v / row['cuda']:.1f}x" for k, v in row.items() if k != "cuda")
            times = "  ".join(f"{k}={v:.2f}ms" for k, v in row.items())
            print(f"{name:9s} {int(frac * 100):2d}%  {times}  {ratios}")


if __name__ == "__main__":
    main()
