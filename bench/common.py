"""Synthetic selection inputs shaped like a partly trained classifier's outputs."""
from __future__ import annotations

import torch

# the selection benchmark's inputs live in the package (augcore bench uses them)
from augcore.benchmarks import cifar_like_logits  # noqa: F401


def sync(device) -> None:
    """Waits for queued GPU work so a timer measures it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_training_epoch(model: torch.nn.Module, data, device, batch_size: int = 128) -> float:
    """Seconds of one SGD epoch (lr 0.1, momentum 0.9, wd 5e-4) over ``data``; the first
    epoch warms up kernels and the allocator, the second is timed."""
    import time

    from torch.utils.data import DataLoader

    device = torch.device(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0),
                        pin_memory=device.type == "cuda")
    model.train()
    seconds = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            logits, _ = model(x)
            torch.nn.functional.cross_entropy(logits, y).backward()
            optimizer.step()
        sync(device)
        seconds = time.perf_counter() - t0
    return seconds
