"""The trainer under ``torchrun`` with DistributedDataParallel (CPU/gloo or GPU/nccl).

What changes against ``augcore.train.Trainer``:

* the model is wrapped in ``DistributedDataParallel``; rank 0's initial weights
  reach every rank at construction;
* every global batch of the single-process run is split over the ranks
  (``ShardedBatchSampler``): items keep their weights, and each rank's loss is scaled
  by n_r * world / n_batch, so the averaged gradient is the global-batch gradient
  and a W-rank run follows the single-process run with the same ``optim.batch_size``
  (exactly for models without BatchNorm; BatchNorm normalises per rank);
* selection: the inference pass is sharded and all-gathered, the selector runs on
  rank 0, the ``Selection`` is broadcast and checked identical on every rank;
* SAM: the first pass (the perturbation's gradient) runs under ``no_sync`` (each rank
  perturbs by its local gradient, as in distributed SAM implementations), the second
  pass is synchronised;
* only rank 0 writes checkpoints, logs and plots; ``fit(resume=True)`` loads rank 0's
  checkpoint on every rank;
* the logged train loss/accuracy are summed over ranks.

``max_loss`` mode ranks each rank's local part of the batch.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from augcore.distributed.env import init_distributed
from augcore.distributed.sampler import ShardedBatchSampler
from augcore.distributed.selection import broadcast_selection, check_same_selection, collect_stats_distributed
from augcore.train.checkpoint import load_checkpoint
from augcore.train.trainer import CHECKPOINT_NAME, Trainer, TrainResult, _epoch_seed, _seed_worker


class DistributedTrainer(Trainer):
    """``Trainer`` for one rank of a ``torchrun`` launch; same arguments. ``out_dir`` is
    the shared run folder: rank 0 writes it, every rank reads it on resume. Joins the
    process group from the environment (``init_distributed``) unless already joined."""

    def __init__(self, config, *, out_dir: Optional[str] = None, backend: str = "gloo", **kwargs):
        self.env = init_distributed(backend)
        self.rank, self.world_size = self.env.rank, self.env.world_size
        super().__init__(config, out_dir=out_dir if self.rank == 0 else None, **kwargs)
        self.shared_out_dir = out_dir
        device_ids = [self.device.index] if self.device.type == "cuda" and self.device.index is not None else None
        self.ddp = DistributedDataParallel(self.model, device_ids=device_ids)
        self.forward_model = torch.compile(self.ddp) if self.config.run.compile else self.ddp
        self._sampler: Optional[ShardedBatchSampler] = None
        self._step = 0
        self._current_scale = 1.0

    # ---------------------------------------------------------------- selection
    def _collect_stats(self, source):
        return collect_stats_distributed(self.model, source, batch_size=self.config.run.eval_batch_size,
                                         device=self.device, num_workers=self.config.data.num_workers)

    def _select(self, stats, epoch: int):
        selection = super()._select(stats, epoch) if self.rank == 0 else None
        selection = broadcast_selection(selection, src=0)
        check_same_selection(selection)
        return selection

    # ---------------------------------------------------------------- steps
    def _loader(self, view, epoch: int) -> DataLoader:
        self._sampler = ShardedBatchSampler(len(view), self.config.optim.batch_size, self.rank, self.world_size,
                                            _epoch_seed(self.config.run.seed, epoch, 1))
        self._step = 0
        workers = self.config.data.num_workers
        return DataLoader(view, batch_sampler=self._sampler, num_workers=workers,
                          worker_init_fn=_seed_worker if workers else None, pin_memory=self.device.type == "cuda")

    def _loss_scale(self) -> float:
        return self._current_scale

    def _optimise(self, x, targets, weights):
        local = torch.tensor_split(self._sampler.batches[self._step], self.world_size)[self.rank].numel()
        self._current_scale = self._sampler.local_loss_scale(self._step, local)
        self._step += 1
        return super()._optimise(x, targets, weights)

    def _sam_first_pass(self):
        return self.ddp.no_sync()

    def _train_epoch(self, epoch: int, refining: bool) -> Dict[str, Any]:
        row = super()._train_epoch(epoch, refining)
        seen = row["train_examples"]
        totals = torch.tensor([row["train_loss"] * seen, row["train_acc"] * seen / 100.0, seen,
                               row["num_augmented"]], dtype=torch.float64)
        dist.all_reduce(totals)
        loss_sum, correct, seen, augmented = totals.tolist()
        row.update(train_loss=loss_sum / seen, train_acc=100.0 * correct / seen, train_examples=int(round(seen)),
                   num_augmented=int(round(augmented)))
        return row

    # ---------------------------------------------------------------- the run
    def fit(self, resume: bool = False) -> TrainResult:
        if resume:
            if not self.shared_out_dir:
                raise ValueError("resume needs the shared output folder holding rank 0's checkpoint (out_dir)")
            dist.barrier()  # rank 0 has finished writing before anyone reads
            self.load_state_dict(load_checkpoint(os.path.join(self.shared_out_dir, CHECKPOINT_NAME)))
        result = super().fit(resume=False)
        dist.barrier()  # rank 0's files are complete when any rank returns
        return result
