"""Argument checks shared by every public entry point.

Each check names the parameter, shows the bad value and says what is allowed, and
raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, bad
value). numpy scalars are accepted wherever the matching Python number is; bools
are never taken for numbers. Damaged files raise ``CorruptFileError`` naming the
file.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Any, Iterable, Optional, Sequence

__all__ = ["CorruptFileError", "check_choice", "check_fraction", "check_int", "check_int_list", "check_number",
           "check_path_exists"]


class CorruptFileError(ValueError):
    """A file augcore wrote (or reads) is truncated, damaged or not what its name says."""

    def __init__(self, path: "os.PathLike[str] | str", problem: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {problem}")


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_choice(name: str, value: Any, options: Iterable[Any]) -> Any:
    """``value`` must be one of ``options``."""
    options = tuple(options)
    try:
        known = value in options
    except (TypeError, ValueError):  # arrays and other values without a plain truth value
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_int(name: str, value: Any, *, min: Optional[int] = None, max: Optional[int] = None) -> int:
    """An integer (Python or numpy, not bool, not float) in ``[min, max]``; returned as ``int``."""
    if not _is_integer(value):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if min is not None and value < min:
        raise ValueError(f"{name} must be >= {min}, got {value}")
    if max is not None and value > max:
        raise ValueError(f"{name} must be <= {max}, got {value}")
    return value


def check_number(name: str, value: Any, *, min: Optional[float] = None, max: Optional[float] = None,
                 min_inclusive: bool = True, max_inclusive: bool = True, finite: bool = True) -> float:
    """A real number (Python or numpy, not bool) in the given range; NaN is always rejected."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if min is not None and (value < min or (not min_inclusive and value == min)):
        raise ValueError(f"{name} must be {'>=' if min_inclusive else '>'} {min}, got {value}")
    if max is not None and (value > max or (not max_inclusive and value == max)):
        raise ValueError(f"{name} must be {'<=' if max_inclusive else '<'} {max}, got {value}")
    return value


def check_fraction(name: str, value: Any) -> float:
    """A fraction in (0, 1]."""
    return check_number(name, value, min=0.0, max=1.0, min_inclusive=False)


def check_int_list(name: str, value: Any, *, min: Optional[int] = None, length: Optional[int] = None) -> list:
    """A list/tuple/1-D array of integers, each ``>= min``; a scalar is rejected naming the parameter."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) and not hasattr(value, "tolist"):
        raise TypeError(f"{name} must be a list of integers, got {value!r} ({type(value).__name__})")
    items = value.tolist() if hasattr(value, "tolist") else list(value)
    if not isinstance(items, list):  # a 0-d array
        raise TypeError(f"{name} must be a list of integers, got the scalar {items!r}")
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(items)}")
    return [check_int(f"{name}[{i}]", v, min=min) for i, v in enumerate(items)]


def check_path_exists(name: str, path: Any, *, kind: str = "file") -> str:
    """``path`` names an existing file (``kind="file"``) or folder (``kind="dir"``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {path!r} ({type(path).__name__})")
    path = os.fspath(path)
    exists = os.path.isdir(path) if kind == "dir" else os.path.isfile(path)
    if not exists:
        raise FileNotFoundError(f"{name}: no {'folder' if kind == 'dir' else 'file'} at {path}")
    return path


class IndexOutOfRangeError(IndexError, ValueError):
    """An index outside its range: an ``IndexError`` (Python's protocol) that is also a
    ``ValueError`` (a bad argument value), so either ``except`` catches it."""


def check_indices(name: str, value: Any, *, size: Optional[int] = None, unique: bool = False):
    """1-D integer indices (tensor on any device, numpy array, list/tuple/range of ints) as a CPU
    int64 tensor, each in ``[0, size)`` when ``size`` is given. Floats, bools, scalars and
    nested lists are rejected (a float 1.9 is never silently taken for 1)."""
    import numpy as np
    import torch

    if isinstance(value, (str, bytes)) or value is None or _is_real(value) or isinstance(value, bool):
        raise TypeError(f"{name} must be a 1-D list/tensor of integer indices, got {value!r} ({type(value).__name__})")
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer indices, got a numpy array of {value.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(value).astype(np.int64, copy=False))
    else:
        items = list(value) if isinstance(value, (Sequence, range)) else None
        if items is None:
            raise TypeError(f"{name} must be a 1-D list/tensor of integer indices, got {type(value).__name__}")
        bad = [v for v in items if not _is_integer(v)]
        if bad:
            raise TypeError(f"{name} must hold integer indices, found {bad[0]!r} ({type(bad[0]).__name__})")
        tensor = torch.tensor([int(v) for v in items], dtype=torch.int64)
    if tensor.dtype.is_floating_point or tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer indices, got {tensor.dtype} (a mask? use mask.nonzero())")
    if tensor.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(tensor.shape)}")
    tensor = tensor.to(device="cpu", dtype=torch.int64)
    if tensor.numel():
        lo, hi = int(tensor.min()), int(tensor.max())
        if lo < 0:
            raise IndexOutOfRangeError(f"{name} must be >= 0 (dataset indices), found {lo}")
        if size is not None and hi >= size:
            raise IndexOutOfRangeError(f"{name} out of range: must lie in [0, {size}), found {hi}")
    if unique and torch.unique(tensor).numel() != tensor.numel():
        raise ValueError(f"{name} contains repeated indices")
    return tensor


def check_bool(name: str, value: Any) -> bool:
    """``True``/``False`` (or a numpy bool); a string such as "false" is rejected, not taken as truthy."""
    import numpy as np

    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


__all__ += ["IndexOutOfRangeError", "check_bool", "check_indices"]
