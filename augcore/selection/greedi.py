"""GreeDi (Mirzasoleiman, Karbasi, Sarkar, Krause, NeurIPS 2013): two-round
distributed greedy for one facility-location problem too large for one rank, and the
coreset selector's GreeDi solver (``CoresetSelector(greedi=True)``, per class).

Round 1: every rank runs ``augcore.facility_location`` (budget k) on its own
partition of the points. The k * m candidates (m ranks) are all-gathered.
Round 2: naive greedy over the candidate union B with the *full* objective
F(S) = sum_{i in V} max_{j in S} s_ij, evaluated distributedly: each rank keeps the
similarities between its own points and B (n_r x |B|) and its part of the running
maxima; every step all-reduces the |B| marginal gains (float64), so all ranks pick
the same candidate (ties to the smaller candidate position). Finally the best of the
round-2 solution and of the round-1 local solutions (each scored on the full
objective) is returned, as in the paper.

Guarantee: F(GreeDi) >= (1 - 1/e)^2 / min(m, k) * OPT (Theorem 4.2 of the paper);
on data with geometric structure it is usually within a few percent of centralised
greedy. Similarity: "exp", s = exp(-||x_i - x_j|| / p), p = ``scale`` or the
dimension D (augcore's default, the reference code's), computed in float64 here.

Communication per call: the candidates, m * k * (D * 4 + 8) bytes (all-gather);
k all-reduces of |B| = m * k float64 gains (8 m k^2 bytes in all); m + 1 scalar
all-reduces for the objectives and one of the weights (|B| * 8 bytes).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist

from augcore.checks import check_count
from augcore.ops.facility_location import facility_location
from augcore.process_group import rank_and_world, shard_bounds


@dataclass
class GreeDiResult:
    indices: torch.Tensor        # (k,) int64 global indices, in greedy order
    weights: torch.Tensor        # (k,) int64 gamma_j over all points of all ranks
    objective: float             # full F of the returned set (float64 similarities)
    round2_objective: float      # full F of the round-2 solution
    local_objectives: torch.Tensor  # (m,) full F of each rank's round-1 solution
    candidates: torch.Tensor     # (|B|,) int64 global indices of the round-1 picks, rank order
    source: str                  # "round2" or "local<r>": which solution was returned
    bound: float                 # (1 - 1/e)^2 / min(m, k): the worst-case ratio to OPT
    timings: Dict[str, float] = field(default_factory=dict)


def exp_similarity(points: torch.Tensor, candidates: torch.Tensor, scale: float) -> torch.Tensor:
    """exp(-||x_i - c_j|| / scale) in float64, ``(n, |B|)``."""
    return torch.exp(-torch.cdist(points.double(), candidates.double()) / scale)


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if rank_and_world()[1] > 1:
        dist.all_reduce(t)
    return t


def greedi_facility_location(local_points: torch.Tensor, local_indices: torch.Tensor, budget: int, *,
                             method: str = "lazy", eps: float = 0.01, seed: int = 0,
                             scale: Optional[float] = None) -> GreeDiResult:
    """GreeDi over the default process group; each rank passes its own partition.

    Args:
      local_points: (n_r, D) float points (gradient proxies) of this rank's partition.
      local_indices: (n_r,) int64 global indices of those points (distinct across ranks).
      budget: k, the number of picks (round 1 picks min(k, n_r) per rank).
      method, eps, seed: round 1's ``facility_location`` settings (seed offset by rank).
      scale: p of the exp similarity; default D.

    Every rank returns the same ``GreeDiResult``. Without an initialised process
    group it runs with m = 1 (round 2 then re-ranks round 1's picks).
    """
    t0 = time.perf_counter()
    rank, world = rank_and_world()
    points = torch.as_tensor(local_points)
    idx = torch.as_tensor(local_indices, dtype=torch.int64).reshape(-1)
    if points.dim() != 2 or points.shape[0] != idx.numel():
        raise ValueError(f"local_points must be (n, D) with n = len(local_indices) = {idx.numel()}, "
                         f"got shape {tuple(points.shape)}")
    if points.shape[0] == 0:
        raise ValueError(f"rank {rank} has an empty partition; every rank needs at least one point")
    budget = check_count("budget", budget, min=None)
    if budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    dim = points.shape[1]
    scale = float(dim) if scale is None else float(scale)
    points = points.float().contiguous()

    # round 1: local greedy on this rank's partition
    k_local = min(budget, points.shape[0])
    local = facility_location(points, k_local, method=method, eps=eps, seed=seed + 7919 * rank,
                              similarity="exp", scale=scale)
    t1 = time.perf_counter()

    # gather the candidates (padded to k rows; counts travel alongside)
    count = torch.tensor([k_local], dtype=torch.int64)
    cand_x = points.new_zeros((budget, dim))
    cand_x[:k_local] = points[local.indices]
    cand_i = torch.full((budget,), -1, dtype=torch.int64)
    cand_i[:k_local] = idx[local.indices]
    if world > 1:
        counts = [torch.empty_like(count) for _ in range(world)]
        xs = [torch.empty_like(cand_x) for _ in range(world)]
        ids = [torch.empty_like(cand_i) for _ in range(world)]
        dist.all_gather(counts, count)
        dist.all_gather(xs, cand_x)
        dist.all_gather(ids, cand_i)
    else:
        counts, xs, ids = [count], [cand_x], [cand_i]
    sizes = [int(c) for c in counts]
    B_x = torch.cat([x[:s] for x, s in zip(xs, sizes)])
    B_i = torch.cat([i[:s] for i, s in zip(ids, sizes)])
    owner = torch.repeat_interleave(torch.arange(world), torch.tensor(sizes))
    t2 = time.perf_counter()

    # round 2: greedy over B with the full objective, gains all-reduced every step
    sim = exp_similarity(points, B_x, scale)                  # (n_r, |B|)
    best = torch.zeros(points.shape[0], dtype=torch.float64)  # this rank's running maxima
    available = torch.ones(B_i.numel(), dtype=torch.bool)
    picks = []
    for _ in range(min(budget, B_i.numel())):
        gains = _all_reduce((sim - best[:, None]).clamp_(min=0).sum(0))
        gains[~available] = -math.inf
        j = int(torch.argmax(gains))   # first maximum: ties to the smaller position
        picks.append(j)
        available[j] = False
        best = torch.maximum(best, sim[:, j])
    round2 = float(_all_reduce(best.sum().reshape(1))[0])

    # each rank's local solution scored on the full objective
    local_obj = torch.stack([sim[:, owner == r].max(1).values.sum() for r in range(world)])
    local_obj = _all_reduce(local_obj)
    choice = int(torch.argmax(local_obj))
    if float(local_obj[choice]) > round2:
        cols = torch.nonzero(owner == choice).reshape(-1)
        source, objective = f"local{choice}", float(local_obj[choice])
    else:
        cols = torch.tensor(picks, dtype=torch.int64)
        source, objective = "round2", round2
    chosen = sim[:, cols]
    weights = torch.bincount(chosen.argmax(1), minlength=cols.numel()).to(torch.int64)  # ties to the earlier
    weights = _all_reduce(weights)
    t3 = time.perf_counter()
    return GreeDiResult(indices=B_i[cols], weights=weights, objective=objective, round2_objective=round2,
                        local_objectives=local_obj, candidates=B_i, source=source,
                        bound=(1 - 1 / math.e) ** 2 / min(world, budget),
                        timings={"round1": t1 - t0, "gather": t2 - t1, "round2": t3 - t2, "total": t3 - t0})


def greedi_per_class(proxies: torch.Tensor, labels: torch.Tensor, budgets: torch.Tensor, *, method: str, eps: float,
                     seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Every class c with ``budgets[c] > 0`` solved by GreeDi over the ranks, each rank holding a
    contiguous share of the class's rows, so no rank holds a class's similarity matrix. Every
    rank passes the same (N, D) CPU ``proxies`` and (N,) ``labels`` and gets the same
    (rows, medoid counts), in class order; class c's round 1 is seeded ``seed + c``."""
    rank, world = rank_and_world()
    picked, gammas = [], []
    for c in range(budgets.numel()):
        if int(budgets[c]) == 0:
            continue
        rows = (labels == c).nonzero().flatten()
        start, end = shard_bounds(rows.numel(), rank, world)
        if end <= start:
            raise ValueError(f"class {c} has {rows.numel()} examples, fewer than the {world} ranks GreeDi "
                             "splits it over; use greedi=False for this data")
        local = rows[start:end]
        result = greedi_facility_location(proxies[local], local, int(budgets[c]), method=method, eps=eps,
                                          seed=seed + c)
        picked.append(result.indices)
        gammas.append(result.weights)
    if not picked:
        return torch.empty(0, dtype=torch.int64), torch.empty(0, dtype=torch.int64)
    return torch.cat(picked), torch.cat(gammas)
