"""How the loop runs on its processes: one process here, DDP in ``augcore.distributed.strategy``.

A strategy answers the questions the loop and the policies ask that depend on the
number of processes: which batches this process trains on and how its loss is scaled,
how SAM's first pass is synchronised, how an inference pass and a selection are
spread, how logged totals are summed, and who writes files. ``Strategy`` is that contract;
``SingleProcess`` and ``augcore.distributed.DDPStrategy`` implement it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ContextManager, Dict, Iterator, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.data import DataLoader

from augcore.selection.base import InferenceStats, Selection
from augcore.train.batches import ShardedBatchSampler


def seed_worker(worker_id: int) -> None:
    """DataLoader worker init: numpy and random seeded from the worker's torch seed (reproducible)."""
    import random

    import numpy as np

    seed = torch.initial_seed() % (2 ** 32)
    np.random.seed(seed)
    random.seed(seed)


@dataclass(frozen=True)
class LoaderAndSampler:
    """One epoch's batches (iterate it, or its ``loader``), and the sampler that knows each step's loss scale."""
    loader: DataLoader
    sampler: ShardedBatchSampler

    def __iter__(self) -> Iterator:
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def loss_scale(self, step: int, local_size: int) -> float:
        """Factor on this process's mean batch loss so that averaged gradients are the global-batch gradient."""
        return self.sampler.local_loss_scale(step, local_size)


@runtime_checkable
class Strategy(Protocol):
    """What the loop, the policies and the statistics provider ask of the processes a run spans."""

    rank: int
    world_size: int

    @property
    def is_writer(self) -> bool: ...

    def wrap_model(self, model: nn.Module) -> nn.Module: ...

    def loader(self, view, *, batch_size: int, seed: int, num_workers: int,
               pin_memory: bool) -> LoaderAndSampler: ...

    def sam_first_pass(self) -> ContextManager: ...

    def collect_stats(self, model: nn.Module, dataset, **kwargs) -> InferenceStats: ...

    def select_by_class(self, selector, stats: InferenceStats, *, epoch: int, seed: int) -> Selection: ...

    def select(self, selector, stats: InferenceStats, *, epoch: int, seed: int) -> Selection: ...

    def reduce_row(self, row: Dict[str, Any]) -> Dict[str, Any]: ...

    def barrier(self) -> None: ...


class SingleProcess:
    """The default strategy: this process trains on every batch."""

    rank = 0
    world_size = 1

    @property
    def is_writer(self) -> bool:
        """Whether this process writes checkpoints, logs and plots."""
        return self.rank == 0

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return model

    def loader(self, view, *, batch_size: int, seed: int, num_workers: int, pin_memory: bool) -> LoaderAndSampler:
        """This process's share of every global batch of ``view``, in the order ``seed`` draws."""
        sampler = ShardedBatchSampler(len(view), batch_size, self.rank, self.world_size, seed)
        loader = DataLoader(view, batch_sampler=sampler, num_workers=num_workers,
                            worker_init_fn=seed_worker if num_workers else None, pin_memory=pin_memory)
        return LoaderAndSampler(loader, sampler)

    def sam_first_pass(self) -> ContextManager:
        """Context of SAM's first forward/backward (DDP: no gradient sync)."""
        return contextlib.nullcontext()

    def collect_stats(self, model: nn.Module, dataset, **kwargs):
        from augcore.selection import collect_stats
        return collect_stats(model, dataset, progress=False, **kwargs)

    def select_by_class(self, selector, stats, *, epoch: int, seed: int):
        """Runs a per-class selector (DDP: classes shared out over ranks)."""
        return selector.select(stats, epoch=epoch, seed=seed)

    def select(self, selector, stats, *, epoch: int, seed: int):
        """Runs any selector once (DDP: on rank 0, broadcast)."""
        return selector.select(stats, epoch=epoch, seed=seed)

    def reduce_row(self, row: Dict[str, Any]) -> Dict[str, Any]:
        """Turns this process's epoch totals into the run's (sums over ranks under DDP)."""
        return row

    def barrier(self) -> None:
        pass
