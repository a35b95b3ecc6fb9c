"""The eval-mode pass of ``collect_stats``, before and after its speed work, on the CPU.

    python bench/bench_stats_pass.py [--images 2048] [--repeats 3]

Two cases:

* digits (1,437 training images, 8x8) with ``build_model("small_cnn")``, and
* random 32x32 images (``--images`` of them, an in-memory ``ImageDataset``) with the
  CIFAR ResNet-20 (``build_model("resnet20")``),

both under ``eval_transform``. Rows:

* ``before``: an unshuffled ``DataLoader`` of the data set (batch 512): what
  ``collect_stats`` built before batched loading, one transform call per image;
* ``after``: ``collect_stats(model, dataset)``: images stacked and transformed a
  batch at a time;
* ``after, batch 1024`` / ``channels_last`` / ``bf16`` / ``1 worker``: the options.

Each row is the median of ``--repeats`` runs (interleaved, so load drift hits every
row alike). ``epoch`` is one SGD training epoch of the same model on the same images
(batch 128, ``common.time_training_epoch``), for the pass / epoch ratio at R = 1.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import time_training_epoch  # noqa: E402

from augcore.data import load_dataset  # noqa: E402
from augcore.data.datasets import ImageDataset, _TensorImages  # noqa: E402
from augcore.data.transforms import eval_transform  # noqa: E402
from augcore.models import build_model  # noqa: E402
from augcore.selection import collect_stats  # noqa: E402


def random_images(n: int) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return ImageDataset(_TensorImages(images), torch.arange(n) % 10, [str(c) for c in range(10)], name="random32",
                        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def variants(plain, bf16: bool):
    rows = {"before (per-image loader, batch 512)": lambda m: collect_stats(m, DataLoader(plain, batch_size=512),
                                                                             progress=False),
            "after (batched loading, batch 512)": lambda m: collect_stats(m, plain, progress=False),
            "after, batch 1024": lambda m: collect_stats(m, plain, batch_size=1024, progress=False),
            "after, channels_last": lambda m: collect_stats(m, plain, channels_last=True, progress=False),
            "after, 1 loader worker": lambda m: collect_stats(m, plain, num_workers=1, progress=False)}
    if bf16:
        rows["after, bf16 autocast"] = lambda m: collect_stats(m, plain, amp="bf16", progress=False)
    return rows


def measure(name: str, model, plain, repeats: int, bf16: bool) -> None:
    rows = variants(plain, bf16)
    times = {row: [] for row in rows}
    for _ in range(repeats):
        for row, fn in rows.items():
            t0 = time.perf_counter()
            fn(model)
            times[row].append(time.perf_counter() - t0)
    train = TensorDataset(torch.stack([plain[i][0] for i in range(len(plain))]), plain.targets.clone())
    epoch = time_training_epoch(model, train, "cpu")
    print(f"\n{name}: {len(plain)} images, one training epoch {epoch:.2f} s")
    print(f"{'pass':<40}{'median s':>10}{'/ epoch':>9}")
    for row, values in times.items():
        median = statistics.median(values)
        print(f"{row:<40}{median:>10.3f}{median / epoch:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, torch {torch.__version__}")
    torch.manual_seed(0)
    digits = load_dataset("digits", train=True)
    measure("digits, small_cnn", build_model("small_cnn", 10, in_channels=1),
            digits.with_transform(eval_transform(digits)), args.repeats, bf16=True)
    images = random_images(args.images)
    # bf16 is left out here: without native bf16 (AVX-512 BF16 / AMX) it runs at a small fraction of float32
    measure("random 32x32, resnet20", build_model("resnet20", 10), images.with_transform(eval_transform(images)),
            args.repeats, bf16=False)


if __name__ == "__main__":
    main()
