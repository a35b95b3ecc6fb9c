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
