"""Batched k-means (k = 2 for slow-learnable selection): every group and every restart
solved at once with padded tensors, no Python loop over groups."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from augcore.checks import check_int


@dataclass
class KMeansResult:
    """Per-group k-means solutions (the best restart of each group)."""

    labels: torch.Tensor      # (N,) int64 cluster of each row, in [0, k)
    centers: torch.Tensor     # (G, k, D) cluster means of the kept restart
    inertia: torch.Tensor     # (G,) float64 sum of squared distances to the assigned centre
    counts: torch.Tensor      # (G, k) int64 cluster sizes
    iterations: torch.Tensor  # (G,) int64 Lloyd iterations of the kept restart until it stopped changing
    restart: torch.Tensor     # (G,) int64 which restart was kept (the first of equal inertias)


def batched_kmeans(x: torch.Tensor, groups: torch.Tensor, *, k: int = 2, num_groups: Optional[int] = None,
                   restarts: int = 10, max_iter: int = 300, generator: Optional[torch.Generator] = None,
                   dtype: torch.dtype = torch.float64) -> KMeansResult:
    """k-means inside each group, k-means++ initialisation, ``restarts`` restarts.

    Rows are laid out as a zero-padded (G, n_max, D) tensor so that assignment is
    one batched matmul for all groups and restarts together; padding costs at most
    a factor of G / (N / n_max) in memory (none for balanced classes).

    Initialisation is the original k-means++ (Arthur & Vassilvitskii 2007): the
    first centre uniform over the group, each further centre drawn with
    probability proportional to the squared distance to the nearest chosen centre
    (scikit-learn uses a greedy variant with several local trials; both are
    k-means++). Uniforms come from ``generator`` (a CPU generator), so results do
    not depend on the device. Lloyd iterations run until no assignment changes
    (or ``max_iter``); assignment ties go to the smaller cluster index and an
    empty cluster keeps its previous centre. The restart with the lowest inertia
    is kept per group (the first on ties). Arithmetic in ``dtype``.
    """
    for name, t in (("x", x), ("groups", groups)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if x.dim() != 2:
        raise ValueError(f"x: expected a 2-D (N, D) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor, got {x.dtype}")
    if groups.dim() != 1 or groups.shape[0] != x.shape[0]:
        raise ValueError(f"groups: expected shape ({x.shape[0]},), got {tuple(groups.shape)}")
    if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
        raise TypeError(f"groups must be integer group ids, got {groups.dtype}")
    k = check_int("k", k, min=1)
    restarts = check_int("restarts", restarts, min=1)
    max_iter = check_int("max_iter", max_iter, min=1)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        row = int(bad.any(1).nonzero()[0])
        raise ValueError(f"x contains {int(bad.sum())} NaN/infinite value(s), first in row {row}; k-means needs "
                         "finite points")
    device = x.device
    n, d = x.shape
    groups = groups.to(device=device, dtype=torch.int64)
    if num_groups is not None:
        num_groups = check_int("num_groups", num_groups, min=0)
    num_groups = int(num_groups if num_groups is not None else (int(groups.max()) + 1 if n else 0))
    if n and (int(groups.min()) < 0 or int(groups.max()) >= num_groups):
        raise ValueError(f"groups must lie in [0, {num_groups}), found [{int(groups.min())}, {int(groups.max())}]")

    if n == 0:  # every group empty: nothing to cluster
        zeros = torch.zeros(num_groups, dtype=torch.int64, device=device)
        return KMeansResult(labels=torch.empty(0, dtype=torch.int64, device=device),
                            centers=torch.zeros(num_groups, k, d, dtype=dtype, device=device),
                            inertia=torch.zeros(num_groups, dtype=torch.float64, device=device),
                            counts=torch.zeros(num_groups, k, dtype=torch.int64, device=device),
                            iterations=zeros, restart=zeros.clone())

    # --- padded layout: group g's rows (ascending) fill xp[g, :n_g] -----------------
    order = torch.sort(groups, stable=True).indices
    sorted_groups = groups[order]
    sizes = torch.bincount(groups, minlength=num_groups)
    starts = torch.cumsum(sizes, 0) - sizes
    pos = torch.arange(n, device=device) - starts[sorted_groups]
    n_max = int(sizes.max()) if num_groups else 0
    xp = torch.zeros(num_groups, n_max, d, dtype=dtype, device=device)
    xp[sorted_groups, pos] = x[order].to(dtype)
    mask = torch.zeros(num_groups, n_max, dtype=torch.bool, device=device)
    mask[sorted_groups, pos] = True
    maskf = mask.to(dtype)
    x_sq = (xp * xp).sum(-1)  # (G, n_max)

    def sqdist(centers: torch.Tensor) -> torch.Tensor:
        """(G, n_max, R, m) squared distances to centres of shape (G, R, m, D)."""
        g, r, m, _ = centers.shape
        dots = torch.bmm(xp, centers.reshape(g, r * m, d).transpose(1, 2)).view(g, n_max, r, m)
        c_sq = (centers * centers).sum(-1)
        return (x_sq[:, :, None, None] - 2 * dots + c_sq[:, None]).clamp_min_(0)

    # --- k-means++ initialisation, all groups and restarts at once -------------------
    gather_rows = torch.arange(num_groups, device=device)[:, None]
    uniforms = torch.rand(k, num_groups, restarts, generator=generator, dtype=torch.float64).to(device)
    first = (uniforms[0] * sizes[:, None].to(torch.float64)).long().clamp_max_((sizes[:, None] - 1).clamp_min(0))
    centers = xp[gather_rows, first][:, :, None]  # (G, R, 1, D)
    nearest = sqdist(centers)[..., 0]  # (G, n_max, R)
    for j in range(1, k):
        weight = (nearest * maskf[:, :, None]).transpose(1, 2)  # (G, R, n_max)
        cdf = torch.cumsum(weight, -1)
        total = cdf[..., -1:]
        target = uniforms[j][..., None].to(dtype) * total
        pick = torch.searchsorted(cdf.contiguous(), target.contiguous(), right=True)[..., 0]
        # all-zero weights (every point on a chosen centre): any row is as good; take the first centre's
        pick = torch.where(total[..., 0] > 0, pick.clamp_max(n_max - 1), first)
        new = xp[gather_rows, pick][:, :, None]
        centers = torch.cat([centers, new], 2)
        nearest = torch.minimum(nearest, sqdist(new)[..., 0])

    # --- Lloyd iterations until no assignment changes --------------------------------
    dist = sqdist(centers)
    assign = dist.argmin(-1)  # (G, n_max, R)
    iterations = torch.zeros(num_groups, restarts, dtype=torch.int64, device=device)
    for it in range(1, max_iter + 1):
        onehot = torch.nn.functional.one_hot(assign, k).to(dtype) * maskf[:, :, None, None]  # (G, n_max, R, k)
        counts = onehot.sum(1)  # (G, R, k)
        sums = torch.einsum("gnrk,gnd->grkd", onehot, xp)
        means = sums / counts.clamp_min(1)[..., None]
        centers = torch.where(counts[..., None] > 0, means, centers)
        dist = sqdist(centers)
        new_assign = dist.argmin(-1)
        changed = ((new_assign != assign) & mask[:, :, None]).any(1)  # (G, R)
        iterations = torch.where(changed, torch.full_like(iterations, it), iterations)
        assign = new_assign
        if not bool(changed.any()):
            break

    # rank restarts by the expanded-form inertia, then report the kept one's exactly
    best = (dist.amin(-1) * maskf[:, :, None]).sum(1).argmin(1)  # (G,)
    g_idx = torch.arange(num_groups, device=device)
    best_assign = assign[g_idx, :, best]  # (G, n_max)
    best_centers = centers[g_idx, best]  # (G, k, D)
    inertia = ((xp - best_centers[gather_rows, best_assign]) ** 2).sum(-1).mul(maskf).sum(1).to(torch.float64)
    labels = torch.empty(n, dtype=torch.int64, device=device)
    labels[order] = best_assign[sorted_groups, pos]
    counts = torch.nn.functional.one_hot(best_assign, k).mul(mask[:, :, None]).sum(1)
    return KMeansResult(labels=labels, centers=best_centers, inertia=inertia,
                        counts=counts.to(torch.int64), iterations=iterations[g_idx, best], restart=best)
