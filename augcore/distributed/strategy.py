"""The loop under ``torchrun`` with DistributedDataParallel (CPU/gloo or GPU/nccl): a strategy.

What changes against one process:

* the model is wrapped in ``DistributedDataParallel``; rank 0's initial weights reach
  every rank at construction;
* every global batch of the single-process run is split over the ranks
  (``ShardedBatchSampler``): items keep their weights, and each rank's loss is scaled
  by n_r * world / n_batch, so the averaged gradient is the global-batch gradient and a
  W-rank run follows the single-process run with the same ``optim.batch_size`` (exactly
  for models without BatchNorm; BatchNorm normalises per rank);
* inference passes are sharded and all-gathered; per-class selections (coreset) are
  sharded by class: each rank solves its classes and the picks are all-gathered; other
  selectors run on rank 0 and their ``Selection`` is broadcast; every rank checks it
  holds the same selection;
* SAM's first pass (the perturbation's gradient) runs under ``no_sync`` (each rank
  perturbs by its local gradient, as distributed SAM implementations do);
* only rank 0 writes checkpoints, logs and plots; a resume loads rank 0's checkpoint
  on every rank after a barrier; logged train loss/accuracy are summed over ranks.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from augcore.distributed.env import init_distributed
from augcore.distributed.selection import (broadcast_selection, check_same_selection, collect_stats_distributed,
                                           select_by_class_distributed)
from augcore.train.strategy import SingleProcess


class DDPStrategy(SingleProcess):
    """One rank of a ``torchrun`` launch; joins the process group from the environment."""

    def __init__(self, backend: str = "gloo"):
        self.env = init_distributed(backend)
        self.rank, self.world_size = self.env.rank, self.env.world_size
        self.ddp: Optional[DistributedDataParallel] = None

    def wrap_model(self, model: nn.Module) -> nn.Module:
        param = next(iter(model.parameters()), None)
        device_ids = [param.device.index] if param is not None and param.device.type == "cuda" else None
        self.ddp = DistributedDataParallel(model, device_ids=device_ids)
        return self.ddp

    def sam_first_pass(self):
        return self.ddp.no_sync()

    def collect_stats(self, model: nn.Module, dataset, **kwargs):
        return collect_stats_distributed(model, dataset, **kwargs)

    def select_by_class(self, selector, stats, *, epoch: int, seed: int):
        return select_by_class_distributed(selector, stats, epoch=epoch, seed=seed)

    def select(self, selector, stats, *, epoch: int, seed: int):
        selection = selector.select(stats, epoch=epoch, seed=seed) if self.rank == 0 else None
        selection = broadcast_selection(selection, src=0)
        check_same_selection(selection)
        return selection

    def reduce_row(self, row: Dict[str, Any]) -> Dict[str, Any]:
        seen = row["train_examples"]
        totals = torch.tensor([row["train_loss"] * seen, row["train_acc"] * seen / 100.0, seen,
                               row["num_augmented"]], dtype=torch.float64)
        dist.all_reduce(totals)
        loss_sum, correct, seen, augmented = totals.tolist()
        return {**row, "train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen,
                "train_examples": int(round(seen)), "num_augmented": int(round(augmented))}

    def barrier(self) -> None:
        dist.barrier()


def DistributedTrainer(config, *, out_dir: Optional[str] = None, backend: str = "gloo", **kwargs):
    """``augcore.train.Trainer`` for one rank of a ``torchrun`` launch (a ``DDPStrategy``).
    ``out_dir`` is the shared run folder: rank 0 writes it, every rank reads it on resume."""
    from augcore.train.trainer import Trainer

    return Trainer(config, out_dir=out_dir, strategy=DDPStrategy(backend), **kwargs)
