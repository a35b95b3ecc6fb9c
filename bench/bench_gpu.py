"""GPU selection benchmark: logits -> per-class coreset weights, end to end.

Scenarios:
  cifar:    50,000 points, 10 classes, dim 10, budgets 10/30/50 %    (target < 5 ms on an H100/H200)
  imagenet: 1,281,167 points, 1,000 classes, dim 1,000, budgets 10/30 % (target < 1 s)

In one run on the same inputs it times the compiled CUDA op, a plain-PyTorch GPU
implementation (per-class cdist + exp, greedy over a padded (G, n, n) batch) and the
compiled CPU kernels, and compares the two devices in three stages (the contract says
they never differ), so that a difference is attributed to the stage that made it:

  proxies_equal               CPU and GPU ``grad_proxies`` of the same logits, bit for bit;
  shared_proxies_divergence   the greedy on CPU and GPU from ONE proxies tensor (the CPU's):
                              "none", or the first (class, step) whose picks differ;
  first_divergence            end to end (each device's own proxies): "none" or the first difference;
  gains_equal                 the end-to-end gains, bit for bit.

Each scenario runs the CUDA op with each kernel variant of ``--variants``, one row per variant with
``variant`` set: ``v1`` (the default kernels) or ``v2`` (the restructured greedy, ``AUGCORE_CUDA_GREEDY``),
optionally with ``+blocked`` (the register-blocked distance tiles, ``AUGCORE_CUDA_TILES=blocked``: compare
the row's ``cuda_similarity_ms`` with v2's) or ``+cluster1`` (v2 on one block per group,
``AUGCORE_CUDA_CLUSTER=1``: compare with v2's clusters); ``cluster_size`` is the largest cluster the host
plan gives the row's launches (``cuda_launch_plan`` with this GPU's SMs and the portable limit of 8), and
with ``--lazy-v2`` one more row of v2's exact batched lazy greedy ("lazy"; v1 evaluates lazy naively,
seconds at these scales). Each row also carries ``predicted_ms``, the time ``bench/gpu_model.py``
predicts for that variant on this GPU (a model, not a measurement). At ImageNet scale the CPU runs on
the first ``--cpu-classes`` classes only. ``bench/gpu_check.sh --report bench`` reads the
rows written with ``--json``. Needs a GPU:

    python bench/bench_gpu.py [--scenario cifar|imagenet|all] [--repeats 5] [--method stochastic]
                              [--variants v1,v2,v2+blocked,v2+cluster1] [--lazy-v2] [--json out.json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch

import augcore
from augcore.ops import facility_location, grad_proxies, normalize_weights

try:  # run as a script (bench/ on sys.path) or loaded from its path by the tests
    import gpu_model
except ImportError:  # pragma: no cover - the tests put bench/ on sys.path
    import importlib.util
    _spec = importlib.util.spec_from_file_location("gpu_model", Path(__file__).with_name("gpu_model.py"))
    gpu_model = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(gpu_model)


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


def describe_divergence(div) -> str:
    """first_divergence's answer as gpu_check.sh prints it: "none" or "class C step S: cpu P gpu Q"."""
    return "none" if div is None else "class %d step %d: cpu %s gpu %s" % div


VARIANT_OPTIONS = {"blocked": ("AUGCORE_CUDA_TILES", "blocked"), "cluster1": ("AUGCORE_CUDA_CLUSTER", "1")}


def variant_environment(variant):
    """The environment the CUDA op reads at each call for a variant "v1" or "v2", optionally followed by
    "+blocked" and/or "+cluster1" (cluster1 with v2 only); ValueError naming the variant otherwise."""
    greedy, *options = variant.split("+")
    if greedy not in ("v1", "v2") or any(o not in VARIANT_OPTIONS for o in options) or \
            ("cluster1" in options and greedy != "v2"):
        raise ValueError(f"variant must be v1 or v2, optionally +blocked, and v2 +cluster1; got {variant!r}")
    env = {"AUGCORE_CUDA_GREEDY": greedy, "AUGCORE_CUDA_TILES": "v1", "AUGCORE_CUDA_CLUSTER": ""}
    env.update(VARIANT_OPTIONS[o] for o in options)
    return env


@contextlib.contextmanager
def greedy_variant(variant):
    """The CUDA op's kernels (AUGCORE_CUDA_GREEDY, _TILES, _CLUSTER, read at each call) set to `variant` inside."""
    env = variant_environment(variant)
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


def planned_cluster_size(labels, budgets, method, variant, memory_limit, device):
    """The largest cluster size of the host plan's launches for this row (1 without clusters): v2 on a
    device with clusters (sm_90), the portable limit of 8, capped by +cluster1."""
    if not variant.startswith("v2") or device != "cuda" or torch.cuda.get_device_capability()[0] < 9:
        return 1
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    optin = getattr(props, "shared_memory_per_block_optin", 232_448)
    sizes = torch.bincount(labels.cpu(), minlength=len(budgets))
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(sizes, 0)
    widest = 1 if "cluster1" in variant else 8
    codes = {"naive": 0, "lazy": 1, "stochastic": 2}
    _, launches = torch.ops.augcore.cuda_launch_plan(ptr, torch.as_tensor(budgets, dtype=torch.int64), False, 0,
                                                     memory_limit, optin, -1, 2, codes[method],
                                                     props.multi_processor_count, widest, 0.01)
    return int(launches[:, 7].max()) if launches.numel() else 1


def compare_devices(logits, labels, budgets, method, device, classes, cpu_cache=None):
    """The three stages compared between the CPU and `device` on the given classes (labels < classes):
    proxies, the greedy on one shared proxies tensor, and end to end. `budgets`: picks per class.
    `cpu_cache` (a dict) keeps the CPU's side for the next variant on the same inputs."""
    cache = {} if cpu_cache is None else cpu_cache
    keep = (labels < classes).nonzero().flatten()
    lc, yc = logits[keep].cpu(), labels[keep].cpu()
    ld, yd = lc.to(device), yc.to(device)
    if "proxies" not in cache:
        cache["proxies"] = grad_proxies(lc, yc).errors
    p_cpu = cache["proxies"]
    p_dev = grad_proxies(ld, yd).errors

    def select(proxies, y):
        return facility_location(proxies, budgets, y, method=method, num_groups=classes)

    if "selection" not in cache:
        cache["selection"] = select(p_cpu, yc)
    cpu = cache["selection"]
    shared = select(p_cpu.to(device), yd)  # the greedy alone: both devices start from the CPU's proxies
    end_to_end = select(p_dev, yd)
    return {
        "proxies_equal": bool(torch.equal(p_cpu, p_dev.cpu())),
        "shared_proxies_divergence": describe_divergence(first_divergence(cpu, shared, range(classes))),
        "first_divergence": describe_divergence(first_divergence(cpu, end_to_end, range(classes))),
        "gains_equal": bool(torch.equal(cpu.gains, end_to_end.gains.cpu())),
    }


SCENARIOS = {
    "cifar": dict(n=50_000, classes=10, dim=10, fractions=(0.1, 0.3, 0.5)),
    "imagenet": dict(n=1_281_167, classes=1_000, dim=1_000, fractions=(0.1, 0.3)),
}


def measure_row(name, sc, frac, logits, labels, *, method="stochastic", device="cuda", repeats=5,
                memory_limit=8 << 30, cpu_classes=16, skip_torch=False, predicted_ms=float("nan"), variant="v1",
                cpu_cache=None):
    """One scenario row: the op timed on `device` with the greedy `variant`, the plain-PyTorch baseline,
    the CPU op on the same inputs (all classes, or the first `cpu_classes` for ImageNet, its time scaled
    to all), the three CPU/device comparisons and `predicted_ms`. `cpu_cache` (a dict, one per scenario,
    budget and method) lets the next variant reuse the CPU's side. `device="cpu"` runs it with the CPU
    standing in for both (the schema test)."""
    classes = sc["classes"]
    cache = {} if cpu_cache is None else cpu_cache
    row = {"scenario": name, "budget_pct": int(round(frac * 100)), "method": method, "variant": variant,
           "classes": classes}
    run = lambda: _augcore(logits, labels, frac, method, memory_limit, classes)  # noqa: E731
    with greedy_variant(variant):
        row["cuda_ms"] = _time(run, repeats, device)
        res, _ = run()
    row["predicted_ms"] = predicted_ms
    row["cluster_size"] = planned_cluster_size(labels, res.budgets.tolist(), method, variant, memory_limit, device)
    row["cuda_similarity_ms"] = res.timings["similarity"] * 1e3
    row["cuda_greedy_ms"] = res.timings["greedy"] * 1e3
    if not skip_torch:
        if "torch_ms" not in cache:
            cache["torch_ms"] = _time(lambda: _plain_torch(logits, labels, frac, method), 1, device)
        row["torch_ms"] = cache["torch_ms"]
    # the CPU on the same inputs: all classes, or the first cpu_classes (ImageNet), with the device's budgets
    cpu_classes = classes if name != "imagenet" else min(classes, cpu_classes)
    keep = (labels < cpu_classes).nonzero().flatten()
    lc, yc = logits[keep].cpu(), labels[keep].cpu()
    per_class = res.budgets[:cpu_classes].tolist()

    def cpu_run():
        return facility_location(grad_proxies(lc, yc).errors, per_class, yc, method=method, num_groups=cpu_classes)

    if "cpu_ms" not in cache:
        cache["cpu_ms"] = _time(cpu_run, 1, "cpu") * (classes / cpu_classes)
    row["cpu_ms"] = cache["cpu_ms"]
    row["cpu_classes"] = cpu_classes
    with greedy_variant(variant):
        row.update(compare_devices(logits, labels, per_class, method, device, cpu_classes, cache))
    return row


def predicted_key(variant):
    """gpu_model.predict's entry for a variant: v1's kernels (v1+blocked too: the model has no such
    column), v2's greedy, or v2's with the blocked tiles."""
    if variant.startswith("v1"):
        return "total_ms"
    return "restructured_blocked_ms" if "blocked" in variant.split("+") else "restructured_ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="all", choices=["all", *SCENARIOS])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--method", default="stochastic", choices=["naive", "lazy", "stochastic"])
    ap.add_argument("--memory-limit", type=int, default=8 << 30)
    ap.add_argument("--cpu-classes", type=int, default=16, help="classes the CPU solves at ImageNet scale")
    ap.add_argument("--skip-torch", action="store_true", help="skip the plain-PyTorch baseline")
    ap.add_argument("--variants", default="v1,v2", help="kernels: v1 or v2, optionally +blocked (tiles), "
                    "v2 +cluster1 (one block per group)")
    ap.add_argument("--lazy-v2", action="store_true", help="also v2's batched lazy greedy (method lazy)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    for variant in args.variants.split(","):
        variant_environment(variant)  # a bad variant fails before any work
    print(f"device: {torch.cuda.get_device_name()}  build: {augcore.build_info()}", flush=True)
    rows = []
    for name in (SCENARIOS if args.scenario == "all" else [args.scenario]):
        sc = SCENARIOS[name]
        logits, labels = _data(sc["n"], sc["classes"], sc["dim"], "cuda")
        gpu = gpu_model.gpu_for_device_name(torch.cuda.get_device_name())
        runs = [(args.method, v) for v in args.variants.split(",")] + ([("lazy", "v2")] if args.lazy_v2 else [])
        for frac in sc["fractions"]:
            caches = {}  # per method: the CPU's side, shared by the variants
            for method, variant in runs:
                predicted = gpu_model.predict(name, int(round(frac * 100)), method, gpu, args.memory_limit,
                                              max_cluster=1 if "cluster1" in variant.split("+") else 8)
                row = measure_row(name, sc, frac, logits, labels, method=method, device="cuda",
                                  repeats=args.repeats, memory_limit=args.memory_limit, cpu_classes=args.cpu_classes,
                                  skip_torch=args.skip_torch or method == "lazy", variant=variant,
                                  predicted_ms=predicted[predicted_key(variant)],
                                  cpu_cache=caches.setdefault(method, {}))
                rows.append(row)
                if args.json:  # after every row: a run cut by its cap still leaves the rows it measured
                    Path(args.json).write_text(json.dumps(rows, indent=1))
                times = "  ".join(f"{k}={v:.2f}" for k, v in row.items() if k.endswith("_ms"))
                print(f"{name:9s} {row['budget_pct']:2d}% {method} {variant} (cluster {row['cluster_size']})  {times}  "
                      f"proxies_equal={row['proxies_equal']}  shared_proxies={row['shared_proxies_divergence']}  "
                      f"end_to_end={row['first_divergence']}  gains_equal={row['gains_equal']}  "
                      f"(predicted: {gpu.name} model)", flush=True)
        del logits, labels
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
