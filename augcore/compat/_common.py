"""What both drop-ins share: input conversion, argument refusals, the kernel call."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from augcore.checks import check_finite
from augcore.ops import FacilityLocationResult, facility_location


def refuse(library: str, name: str, value: Any, default: Any, why: str) -> None:
    """Raises when an argument the drop-in does not implement is set to anything but its default."""
    if value is default or (default is not None and not isinstance(value, np.ndarray) and value == default):
        return
    raise ValueError(f"augcore.compat.{library}: {name}={_short(value)} is not supported ({why}); "
                     f"leave {name} at its default {default!r}")


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"<array of shape {value.shape}>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_bool(library: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"augcore.compat.{library}: {name} must be True or False, got {value!r}")
    return bool(value)


def as_matrix(library: str, name: str, value: Any, *, rows: Optional[int] = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A finite 2-D float tensor (CPU) from a numpy array, nested list or tensor."""
    if hasattr(value, "tocsr") or type(value).__module__.startswith("scipy.sparse"):
        raise ValueError(f"augcore.compat.{library}: {name} is a scipy sparse matrix; only dense arrays are "
                         "supported (dense facility location)")
    try:
        x = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"augcore.compat.{library}: {name} must be a numeric 2-D array, got "
                        f"{type(value).__name__}") from exc
    if x.dim() != 2:
        raise ValueError(f"augcore.compat.{library}: {name} must be 2-D, got shape {tuple(x.shape)}")
    if x.dtype == torch.bool or not (x.is_floating_point() or x.dtype in (torch.int8, torch.int16, torch.int32,
                                                                           torch.int64, torch.uint8)):
        raise TypeError(f"augcore.compat.{library}: {name} must be numeric, got {x.dtype}")
    if rows is not None and x.shape[0] != rows:
        raise ValueError(f"augcore.compat.{library}: {name} has {x.shape[0]} rows but n={rows}")
    x = x.detach().to("cpu", dtype)
    check_finite(x, f"augcore.compat.{library}: {name}")
    return x


def solve(budget: int, *, method: str, tie_break: str, similarity: Optional[torch.Tensor] = None,
          points: Optional[torch.Tensor] = None, kind: str = "exp", scale: Optional[float] = None,
          eps: float = 0.01, seed: int = 0) -> FacilityLocationResult:
    """One group's greedy on augcore's kernel: from a precomputed (N, N) matrix,
    entry [i, j] = similarity of point i to candidate j, or from ``points`` with one of
    the kernel's own similarities (``kind``: "exp" is exp(-d / scale))."""
    if similarity is not None:
        return facility_location(None, budget, similarity=similarity, method=method, eps=eps, seed=seed,
                                 tie_break=tie_break)
    return facility_location(points, budget, similarity=kind, scale=scale, method=method, eps=eps, seed=seed,
                             tie_break=tie_break)
