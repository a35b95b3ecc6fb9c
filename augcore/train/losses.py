"""Per-example weighted cross-entropy, for hard and soft (Mixup/CutMix) labels."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def per_example_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B,) losses. ``targets`` are class ids (B,) or soft labels (B, C) summing to 1,
    for which the loss is -sum_c y_c log softmax(z)_c (the soft-label loss He et al.
    use for Mixup/CutMix; equal to the two-term mixed loss of the released code)."""
    logits = logits.float()  # the loss in float32 even under bf16/fp16 autocast
    if targets.dim() == 1:
        return F.cross_entropy(logits, targets, reduction="none")
    if targets.shape != logits.shape:
        raise ValueError(f"soft targets of shape {tuple(targets.shape)} do not match logits {tuple(logits.shape)}")
    return -(targets.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1)


def weighted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """mean_i(w_i * l_i): the batch mean of weighted losses, as the coreset paper's
    released code computes it (dividing by the batch size, not by sum(w), so unit
    weights give plain cross-entropy and the LR keeps its meaning)."""
    losses = per_example_cross_entropy(logits, targets)
    if weights.shape != losses.shape:
        raise ValueError(f"weights of shape {tuple(weights.shape)} for a batch of {losses.shape[0]} losses")
    return (losses * weights.to(losses.dtype)).mean()
