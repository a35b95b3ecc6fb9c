"""Throughput of the generation driver on the CPU with the tiny random img2img pipeline,
and the share of generation that targeting the slow-learnable subset saves.

    python bench/bench_generate.py [--batch-sizes 1 4 16] [--images 16] [--total-steps 20]

The paper generates copies only for the slow-learnable examples (about 30% of CIFAR-10),
so generation costs that fraction of generating for the whole data set: it saves
1 - fraction. The fraction here is measured by SlowLearnableSelector on random but
plausible inference statistics (augcore.selection.synthetic.random_stats).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch


def main() -> None:
    from augcore.generate import generate_copies, load_backend
    from augcore.generate.tiny import build_tiny_img2img, tiny_image_batch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--total-steps", type=int, default=20)
    p.add_argument("--step", type=int, default=10, help="kept step s (denoising steps per copy)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    class Data(torch.utils.data.Dataset):
        images = tiny_image_batch(args.images, 3, (args.image_size, args.image_size))
        targets = torch.arange(args.images) % 3
        classes = ["cat", "dog", "car"]

        def __len__(self):
            return args.images

        def __getitem__(self, i):
            return self.images[i], int(self.targets[i])

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        backend = load_backend(build_tiny_img2img(f"{tmp}/sd", resolution=32), total_steps=args.total_steps)
        backend.generate(torch.rand(1, 3, 32, 32), ["a photo of a cat"], 1, [torch.Generator()])  # warm-up
        for bs in args.batch_sizes:
            t0 = time.perf_counter()
            report = generate_copies(Data(), range(args.images), backend, f"{tmp}/out{bs}", steps=(args.step,),
                                     batch_size=bs, progress=False)
            rows.append({"batch_size": bs, "images": report.generated, "seconds": round(report.seconds, 3),
                         "images_per_s": round(report.images_per_second, 2),
                         "wall_with_store_s": round(time.perf_counter() - t0, 3)})

    from augcore.selection import SlowLearnableSelector
    from augcore.selection.synthetic import random_stats

    stats = random_stats(50_000, 10, seed=0)
    selection = SlowLearnableSelector().select(stats)
    fraction = len(selection) / len(stats)
    print(json.dumps({"device": "cpu", "threads": torch.get_num_threads(), "total_steps": args.total_steps,
                      "step": args.step, "throughput": rows,
                      "selected_fraction": round(fraction, 4), "generation_saved": round(1 - fraction, 4)}, indent=1))


if __name__ == "__main__":
    main()
