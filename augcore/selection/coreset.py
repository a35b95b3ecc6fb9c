"""Coresets for augmentation (Liu & Mirzasoleiman, NeurIPS 2022): per-class
facility-location medoids of the gradient proxies, weighted by what they represent."""
from __future__ import annotations

import time

import torch

from augcore.ops import facility_location, grad_proxies, normalize_weights
from augcore.ops.budgets import SPLITS
from augcore.ops.facility_location import METHODS, SIMILARITIES
from augcore.selection._common import (budget_from_fraction, check_fraction, derive_seed, require_nonempty_classes,
                                       validate_stats)
from augcore.selection.base import InferenceStats, Selection

PROXIES = ("logits", "last_layer")
WEIGHTINGS = ("normalized", "raw", "unit")


class CoresetSelector:
    """Facility-location coreset of ``round(fraction * N)`` examples (halves up), all
    classes solved in one ``augcore.facility_location`` call.

    Args:
      fraction: budget as a fraction of the training set, in (0, 1].
      proxy: "logits" (default, the reference code's): points are the proxies
        e_i = softmax(z_i) - onehot(y_i); "last_layer": distances between the exact
        last-layer gradients e_i (x) [h_i, 1] (the reference's ``--use_linear`` is
        ``bias=0``), computed in factored form; needs ``stats.embeddings``.
      bias: 1 (weights and bias of the last layer) or 0 (weights only); used with
        ``proxy="last_layer"``.
      similarity: "exp" (default; the reference's submodlib kernel exp(-d / p)) or
        "craig" (d_max - d, the paper's C - d form).
      method: greedy variant, "stochastic" (default, as the reference), "lazy" or "naive".
      eps: stochastic greedy's accuracy parameter.
      budget_split: "proportional" (default, exact total), "equal" (same per class,
        exact total) or "equal_ceil" (the reference's ``equal_num``: ceil(B/C) per
        class, the total can exceed B).
      weights: "normalized" (default, the reference: zero counts set to 1, then
        gamma / sum(gamma) * |S| over the whole selection), "raw" (gamma) or "unit".
        The released code trains the augmented copies appended to the full data
        with unit weight; the trainer decides which weights it uses.
      keep_zero_weight: keep medoids that represent no point (possible only with
        duplicate points); ``False`` drops them before the weights are normalised.

    The seed passed to the greedy is derived from (seed, epoch), so each
    re-selection draws fresh stochastic-greedy samples, reproducibly.
    """

    method = "coreset"

    def __init__(self, fraction: float, *, proxy: str = "logits", bias: int = 1, similarity: str = "exp",
                 method: str = "stochastic", eps: float = 0.01, budget_split: str = "proportional",
                 weights: str = "normalized", keep_zero_weight: bool = True):
        self.fraction = check_fraction(fraction)
        for name, value, allowed in (("proxy", proxy, PROXIES), ("similarity", similarity, tuple(SIMILARITIES)),
                                     ("method", method, tuple(METHODS)), ("budget_split", budget_split, SPLITS),
                                     ("weights", weights, WEIGHTINGS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if bias not in (0, 1):
            raise ValueError(f"bias must be 0 (weights only) or 1 (weights and bias), got {bias!r}")
        if not (0.0 < float(eps) < 1.0):
            raise ValueError(f"eps must lie in (0, 1), got {eps}")
        self.proxy, self.bias, self.similarity = proxy, int(bias), similarity
        self.greedy, self.eps, self.budget_split = method, float(eps), budget_split
        self.weights, self.keep_zero_weight = weights, bool(keep_zero_weight)

    def select(self, stats: InferenceStats, epoch: int = 0, seed: int = 0) -> Selection:
        t0 = time.perf_counter()
        validate_stats(stats, need_embeddings=self.proxy == "last_layer")
        require_nonempty_classes(stats, "CoresetSelector")
        n, c = len(stats), stats.num_classes
        budget = budget_from_fraction(self.fraction, n)
        proxies = grad_proxies(stats.logits, stats.labels).errors
        t1 = time.perf_counter()
        result = facility_location(
            proxies, budget, groups=stats.labels,
            embeddings=stats.embeddings if self.proxy == "last_layer" else None, bias=self.bias,
            similarity=self.similarity, method=self.greedy, eps=self.eps,
            seed=derive_seed(seed, epoch, self.method), budget_split=self.budget_split, num_groups=c)
        t2 = time.perf_counter()

        rows, gamma = result.indices, result.weights
        dropped = 0
        if not self.keep_zero_weight:
            keep = gamma > 0
            dropped = int((~keep).sum())
            rows, gamma = rows[keep], gamma[keep]
        device = stats.indices.device
        rows = rows.to(device)
        assignment = result.assignment.to(device)
        assignment = torch.where(assignment >= 0, stats.indices[assignment.clamp_min(0)],
                                 torch.full_like(assignment, -1))
        picked = torch.bincount(stats.labels[rows].to(torch.int64).cpu(), minlength=c)
        return Selection(
            indices=stats.indices[rows].to(torch.int64), weights=normalize_weights(gamma, self.weights).to(device),
            method=self.method, assignment=assignment, budgets=picked, epoch=epoch,
            timings={"proxies": t1 - t0, "facility_location": t2 - t1,
                     **{f"fl_{k}": v for k, v in result.timings.items()}, "total": time.perf_counter() - t0},
            info={"fraction": rows.numel() / n, "requested_fraction": self.fraction, "budget": budget,
                  "requested_budgets": result.budgets.tolist(), "dropped_zero_weight": dropped,
                  "gamma": gamma.cpu(), "objective": result.objective.cpu().tolist(),
                  "proxy": self.proxy, "similarity": self.similarity, "greedy": self.greedy,
                  "budget_split": self.budget_split})
