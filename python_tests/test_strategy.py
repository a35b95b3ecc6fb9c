"""The strategy seam: both strategies satisfy the ``Strategy`` protocol, and ``loader()`` hands
back its sampler, so each epoch's loss scale comes from that epoch's own batches."""
import torch
from torch.utils.data import TensorDataset

from augcore.distributed.strategy import DDPStrategy
from augcore.train.strategy import LoaderAndSampler, SingleProcess, Strategy


def test_both_strategies_satisfy_the_protocol():
    assert isinstance(SingleProcess(), Strategy)
    assert isinstance(object.__new__(DDPStrategy), Strategy)   # without joining a process group
    assert not isinstance(object(), Strategy)


def test_each_loader_carries_its_own_loss_scale():
    strategy = SingleProcess()
    strategy.rank, strategy.world_size = 1, 2          # rank 1 of 2, without a process group
    views = {10: TensorDataset(torch.arange(10)), 7: TensorDataset(torch.arange(7))}
    epochs = {n: strategy.loader(view, batch_size=4, seed=n, num_workers=0, pin_memory=False)
              for n, view in views.items()}           # the second loader must not change the first's scales
    for n, batches in epochs.items():
        assert isinstance(batches, LoaderAndSampler)
        global_sizes = [len(range(n)[i:i + 4]) for i in range(0, n, 4)]
        local = [b[0].numel() for b in batches]
        assert sum(local) == n - sum(s - s // 2 for s in global_sizes)   # rank 1 takes the back half of each
        for step, size in enumerate(local):
            assert batches.loss_scale(step, size) == size * 2 / global_sizes[step]
