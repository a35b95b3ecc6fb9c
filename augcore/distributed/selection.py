"""Distributed selection: the inference pass split over ranks and all-gathered, the
selector run once on rank 0, its ``Selection`` broadcast, and every rank checked to
hold the same one.

Per selection step the ranks exchange: the all-gathered statistics, N * (C + H + 3)
* 4 bytes plus padding (logits, embeddings, loss; labels and indices as int64 add
16 bytes per row), then one broadcast of the Selection (K * 12 bytes plus the
assignment, N * 8) and a 32-byte digest per rank for the check.
"""
from __future__ import annotations

import hashlib
import time
from typing import List, Optional, Union

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Subset

from augcore.process_group import rank_and_world, shard_bounds
from augcore.selection.base import InferenceStats, Selection, Selector
from augcore.selection.inference import collect_stats


def _all_gather_rows(local: torch.Tensor, counts: List[int]) -> torch.Tensor:
    """Concatenation in rank order of every rank's (n_r, ...) tensor (n_r = counts[r])."""
    width = max(counts)
    padded = local.new_zeros((width,) + tuple(local.shape[1:]))
    padded[:local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)])


def collect_stats_distributed(model: torch.nn.Module, dataset: Dataset, *, batch_size: int = 512,
                              device: Union[str, torch.device] = "cpu", num_workers: int = 0,
                              embeddings: bool = True) -> InferenceStats:
    """``collect_stats`` with the data set split into contiguous shards, one per rank,
    and the results all-gathered: every rank returns the statistics of the whole
    data set, rows in dataset order, equal to a single-process ``collect_stats``
    up to the batch composition of the forward passes (same model, eval mode).

    With torch.distributed not initialised this is ``collect_stats``.
    """
    rank, world = rank_and_world()
    n = len(dataset)
    if world == 1:
        return collect_stats(model, dataset, batch_size=batch_size, device=device, num_workers=num_workers,
                             progress=False, embeddings=embeddings)
    if n < world:
        raise ValueError(f"collect_stats_distributed: {n} examples cannot be split over {world} ranks")
    start, end = shard_bounds(n, rank, world)
    local = collect_stats(model, Subset(dataset, list(range(start, end))), batch_size=batch_size, device=device,
                          num_workers=num_workers, progress=False, embeddings=embeddings)
    counts = [shard_bounds(n, r, world)[1] - shard_bounds(n, r, world)[0] for r in range(world)]
    return InferenceStats(logits=_all_gather_rows(local.logits, counts),
                          labels=_all_gather_rows(local.labels, counts),
                          losses=_all_gather_rows(local.losses, counts),
                          indices=_all_gather_rows(local.indices, counts),
                          embeddings=_all_gather_rows(local.embeddings, counts) if embeddings else None)


def broadcast_selection(selection: Optional[Selection], src: int = 0) -> Selection:
    """Rank ``src``'s Selection on every rank (tensors moved to the CPU)."""
    rank, world = rank_and_world()
    if world == 1:
        if selection is None:
            raise ValueError("broadcast_selection: no selection given on the only rank")
        return selection
    if rank == src and selection is None:
        raise ValueError(f"broadcast_selection: rank {src} (the source) has no selection")
    payload = [selection.to_state() if rank == src else None]
    dist.broadcast_object_list(payload, src=src)
    return Selection.from_state(payload[0])


def selection_digest(selection: Selection) -> str:
    """SHA-256 of what training depends on: method, indices, weights, assignment, budgets."""
    h = hashlib.sha256(selection.method.encode())
    for t in (selection.indices, selection.weights, selection.assignment, selection.budgets):
        if t is None:
            h.update(b"none")
        else:
            t = t.detach().cpu().contiguous()
            h.update(str((t.dtype, tuple(t.shape))).encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()


def check_same_selection(selection: Selection) -> str:
    """Raises ``RuntimeError`` naming the ranks whose selection differs from rank 0's;
    returns the common digest."""
    _, world = rank_and_world()
    digest = selection_digest(selection)
    if world == 1:
        return digest
    digests: List[Optional[str]] = [None] * world
    dist.all_gather_object(digests, digest)
    differing = [r for r, d in enumerate(digests) if d != digests[0]]
    if differing:
        raise RuntimeError(f"ranks {differing} hold a different selection from rank 0's "
                           f"(digests {[digests[r][:12] for r in differing]} vs {digests[0][:12]})")
    return digest


def select_distributed(selector: Selector, model: torch.nn.Module, dataset: Dataset, *, epoch: int = 0,
                       seed: int = 0, batch_size: int = 512, device: Union[str, torch.device] = "cpu",
                       num_workers: int = 0, embeddings: bool = True, src: int = 0) -> Selection:
    """One distributed selection step: sharded inference + all-gather, the selector on
    rank ``src``, broadcast, checked identical on every rank. The returned
    Selection's timings gain ``inference`` and ``communication`` (seconds, this rank).
    """
    rank, _ = rank_and_world()
    t0 = time.perf_counter()
    stats = collect_stats_distributed(model, dataset, batch_size=batch_size, device=device,
                                      num_workers=num_workers, embeddings=embeddings)
    t1 = time.perf_counter()
    selection = selector.select(stats, epoch=epoch, seed=seed) if rank == src else None
    t2 = time.perf_counter()
    selection = broadcast_selection(selection, src=src)
    check_same_selection(selection)
    selection.timings["inference"] = t1 - t0
    selection.timings["communication"] = time.perf_counter() - t2
    return selection


def select_by_class_distributed(selector: Selector, stats: InferenceStats, *, epoch: int = 0,
                                seed: int = 0) -> Selection:
    """A per-class selection sharded by class: rank r solves classes c with c % world == r
    (``selector.select(..., classes=...)``, budgets from the global split) and the picks
    are all-gathered, so no rank solves the whole problem. Every rank passes the same
    (all-gathered) ``stats`` and returns the same Selection, rows in class order.
    Selectors without a ``classes`` argument run on rank 0 and are broadcast; a selector whose
    ``select`` is itself collective (``selector.collective``: a GreeDi coreset) runs on every rank."""
    import inspect

    if getattr(selector, "collective", False):
        return selector.select(stats, epoch=epoch, seed=seed)
    rank, world = rank_and_world()
    if world == 1 or "classes" not in inspect.signature(selector.select).parameters:
        selection = selector.select(stats, epoch=epoch, seed=seed) if rank == 0 else None
        selection = broadcast_selection(selection, src=0) if world > 1 else selection
        if world > 1:
            check_same_selection(selection)
        return selection
    mine = torch.arange(rank, stats.num_classes, world, dtype=torch.int64)
    local = selector.select(stats, epoch=epoch, seed=seed, classes=mine)
    parts: List[Optional[Selection]] = [None] * world
    dist.all_gather_object(parts, local.to_state())
    pieces = [Selection.from_state(p) for p in parts]
    merged = merge_class_selections(pieces, stats, weighting=getattr(selector, "weights", None))
    check_same_selection(merged)
    return merged


def merge_class_selections(pieces: List[Selection], stats: InferenceStats,
                           weighting: Optional[str] = None) -> Selection:
    """One Selection from per-class pieces over disjoint classes: picks ordered by class then
    by each piece's order, picks per class counted, assignments combined, timings the
    slowest piece's. Weights normalised over the whole selection (``normalize_weights``'s
    ``weighting``) are recomputed from the pieces' medoid counts (``info["gamma"]``)."""
    from augcore.ops import normalize_weights

    labels = stats.labels.cpu().to(torch.int64)
    label_of = torch.full((int(stats.indices.max()) + 1 if len(stats) else 0,), -1, dtype=torch.int64)
    label_of[stats.indices.cpu()] = labels
    indices = torch.cat([p.indices.cpu() for p in pieces])
    weights = torch.cat([p.weights.cpu() for p in pieces])
    order = torch.argsort(label_of[indices], stable=True)
    if weighting is not None and all("gamma" in p.info for p in pieces):
        weights = normalize_weights(torch.cat([p.info["gamma"].cpu() for p in pieces]), weighting)
    budgets = torch.bincount(label_of[indices], minlength=stats.num_classes)
    assignment = None
    if all(p.assignment is not None for p in pieces):
        assignment = torch.stack([p.assignment.cpu() for p in pieces]).max(0).values  # -1 where a piece has none
    timings = {k: max(p.timings.get(k, 0.0) for p in pieces) for k in pieces[0].timings}
    info = {**pieces[0].info, "sharded_by_class": len(pieces)}
    if all("gamma" in p.info for p in pieces):
        info["gamma"] = torch.cat([p.info["gamma"].cpu() for p in pieces])[order]
    return Selection(indices=indices[order], weights=weights[order], method=pieces[0].method,
                     assignment=assignment, budgets=budgets, epoch=pieces[0].epoch, timings=timings, info=info)
