"""Strong scaling of selection over ranks (torch.distributed, gloo, 1 CPU thread per rank).

    python bench/bench_distributed.py [--ranks 1 2] [--n 20000] [--budget 200] [--images 4096]

Two workloads, each at a fixed total size on 1, 2, ... ranks:

* ``greedi``: one facility-location group of ``--n`` gradient proxies (10-d,
  ``cifar_like_logits``) with budget k; 1 rank is centralised ``facility_location``
  (lazy greedy), W > 1 ranks is ``greedi_facility_location`` (each rank holds n / W
  points). Its objective is scored in float64 and reported relative to centralised greedy.
* ``select``: one distributed selection step of the trainer, ``select_distributed``:
  the inference pass of ``small_cnn`` over ``--images`` random 32x32 images sharded and
  all-gathered, then the coreset selector on rank 0 and the broadcast.

Bytes communicated per step are counted from the tensors exchanged (see
docs/distributed.md for the formulas), so they hold for N GPUs (NCCL) as well.
"""
from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import tempfile
import time

import torch
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cifar_like_logits  # noqa: E402


def _proxies(n: int) -> torch.Tensor:
    from augcore.ops import grad_proxies
    logits, labels, _ = cifar_like_logits(n, 10, seed=0)
    return grad_proxies(logits, labels).errors


def _objective(x: torch.Tensor, picks: torch.Tensor, chunk: int = 4096) -> float:
    """float64 F(S) with s = exp(-d / D), in row chunks (n x k never all at once for large n)."""
    y = x[picks].double()
    return sum(float(torch.exp(-torch.cdist(x[i:i + chunk].double(), y) / x.shape[1]).max(1).values.sum())
               for i in range(0, x.shape[0], chunk))


def _worker(rank, world, port, args, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from augcore.distributed import greedi_facility_location, init_distributed, select_distributed, shard_bounds
    from augcore.models import build_model
    from augcore.ops import facility_location
    from augcore.selection import CoresetSelector
    init_distributed("gloo", expected_world_size=world)
    result = {}
    x = _proxies(args.n)
    start, end = shard_bounds(args.n, rank, world)
    dist.barrier()
    t0 = time.perf_counter()
    if world == 1:
        picks = facility_location(x, args.budget, method="lazy").indices
    else:
        picks = greedi_facility_location(x[start:end], torch.arange(start, end), args.budget, method="lazy").indices
    dist.barrier()
    result["greedi_s"] = time.perf_counter() - t0
    result["greedi_picks"] = picks

    g = torch.Generator().manual_seed(0)
    images = torch.rand(args.images, 3, 32, 32, generator=g)
    labels = torch.randint(0, 10, (args.images,), generator=g)
    data = torch.utils.data.TensorDataset(images, labels)
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, in_channels=3, image_size=32)
    dist.barrier()
    t0 = time.perf_counter()
    selection = select_distributed(CoresetSelector(fraction=0.1), model, data, batch_size=256)
    dist.barrier()
    result["select_s"] = time.perf_counter() - t0
    result["select_inference_s"] = selection.timings["inference"]
    with torch.no_grad():
        result["embedding_dim"] = model.eval()(images[:1])[1].shape[1]
    if rank == 0:
        torch.save(result, out)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--images", type=int, default=4096)
    args = parser.parse_args()
    x = _proxies(args.n)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for world in args.ranks:
            out = os.path.join(tmp, f"w{world}.pt")
            mp.start_processes(_worker, args=(world, _free_port(), args, out), nprocs=world, start_method="spawn")
            rows.append((world, torch.load(out, weights_only=False)))
    base = rows[0][1]
    f_central = _objective(x, base["greedi_picks"])
    d, k, n, c = x.shape[1], args.budget, args.images, 10
    print(f"greedi: one group, n={args.n}, D={d}, k={k};  select: small_cnn inference over {n} images + coreset")
    print(f"{'ranks':>5} {'greedi s':>9} {'speedup':>8} {'F/F_central':>11} {'greedi bytes':>13} "
          f"{'select s':>9} {'speedup':>8} {'stats bytes':>12}")
    for world, r in rows:
        f = _objective(x, r["greedi_picks"])
        # candidates all-gathered (points, indices, count), then k all-reduces of W*k float64 gains
        greedi_bytes = 0 if world == 1 else world * (k * (d * 4 + 8) + 8) + k * world * k * 8
        h = r["embedding_dim"]
        # gathered stats: logits, embeddings, losses (float32), labels and indices (int64)
        stats_bytes = 0 if world == 1 else n * (c + h + 1) * 4 + n * 16
        print(f"{world:>5} {r['greedi_s']:>9.3f} {base['greedi_s'] / r['greedi_s']:>8.2f} {f / f_central:>11.4f} "
              f"{greedi_bytes:>13,} {r['select_s']:>9.3f} {base['select_s'] / r['select_s']:>8.2f} "
              f"{stats_bytes:>12,}")
    print(f"GreeDi worst-case ratio to OPT at W=2: {(1 - 1 / math.e) ** 2 / min(2, k):.3f}")


if __name__ == "__main__":
    main()
