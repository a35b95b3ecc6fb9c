"""Per-example weighted cross-entropy, for hard and soft (Mixup/CutMix) labels."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def per_example_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B,) losses. ``targets`` are class ids (B,) or soft labels (B, C) summing to 1,
    for which the loss is -sum_c y_c log softmax(z)_c (the soft-label loss He et al.
    use for Mixup/CutMix; equal to the two-term mixed loss of the released code)."""
    for name, t in (("logits", logits), ("targets", targets)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if logits.dim() != 2 or not logits.is_floating_point():
        raise ValueError(f"logits must be a float (B, C) tensor, got {logits.dtype} {tuple(logits.shape)}")
    logits = logits.float()  # the loss in float32 even under bf16/fp16 autocast
    if targets.dim() == 1:
        if targets.is_floating_point() or targets.dtype == torch.bool:
            raise TypeError(f"targets of shape (B,) must be integer class ids, got {targets.dtype} "
                            "(soft labels are (B, C))")
        if targets.shape[0] != logits.shape[0]:
            raise ValueError(f"targets has {targets.shape[0]} labels for {logits.shape[0]} rows of logits")
        # checked on the CPU only: on a GPU the check would synchronise every step (the data set's labels
        # are checked when it is built)
        if targets.numel() and targets.device.type == "cpu":
            lo, hi = int(targets.min()), int(targets.max())
            if lo < 0 or hi >= logits.shape[1]:
                raise ValueError(f"targets must be class ids in [0, {logits.shape[1]}), found [{lo}, {hi}]")
        return F.cross_entropy(logits, targets.long(), reduction="none")
    if targets.shape != logits.shape or not targets.is_floating_point():
        raise ValueError(f"soft targets must be float of the logits' shape {tuple(logits.shape)}, got "
                         f"{targets.dtype} {tuple(targets.shape)}")
    return -(targets.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1)


def weighted_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """mean_i(w_i * l_i): the batch mean of weighted losses, as the coreset paper's
    released code computes it (dividing by the batch size, not by sum(w), so unit
    weights give plain cross-entropy and the LR keeps its meaning)."""
    losses = per_example_cross_entropy(logits, targets)
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch.Tensor, got {type(weights).__name__}")
    if weights.shape != losses.shape:
        raise ValueError(f"weights of shape {tuple(weights.shape)} for a batch of {losses.shape[0]} losses")
    return (losses * weights.to(losses.dtype)).mean()
