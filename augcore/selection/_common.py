"""Validation, budgets and per-class ranking shared by every selector."""
from __future__ import annotations

import math
from typing import Optional

import torch

from augcore.checks import FLOAT_DTYPES, check_finite, check_fraction, check_int
from augcore.selection.base import InferenceStats, Selection

# what a non-finite statistic usually means
_STATS_HINT = "check the model's outputs (diverged training, fp16 overflow)"


def budget_from_fraction(fraction: float, n: int) -> int:
    """Total budget K = round(fraction * N), halves rounded up, clamped to [0, N].

    Round-half-up (not Python's round-half-to-even) so that the budget grows
    monotonically with N; e.g. 0.5 of 5 examples is 3.
    """
    n = check_int("n", n, min=0)
    return int(min(max(math.floor(check_fraction("fraction", fraction) * n + 0.5), 0), n))


def validate_stats(stats: InferenceStats, *, need_embeddings: bool = False) -> None:
    """Checks shapes, dtypes, devices, label range and finiteness; raises naming the problem."""
    if not isinstance(stats, InferenceStats):
        raise TypeError(f"stats must be an augcore.selection.InferenceStats, got {type(stats).__name__}")
    for name in ("logits", "labels", "losses", "indices", "embeddings"):
        value = getattr(stats, name)
        if not isinstance(value, torch.Tensor) and not (name == "embeddings" and value is None):
            # a field replaced after construction (InferenceStats converts numpy at construction)
            raise TypeError(f"stats.{name} must be a torch.Tensor, got {type(value).__name__}")
    logits, labels, losses, indices = stats.logits, stats.labels, stats.losses, stats.indices
    if logits.dim() != 2:
        raise ValueError(f"stats.logits: expected a 2-D (N, C) tensor, got shape {tuple(logits.shape)}")
    if logits.dtype not in FLOAT_DTYPES:
        raise TypeError(f"stats.logits: expected a floating dtype, got {logits.dtype}")
    n, c = logits.shape
    if c < 1:
        raise ValueError("stats.logits has no classes (C = 0)")
    lengths = {"logits": n, "labels": labels.shape[0] if labels.dim() else -1,
               "losses": losses.shape[0] if losses.dim() else -1,
               "indices": indices.shape[0] if indices.dim() else -1}
    if stats.embeddings is not None:
        lengths["embeddings"] = stats.embeddings.shape[0] if stats.embeddings.dim() else -1
    if len(set(lengths.values())) != 1 or labels.dim() != 1 or losses.dim() != 1 or indices.dim() != 1:
        shapes = {"logits": tuple(logits.shape), "labels": tuple(labels.shape), "losses": tuple(losses.shape),
                  "indices": tuple(indices.shape)}
        if stats.embeddings is not None:
            shapes["embeddings"] = tuple(stats.embeddings.shape)
        raise ValueError(f"stats have mismatched lengths (every field needs N rows, labels/losses/indices 1-D): "
                         f"{shapes}")
    for name, t in (("labels", labels), ("indices", indices)):
        if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"stats.{name}: expected an integer dtype, got {t.dtype}")
    if losses.dtype not in FLOAT_DTYPES:
        raise TypeError(f"stats.losses: expected a floating dtype, got {losses.dtype}")
    fields = {"logits": logits, "labels": labels, "losses": losses, "indices": indices}
    if stats.embeddings is not None:
        fields["embeddings"] = stats.embeddings
    devices = {name: t.device for name, t in fields.items()}
    if len(set(devices.values())) != 1:
        raise ValueError(f"stats fields live on different devices: {devices}; put them on one device")
    if n:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= c:
            raise ValueError(f"stats.labels must lie in [0, {c}) (C = logits.shape[1]), found range [{lo}, {hi}]")
        lowest = int(indices.min())
        if lowest < 0:
            raise ValueError(f"stats.indices are dataset indices and must be >= 0, found {lowest}")
    check_finite(losses, "stats.losses", hint=_STATS_HINT)
    check_finite(logits, "stats.logits", hint=_STATS_HINT)
    if need_embeddings:
        emb = stats.embeddings
        if emb is None:
            raise ValueError("this selector needs stats.embeddings; "
                             "collect them with collect_stats(..., embeddings=True)")
        if emb.dim() != 2 or emb.dtype not in FLOAT_DTYPES:
            raise ValueError(f"stats.embeddings: expected a floating (N, H) tensor, got {emb.dtype} "
                             f"of shape {tuple(emb.shape)}")
        check_finite(emb, "stats.embeddings", hint=_STATS_HINT)


def class_sizes(stats: InferenceStats) -> torch.Tensor:
    """Examples per class, (C,) int64 on the CPU."""
    return torch.bincount(stats.labels.to(torch.int64).cpu(), minlength=stats.num_classes)


def require_nonempty_classes(stats: InferenceStats, selector: str) -> torch.Tensor:
    """Per-class selectors need every class present; returns the class sizes."""
    sizes = class_sizes(stats)
    empty = (sizes == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"{selector}: classes {empty} have no examples among the {len(stats)} rows "
                         f"(C = {stats.num_classes} from logits.shape[1]); per-class selection needs every "
                         "class present. Check the labels or pass stats restricted to the present classes.")
    return sizes


def top_per_class(keys: torch.Tensor, labels: torch.Tensor, budgets: torch.Tensor) -> torch.Tensor:
    """Rows with the ``budgets[c]`` largest keys of each class c (ties to the smaller row),
    grouped by class, keys descending inside a class. One sort, no loop over classes."""
    by_key = torch.sort(keys, descending=True, stable=True).indices
    order = by_key[torch.sort(labels[by_key], stable=True).indices]
    sorted_labels = labels[order]
    sizes = torch.bincount(labels, minlength=budgets.numel())
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(order.numel(), device=order.device) - starts[sorted_labels]
    return order[rank < budgets.to(order.device)[sorted_labels]]


def unit_selection(stats: InferenceStats, rows: torch.Tensor, method: str, *, epoch: int,
                   budgets: Optional[torch.Tensor] = None, timings: Optional[dict] = None,
                   info: Optional[dict] = None) -> Selection:
    """A Selection of the given stats rows with unit weights (the baselines' convention)."""
    n = len(stats)
    rows = rows.to(torch.int64)
    if budgets is None:
        budgets = torch.bincount(stats.labels[rows].to(torch.int64).cpu(), minlength=stats.num_classes)
    return Selection(indices=stats.indices[rows].to(torch.int64), weights=torch.ones(rows.numel(), dtype=torch.float32,
                                                                                     device=rows.device),
                     method=method, budgets=budgets, epoch=epoch, timings=dict(timings or {}),
                     info={"fraction": rows.numel() / n if n else 0.0, **(info or {})})
