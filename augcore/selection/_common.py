"""Validation, budgets, seeds and per-class ranking shared by every selector."""
from __future__ import annotations

import math
import zlib
from typing import Optional

import numpy as np
import torch

from augcore import checks
from augcore.selection.base import InferenceStats, Selection

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_fraction(fraction: float, name: str = "fraction") -> float:
    """A budget fraction of the training set in (0, 1]: ``augcore.checks.check_fraction``
    (any number kind, numpy and 0-d tensors included) with the selectors' argument order."""
    return checks.check_fraction(name, fraction)


def budget_from_fraction(fraction: float, n: int) -> int:
    """Total budget K = round(fraction * N), halves rounded up, clamped to [0, N].

    Round-half-up (not Python's round-half-to-even) so that the budget grows
    monotonically with N; e.g. 0.5 of 5 examples is 3.
    """
    n = checks.check_int("n", n, min=0)
    return int(min(max(math.floor(check_fraction(fraction) * n + 0.5), 0), n))


def derive_seed(seed: int, epoch: int, stream: str) -> int:
    """A 63-bit seed for one (seed, epoch, selector) triple.

    Mixing the epoch in makes re-selection draw fresh randomness every epoch while
    staying reproducible; the stream name keeps different selectors independent.
    """
    seed = checks.check_int("seed", seed, min=0)
    epoch = checks.check_int("epoch", epoch, min=0)
    if not isinstance(stream, str):
        raise TypeError(f"stream must be a string, got {stream!r}")
    state = np.random.SeedSequence([seed, epoch, zlib.crc32(stream.encode())]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def cpu_generator(seed: int, epoch: int, stream: str) -> torch.Generator:
    """Random draws are made on the CPU so a seed gives the same selection on every device."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(derive_seed(seed, epoch, stream))
    return gen


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
    if logits.dtype not in _FLOAT_DTYPES:
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
    if losses.dtype not in _FLOAT_DTYPES:
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
    _check_finite(losses, "stats.losses")
    _check_finite(logits, "stats.logits")
    if need_embeddings:
        emb = stats.embeddings
        if emb is None:
            raise ValueError("this selector needs stats.embeddings; "
                             "collect them with collect_stats(..., embeddings=True)")
        if emb.dim() != 2 or emb.dtype not in _FLOAT_DTYPES:
            raise ValueError(f"stats.embeddings: expected a floating (N, H) tensor, got {emb.dtype} "
                             f"of shape {tuple(emb.shape)}")
        _check_finite(emb, "stats.embeddings")


def _check_finite(x: torch.Tensor, name: str) -> None:
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        count = int(bad.sum())
        first = tuple(int(i) for i in bad.nonzero()[0])
        kind = "NaN" if bool(torch.isnan(x).any()) else "infinite"
        raise ValueError(f"{name} contains {count} non-finite value(s) ({kind}), first at index {first}; "
                         "check the model's outputs (diverged training, fp16 overflow)")


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
