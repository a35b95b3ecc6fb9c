"""Input conversion, validation and CSR grouping shared by every op wrapper.

Every public op accepts torch tensors, numpy arrays or any object with
``__dlpack__`` (JAX, CuPy, ...). Conversion goes through DLPack, so no copy is
made where the producer's device allows it. Results are always torch tensors.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from augcore.checks import FLOAT_DTYPES, check_finite

_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def as_tensor(x: Any, name: str) -> torch.Tensor:
    """Returns ``x`` as a torch tensor without copying where possible."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":  # object, string, complex, datetime arrays have no torch dtype here
            raise TypeError(f"{name}: expected an array of numbers, got a numpy array of dtype {x.dtype}")
        return torch.from_numpy(np.ascontiguousarray(x) if not x.flags.writeable else x)
    if hasattr(x, "__dlpack__"):
        return torch.from_dlpack(x)
    if isinstance(x, (list, tuple)):
        try:
            return torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as exc:  # ragged, nested or non-numeric lists
            raise TypeError(f"{name}: expected a rectangular list of numbers, got {type(x).__name__} "
                            f"({' '.join(str(exc).split())})") from None
    raise TypeError(
        f"{name}: expected a torch tensor, a numpy array or an object with __dlpack__, "
        f"got {type(x).__name__}"
    )


def check_float_matrix(x: torch.Tensor, name: str, rows: Optional[int] = None) -> None:
    if x.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D (N, D) array, got shape {tuple(x.shape)}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a floating dtype (float16/bfloat16/float32/float64), got {x.dtype}")
    if rows is not None and x.shape[0] != rows:
        raise ValueError(f"{name}: expected {rows} rows, got shape {tuple(x.shape)}")


def check_same_device(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.device != b.device:
        raise ValueError(f"{name_a} is on {a.device} but {name_b} is on {b.device}; put them on one device")


def check_labels(labels: torch.Tensor, n: int, name: str = "labels", num_classes: Optional[int] = None) -> int:
    """Validates integer group labels of length ``n``; returns the number of groups."""
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},), got {tuple(labels.shape)}")
    if labels.dtype not in _INT_DTYPES:
        raise TypeError(f"{name}: expected an integer dtype, got {labels.dtype}")
    if n == 0:
        return int(num_classes or 0)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0:
        raise ValueError(f"{name}: values must be >= 0, found {lo}")
    if num_classes is None:
        return hi + 1
    if hi >= num_classes:
        raise ValueError(f"{name}: value {hi} out of range for num_classes={num_classes}")
    return int(num_classes)


class Segments(NamedTuple):
    """Rows sorted by group, CSR style: group ``g`` owns ``order[indptr[g]:indptr[g+1]]``.

    The sort is stable, so inside a group rows keep their original order and "the
    smaller position" means "the smaller original index" for every tie rule.
    """

    order: torch.Tensor   # (N,) int64: sorted position -> original index
    indptr: torch.Tensor  # (G+1,) int64, on the CPU
    sizes: torch.Tensor   # (G,) int64, on the CPU

    @property
    def num_groups(self) -> int:
        return self.sizes.numel()


def segments_from_groups(groups: Optional[Any], n: int, device: torch.device,
                         num_groups: Optional[int] = None,
                         finite: Sequence[Tuple[torch.Tensor, str]] = ()) -> Segments:
    """Sorts rows by group once; kernels only ever see ``indptr``.

    Also checks that every tensor in ``finite`` (pairs of tensor and name) holds only
    finite values. On a GPU everything that must come back to the host (label range,
    finiteness, class sizes) comes back in one transfer, or two when ``num_groups`` is
    not given (the sizes need the largest label first): no other synchronisation.
    """
    labels = None
    if groups is not None:
        labels = as_tensor(groups, "groups")
        if labels.dim() != 1 or labels.shape[0] != n:
            raise ValueError(f"groups: expected shape ({n},), got {tuple(labels.shape)}")
        if labels.dtype not in _INT_DTYPES:
            raise TypeError(f"groups: expected an integer dtype, got {labels.dtype}")
        labels = labels.to(device=device, dtype=torch.int64)
    parts = []
    if labels is not None and n:
        parts += [labels.min().view(1), labels.max().view(1)]
    parts += [(~torch.isfinite(t)).any().view(1).to(torch.int64) for t, _ in finite if t.numel()]
    counted = labels is not None and num_groups is not None
    if counted:
        ones = torch.ones_like(labels)
        parts.append(torch.zeros(num_groups, dtype=torch.int64, device=device).index_add_(
            0, labels.clamp(0, max(num_groups - 1, 0)), ones) if num_groups else labels.new_zeros(0))
    host = torch.cat(parts).cpu() if parts else torch.zeros(0, dtype=torch.int64)  # the one transfer
    at = 0
    if labels is not None and n:
        lo, hi = int(host[0]), int(host[1])
        at = 2
        if lo < 0:
            raise ValueError(f"groups: values must be >= 0, found {lo}")
        if num_groups is not None and hi >= num_groups:
            raise ValueError(f"groups: value {hi} out of range for num_groups={num_groups}")
        if num_groups is None:
            num_groups = hi + 1
    for t, name in finite:
        if t.numel():
            if int(host[at]):
                check_finite(t, name)  # raises naming the first bad entry
            at += 1
    if labels is None:
        order = torch.arange(n, device=device)
        sizes = torch.tensor([n], dtype=torch.int64)
    else:
        num_groups = int(num_groups or 0)
        order = torch.sort(labels, stable=True).indices
        if counted:
            sizes = host[at:at + num_groups].clone()
        else:
            sizes = torch.zeros(num_groups, dtype=torch.int64, device=device).index_add_(
                0, labels, torch.ones_like(labels)).cpu()
    indptr = torch.zeros(sizes.numel() + 1, dtype=torch.int64)
    torch.cumsum(sizes, 0, out=indptr[1:])
    return Segments(order, indptr, sizes)
