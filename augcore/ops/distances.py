"""Pairwise distances inside groups, in proxy space or exact last-layer-gradient space."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import torch

from augcore._build import check_device_supported, compiled_ops
from augcore.ops._common import (Segments, as_tensor, check_float_matrix, check_same_device,
                                 segments_from_groups)


def prepare_points(x: Any, embeddings: Any, groups: Any, num_groups: Optional[int], compiled: bool = True,
                   check_finite: bool = True) -> Tuple[torch.Tensor, Optional[torch.Tensor], Segments]:
    """Validates points, sorts them by group (one gather) and casts to float32.

    The gather also makes non-contiguous inputs contiguous, so they are handled,
    not rejected. On a GPU the checks cost one device-to-host transfer (two without
    ``num_groups``), shared with the class sizes. ``compiled=False`` (the Triton backend)
    skips the check that the compiled extension has kernels for the points' device;
    ``check_finite=False`` skips the pass over the values (callers that checked them).
    """
    x = as_tensor(x, "proxies")
    check_float_matrix(x, "proxies")
    if compiled:
        check_device_supported(x, "proxies")
    if embeddings is not None:
        embeddings = as_tensor(embeddings, "embeddings")
        check_float_matrix(embeddings, "embeddings", rows=x.shape[0])
        check_same_device("proxies", x, "embeddings", embeddings)
    finite = [(x, "proxies")] + ([(embeddings, "embeddings")] if embeddings is not None else [])
    finite = finite if check_finite else []
    seg = segments_from_groups(groups, x.shape[0], x.device, num_groups, finite=finite)
    x_sorted = x.index_select(0, seg.order).to(torch.float32).contiguous()
    emb_sorted = None
    if embeddings is not None:
        emb_sorted = embeddings.index_select(0, seg.order).to(torch.float32).contiguous()
    return x_sorted, emb_sorted, seg


class GroupedMatrices(NamedTuple):
    """Per-group square matrices stored back to back (CSR of blocks).

    ``block(g)`` is group g's (n_g, n_g) matrix; its rows and columns are the
    examples ``members(g)`` (original indices, ascending).
    """

    values: torch.Tensor     # flat float32, sum of n_g^2 entries
    block_ptr: torch.Tensor  # (G+1,) offsets into values
    segments: Segments

    def members(self, g: int) -> torch.Tensor:
        s = self.segments
        return s.order[int(s.indptr[g]):int(s.indptr[g + 1])]

    def block(self, g: int) -> torch.Tensor:
        n = int(self.segments.sizes[g])
        return self.values[int(self.block_ptr[g]):int(self.block_ptr[g + 1])].view(n, n)


def block_offsets(sizes: torch.Tensor) -> torch.Tensor:
    ptr = torch.zeros(sizes.numel() + 1, dtype=torch.int64)
    torch.cumsum(sizes * sizes, 0, out=ptr[1:])
    return ptr


def pairwise_distances(x: Any, groups: Any = None, *, embeddings: Any = None, bias: float = 1.0,
                       squared: bool = False, num_groups: Optional[int] = None) -> GroupedMatrices:
    """Euclidean distances between all pairs inside each group.

    Without ``embeddings``: distances between the rows of ``x`` (N, D). With
    ``embeddings`` h (N, H): distances between the exact last-layer gradients
    g_i = [e_i (x) h_i, sqrt(b) e_i] with e = ``x``, from the factored identity
    <g_i, g_j> = <e_i, e_j> (<h_i, h_j> + b): no C*(H+1) vector is formed. ``bias``
    b is 1 (weights and bias) or 0 (weights only, the reference's ``--use_linear``).
    Tiled and OpenMP-parallel; float32 arithmetic.
    """
    x_sorted, emb_sorted, seg = prepare_points(x, embeddings, groups, num_groups)
    values = compiled_ops().pairwise_sqdist(x_sorted, emb_sorted, seg.indptr, float(bias))
    if not squared:
        values = values.clamp_min_(0).sqrt_()
    return GroupedMatrices(values, block_offsets(seg.sizes), seg)
