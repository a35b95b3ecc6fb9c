"""The default ``torch.distributed`` process group as every layer sees it: this process's rank
and the world size ((0, 1) without one), and how n items are shared out over the ranks."""
from __future__ import annotations

import torch.distributed as dist


def rank_and_world() -> tuple:
    """(rank, world size) of the default group; (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_bounds(n: int, rank: int, world_size: int) -> tuple:
    """[start, end) of rank's contiguous shard of n items (the first n % world ranks get one more)."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)
