"""Coresets with GreeDi per class: the coreset policy's option for classes too large for
one machine's memory (``augment.selector.greedi: true``).

Each class's rows are split into contiguous shares, one per rank; every rank runs
``greedi_facility_location`` on its share (round 1 local greedy, round 2 over the
gathered candidates), so no rank ever holds a class's full similarity matrix. Budgets
per class come from the selector's ``budget_split`` over the global class sizes;
weights are the GreeDi medoid counts, turned into training weights as the selector's
``weights`` option says. Supports the selector's ``proxy="logits"`` with
``similarity="exp"`` (GreeDi's objective); one process runs it with m = 1.
"""
from __future__ import annotations

import time

import torch

from augcore.distributed.env import rank_and_world, shard_bounds
from augcore.distributed.greedi import greedi_facility_location
from augcore.ops import grad_proxies, normalize_weights, split_budget
from augcore.selection._common import budget_from_fraction, derive_seed, require_nonempty_classes, validate_stats
from augcore.selection.base import InferenceStats, Selection


def check_greedi_selector(selector) -> None:
    if getattr(selector, "preset", "augcore") == "reference":
        raise ValueError("greedi: preset='reference' runs the released single-machine selection; GreeDi is not "
                         "that algorithm (use preset='augcore')")
    if selector.proxy != "logits" or selector.similarity != "exp":
        raise ValueError("greedi supports proxy='logits' with similarity='exp' only, got "
                         f"proxy={selector.proxy!r}, similarity={selector.similarity!r}")


def greedi_coreset(selector, stats: InferenceStats, *, epoch: int = 0, seed: int = 0) -> Selection:
    """``selector`` (a ``CoresetSelector``) solved class by class with GreeDi over the ranks."""
    check_greedi_selector(selector)
    t0 = time.perf_counter()
    validate_stats(stats)
    sizes = require_nonempty_classes(stats, "CoresetSelector(greedi)")
    rank, world = rank_and_world()
    labels = stats.labels.cpu().to(torch.int64)
    budget = budget_from_fraction(selector.fraction, len(stats))
    budgets = split_budget(sizes, budget, selector.budget_split)
    proxies = grad_proxies(stats.logits, stats.labels).errors.cpu()
    picked, gammas = [], []
    for c in range(stats.num_classes):
        if int(budgets[c]) == 0:
            continue
        rows = (labels == c).nonzero().flatten()
        start, end = shard_bounds(rows.numel(), rank, world)
        if end <= start:
            raise ValueError(f"class {c} has {rows.numel()} examples, fewer than the {world} ranks GreeDi "
                             "splits it over; use greedi: false for this data")
        local = rows[start:end]
        result = greedi_facility_location(proxies[local], local, int(budgets[c]), method=selector.greedy,
                                          eps=selector.eps, seed=derive_seed(seed, epoch, "greedi") + c)
        picked.append(result.indices)
        gammas.append(result.weights)
    rows = torch.cat(picked) if picked else torch.empty(0, dtype=torch.int64)
    gamma = torch.cat(gammas) if gammas else torch.empty(0, dtype=torch.int64)
    return Selection(indices=stats.indices.cpu()[rows].to(torch.int64),
                     weights=normalize_weights(gamma, selector.weights), method=selector.method,
                     budgets=torch.bincount(labels[rows], minlength=stats.num_classes), epoch=epoch,
                     timings={"total": time.perf_counter() - t0},
                     info={"greedi_ranks": world, "requested_fraction": selector.fraction, "budget": budget})
