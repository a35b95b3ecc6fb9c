"""Synthetic selection inputs shaped like a partly trained classifier's outputs."""
from __future__ import annotations

import numpy as np
import torch


def cifar_like_logits(n: int = 50_000, classes: int = 10, seed: int = 0, embedding_dim: int = 0):
    """Logits of a model at ~80% train accuracy (true class boosted), balanced labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=g)]
    logits = torch.randn(n, classes, generator=g) * 1.5
    logits[torch.arange(n), labels] += 2.5
    emb = torch.relu(torch.randn(n, embedding_dim, generator=g)) if embedding_dim else None
    return logits, labels, emb


def float64_objective(points: np.ndarray, labels: np.ndarray, picks: np.ndarray) -> float:
    """Facility location of a selection, evaluated independently in float64 with the
    "exp" similarity exp(-d / D) per class (the objective every method is scored by)."""
    total = 0.0
    dim = points.shape[1]
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        chosen = picks[labels[picks] == c]
        if chosen.size == 0:
            continue
        x = points[members].astype(np.float64)
        y = points[chosen].astype(np.float64)
        d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
        total += np.exp(-np.sqrt(np.maximum(d2, 0)) / dim).max(1).sum()
    return total


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
