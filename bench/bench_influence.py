"""Cost of one influence selection step at CIFAR-10 scale, against one training epoch.

    python -m pytest bench/bench_influence.py --benchmark-columns=mean,stddev,rounds -s

* ``test_influence_selection_step``: ``InfluenceSelector.select`` on random stats of
  50,000 training examples (10 classes, 64-d embeddings, ``random_stats``) and 5,000
  validation examples: solve s_val = (H + 0.01 I)^-1 grad L_val on the last layer (650
  parameters), score every example (and every candidate variant)
  by one factored dot product, pick the lowest 10%. Cases (``CASES``): CG in float64
  (the default) and float32, CG with 2 candidate variants per example (I_aug per
  variant), LiSSA (depth 200, batches of 1,024).
* ``test_selection_step_vs_training_epoch``: the CG step above against one SGD epoch
  (batch 128, momentum 0.9) of ``augcore.models.build_model(AUGCORE_BENCH_MODEL)``
  (default ``small_cnn``) on random 32x32 images. On the CPU the epoch is timed on
  ``AUGCORE_BENCH_IMAGES`` images (default 2,048; 50,000 on a GPU) and scaled linearly to
  50,000; both numbers and the ratio (selection / 50,000-image epoch) go to
  ``extra_info`` and are printed.

``AUGCORE_BENCH_N`` overrides the 50,000 training examples.
"""
from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import TensorDataset

from common import sync, time_training_epoch

from augcore.influence import InfluenceSelector
from augcore.selection import random_stats

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NUM_EXAMPLES = int(os.environ.get("AUGCORE_BENCH_N", 50_000))
NUM_VAL = 5_000
NUM_CLASSES, EMBEDDING_DIM = 10, 64
EPOCH_SCALE = 50_000




@pytest.fixture(scope="module", params=DEVICES)
def problem(request):
    device = request.param
    train = random_stats(NUM_EXAMPLES, NUM_CLASSES, embedding_dim=EMBEDDING_DIM, seed=0, device=device)
    val = random_stats(NUM_VAL, NUM_CLASSES, embedding_dim=EMBEDDING_DIM, seed=1, device=device)
    variants = [random_stats(NUM_EXAMPLES, NUM_CLASSES, embedding_dim=EMBEDDING_DIM, seed=2 + v, device=device)
                for v in range(2)]
    for variant in variants:  # same examples and labels as `train`, different logits and embeddings
        variant.labels = train.labels
    g = torch.Generator().manual_seed(0)
    weight = (0.1 * torch.randn(NUM_CLASSES, EMBEDDING_DIM, generator=g)).to(device)
    bias = torch.zeros(NUM_CLASSES, device=device)
    return weight, bias, train, val, variants


def _step(problem, solver, num_variants, dtype=torch.float64):
    weight, bias, train, val, variants = problem
    selector = InfluenceSelector(weight, bias, val, budget=0.1, solver=solver, variants=variants[:num_variants],
                                 dtype=dtype, lissa_depth=200, lissa_batch_size=1024)

    def step():
        selection = selector.select(train, epoch=0, seed=0)
        sync(train.logits.device)
        return selection

    return step


CASES = {  # solver, candidate variants per example, dtype of the solve and scores
    "cg": ("cg", 0, torch.float64),
    "cg_float32": ("cg", 0, torch.float32),
    "cg_2_variants": ("cg", 2, torch.float64),
    "lissa": ("lissa", 0, torch.float64),
}


@pytest.mark.parametrize("case", list(CASES))
def test_influence_selection_step(benchmark, problem, case):
    solver, num_variants, dtype = CASES[case]
    selection = benchmark.pedantic(_step(problem, solver, num_variants, dtype), rounds=3, warmup_rounds=1)
    benchmark.extra_info.update({"device": str(problem[2].logits.device), "num_examples": NUM_EXAMPLES,
                                 "num_val": NUM_VAL, "variants": num_variants, "selected": len(selection),
                                 "solver_iterations": selection.info["solver_iterations"],
                                 "solver_relative_residual": selection.info["solver_relative_residual"]})


def test_selection_step_vs_training_epoch(benchmark, problem):
    from augcore.models import build_model

    device = problem[2].logits.device
    selection = benchmark.pedantic(_step(problem, "cg", 0), rounds=3, warmup_rounds=1)
    selection_s = benchmark.stats.stats.mean

    model_name = os.environ.get("AUGCORE_BENCH_MODEL", "small_cnn")
    n = int(os.environ.get("AUGCORE_BENCH_IMAGES", EPOCH_SCALE if device.type == "cuda" else 2_048))
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, NUM_CLASSES, (n,), generator=gen))
    torch.manual_seed(0)
    model = build_model(model_name, NUM_CLASSES).to(device)
    epoch_timed = time_training_epoch(model, data, device)
    epoch_s = epoch_timed * EPOCH_SCALE / n
    ratio = selection_s / epoch_s
    benchmark.extra_info.update({"device": str(device), "model": model_name, "epoch_images_timed": n,
                                 "epoch_s_timed": epoch_timed, "epoch_s_50k": epoch_s,
                                 "selection_s": selection_s, "selection_over_epoch": ratio,
                                 "cg_iterations": selection.info["solver_iterations"]})
    print(f"\n[{device}] influence step ({NUM_EXAMPLES} examples, CG {selection.info['solver_iterations']} its) "
          f"{selection_s:.3f} s; {model_name} epoch {epoch_timed:.2f} s on {n} images -> {epoch_s:.1f} s "
          f"for {EPOCH_SCALE}; ratio {ratio:.4f}")
