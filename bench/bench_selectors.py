"""Cost of one selection step at CIFAR-10 scale, and of the inference pass that feeds it.

    python -m pytest bench/bench_selectors.py --benchmark-columns=mean,stddev,rounds

* ``test_selection_step``: every selector on precomputed random stats, 50,000 x 10
  logits, 10 balanced classes, 64-d embeddings (``random_stats``), on the CPU and, when
  available, on the GPU. The selection step alone: validation, proxies, greedy or
  2-means, weights.
* ``test_inference_pass_vs_training_epoch``: ``collect_stats`` over a data set of
  random 32x32 images with ``augcore.models.build_model("resnet20")``, against one
  SGD training epoch of the same model on the same data (batch 128). The ratio
  (inference / epoch) is stored in the benchmark's ``extra_info`` and printed.
  Image count: ``AUGCORE_BENCH_IMAGES`` (default 50,000 on a GPU, 2,048 on the CPU,
  where a full CIFAR epoch of ResNet-20 takes minutes).

``AUGCORE_BENCH_N`` overrides the 50,000 of the selection step.
"""
from __future__ import annotations

import os

import pytest
import torch
from torch.utils.data import TensorDataset

from common import sync, time_training_epoch

from augcore.selection import (CoresetSelector, HighLossSelector, MaxLossSelector, MisclassifiedSelector,
                               RandomSelector, SlowLearnableSelector, collect_stats, random_stats)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NUM_EXAMPLES = int(os.environ.get("AUGCORE_BENCH_N", 50_000))
FRACTION = 0.1

SELECTORS = {
    "coreset_logits": lambda: CoresetSelector(FRACTION),
    "coreset_last_layer": lambda: CoresetSelector(FRACTION, proxy="last_layer"),
    "coreset_lazy": lambda: CoresetSelector(FRACTION, method="lazy"),
    "random": lambda: RandomSelector(FRACTION),
    "random_stratified": lambda: RandomSelector(FRACTION, stratified=True),
    "max_loss": lambda: MaxLossSelector(FRACTION),
    "high_loss": lambda: HighLossSelector(FRACTION),
    "misclassified": lambda: MisclassifiedSelector(),
    "slow_learnable_probs": lambda: SlowLearnableSelector(),
    "slow_learnable_embeddings": lambda: SlowLearnableSelector(features="embeddings"),
}


@pytest.fixture(scope="module", params=DEVICES)
def stats(request):
    return random_stats(NUM_EXAMPLES, 10, embedding_dim=64, seed=0, device=request.param)




@pytest.mark.parametrize("name", list(SELECTORS))
def test_selection_step(benchmark, stats, name):
    selector = SELECTORS[name]()
    device = stats.logits.device

    def step():
        selection = selector.select(stats, epoch=0, seed=0)
        sync(device)
        return selection

    selection = benchmark.pedantic(step, rounds=3, warmup_rounds=1)
    benchmark.extra_info.update({"device": str(device), "num_examples": len(stats), "selected": len(selection),
                                 "fraction": selection.info["fraction"]})


def _build_resnet20():
    from augcore.models import build_model

    return build_model("resnet20", num_classes=10)


@pytest.mark.parametrize("device", DEVICES)
def test_inference_pass_vs_training_epoch(benchmark, device):
    default_images = 50_000 if device == "cuda" else 2_048
    n = int(os.environ.get("AUGCORE_BENCH_IMAGES", default_images))
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen))
    torch.manual_seed(0)
    model = _build_resnet20().to(device)

    def inference():
        stats = collect_stats(model, data, batch_size=512, device=device, progress=False)
        sync(device)
        return stats

    benchmark.pedantic(inference, rounds=3, warmup_rounds=1)
    inference_s = benchmark.stats.stats.mean

    # both sides read the same CPU tensors through a DataLoader (pinned on a GPU), as in training
    epoch_s = time_training_epoch(model, data, device)
    ratio = inference_s / epoch_s
    benchmark.extra_info.update({"device": device, "images": n, "epoch_s": epoch_s,
                                 "inference_s": inference_s, "inference_over_epoch": ratio})
    print(f"\n[{device}] {n} images: inference pass {inference_s:.3f} s, training epoch {epoch_s:.3f} s, "
          f"ratio {ratio:.3f}")
