"""The batches of an epoch, and their split over ranks.

One function defines the order of an epoch's batches (``global_batches``: a seeded
permutation cut into batches); the single-process loop iterates it whole and a DDP
run gives each rank its slice of every batch, so a W-rank run sees exactly the
single-process batches.
"""
from __future__ import annotations

from typing import Iterator, List

import torch
from torch.utils.data import Sampler

from augcore.checks import check_count


def global_batches(n: int, batch_size: int, seed: int) -> List[torch.Tensor]:
    """An epoch's batches of row indices: ``randperm(n)`` from a generator seeded with
    ``seed``, cut into batches of ``batch_size`` (the last may be shorter)."""
    generator = torch.Generator().manual_seed(seed)
    return list(torch.randperm(n, generator=generator).split(batch_size))


class ShardedBatchSampler(Sampler[List[int]]):
    """Rank ``rank``'s part of every global batch: batch b is split into ``world_size``
    contiguous near-equal slices (``torch.tensor_split``). The union over ranks of step
    t's batches is exactly the single-process run's batch t, so with per-rank losses
    scaled by n_r * world / n_batch (see ``local_loss_scale``) the DDP-averaged
    gradient equals the single-process gradient. Items keep whatever weights the data
    set attaches to them (the augmented-subset view yields (x, y, w, idx, is_aug))."""

    def __init__(self, n: int, batch_size: int, rank: int, world_size: int, seed: int):
        batch_size = check_count("batch_size", batch_size, min=1)
        if batch_size < world_size:
            raise ValueError(f"the global batch size {batch_size} is smaller than the world size {world_size}")
        self.batches = global_batches(n, batch_size, seed)
        if self.batches and self.batches[-1].numel() < world_size:
            raise ValueError(f"the last global batch has {self.batches[-1].numel()} examples, fewer than the "
                             f"{world_size} ranks ({n} items, batch {batch_size}); change optim.batch_size")
        self.rank, self.world_size = rank, world_size
        self.global_sizes = [b.numel() for b in self.batches]

    def __iter__(self) -> Iterator[List[int]]:
        for b in self.batches:
            yield torch.tensor_split(b, self.world_size)[self.rank].tolist()

    def __len__(self) -> int:
        return len(self.batches)

    def local_loss_scale(self, step: int, local_size: int) -> float:
        """n_r * world / n_batch: turns rank r's mean loss into its share of the global
        mean, so that DDP's gradient average is the global-batch gradient."""
        return local_size * self.world_size / self.global_sizes[step]
