"""A batch sampler that splits the single-process run's global batches over ranks."""
from __future__ import annotations

from typing import Iterator, List

import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm


def global_batches(n: int, batch_size: int, seed: int) -> List[torch.Tensor]:
    """The index batches the single-process trainer's epoch loop sees from
    ``DataLoader(view, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))``
    over n items. They are drawn through an identical DataLoader over ``range(n)``
    iterated the way ``Trainer._train_epoch`` iterates it, inside ``tqdm.auto.tqdm``:
    that wrapper creates one extra DataLoader iterator (which draws a base seed from
    the generator) before iterating, so the order depends on it."""
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(range(n), batch_size=batch_size, shuffle=True, generator=generator)
    return [b.to(torch.int64) for b in tqdm(loader, disable=True)]


class ShardedBatchSampler(Sampler[List[int]]):
    """Rank ``rank``'s part of every global batch: batch b is split into ``world_size``
    contiguous near-equal slices (``torch.tensor_split``). The union over ranks of step
    t's batches is exactly the single-process run's batch t, so with per-rank losses
    scaled by n_r * world / n_batch (see ``local_loss_scale``) the DDP-averaged
    gradient equals the single-process gradient. Items keep whatever weights the data
    set attaches to them (the augmented-subset view yields (x, y, w, idx, is_aug))."""

    def __init__(self, n: int, batch_size: int, rank: int, world_size: int, seed: int):
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
