"""Argument checks shared by every public entry point.

Each check names the parameter, shows the bad value and says what is allowed, and
raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, bad
value). A number may be a Python number, a numpy scalar of any dtype, or a 0-d
numpy array or torch tensor: each means what the equal Python value means
(:func:`as_python_number`). Bools are never taken for numbers, and a count is never
rounded: 3.0 is the count 3, 2.5 is rejected. Damaged files, and files that lack
an entry or carry another format version, raise ``CorruptFileError`` naming the
file (:func:`check_file_entries`, :func:`check_format_version`).
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Any, Iterable, Optional, Sequence

import torch

__all__ = ["CorruptFileError", "as_python_number", "check_choice", "check_count", "check_count_list",
           "check_count_or_fraction", "check_file_entries", "check_format_version", "check_fraction", "check_int",
           "check_int_list", "check_number", "check_path_exists"]


class CorruptFileError(ValueError):
    """A file augcore wrote (or reads) is truncated, damaged or not what its name says."""

    def __init__(self, path: "os.PathLike[str] | str", problem: str):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {problem}")


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and shape and hasattr(value, "dtype"):  # torch.Size is a tuple too
        return f"a {type(value).__name__} of shape {tuple(shape)} and dtype {value.dtype}"
    text = repr(value)
    return f"{text if len(text) <= 80 else text[:77] + '...'} ({type(value).__name__})"


def as_python_number(name: str, value: Any) -> "int | float":
    """The Python ``int`` or ``float`` that ``value`` stands for.

    Takes Python numbers, numpy scalars of every integer and floating dtype, and 0-d
    numpy arrays and torch tensors (any device) of those dtypes: ``np.float32(0.5)`` and
    ``torch.tensor(0.5)`` are 0.5, ``np.uint8(3)`` is 3. Integer kinds give an ``int``,
    floating kinds a ``float`` (NaN and inf included: range checks are the caller's).
    Raises ``TypeError`` naming ``name`` for bools (of any library), complex numbers,
    strings, None and arrays/tensors with a shape.
    """
    if _is_integer(value):
        return int(value)
    if _is_real(value):
        return float(value)
    dtype = getattr(value, "dtype", None)
    shape = getattr(value, "shape", None)
    if dtype is not None and shape is not None and hasattr(value, "item"):  # numpy arrays, torch tensors
        if tuple(shape) == ():
            item = value.item()
            if _is_integer(item) or _is_real(item):  # not bool, not complex
                return int(item) if _is_integer(item) else float(item)
        else:
            raise TypeError(f"{name} must be a single number, got {_describe(value)}")
    raise TypeError(f"{name} must be a number, got {_describe(value)}")


def check_count(name: str, value: Any, *, min: Optional[int] = 0, max: Optional[int] = None) -> int:
    """A number of things (a budget, a size, a count) in ``[min, max]``, returned as ``int``.

    Any number kind :func:`as_python_number` takes; a float must be integral (3.0 and
    ``np.float32(3)`` are 3), since a count is never rounded: 2.5, NaN and inf raise
    ``TypeError`` naming ``name``, as any other value that is not an integer.
    """
    number = as_python_number(name, value)
    if isinstance(number, float):
        if not number.is_integer():
            raise TypeError(f"{name} must be an integer count, got {number}: not a whole number "
                            "(augcore never rounds a count)")
        number = int(number)
    return _check_range(name, number, min, max)


def _check_range(name: str, value: int, min: Optional[int], max: Optional[int]) -> int:
    if min is not None and value < min:
        raise ValueError(f"{name} must be >= {min}, got {value}")
    if max is not None and value > max:
        raise ValueError(f"{name} must be <= {max}, got {value}")
    return value


def check_count_or_fraction(name: str, value: Any, *, max_count: Optional[int] = None) -> "int | float":
    """A count (an integer of any kind, in ``[0, max_count]``), or a fraction (a float of
    any kind, in (0, 1]); returned as ``int`` or ``float``, so the caller tells them apart
    by type. ``np.float32(0.5)`` and ``torch.tensor(0.5)`` are fractions, ``np.int64(5)``
    is a count, and a float is never taken for a count (1.0 is all of them)."""
    number = as_python_number(name, value)
    if isinstance(number, int):
        return _check_range(name, number, 0, max_count)
    return check_fraction(f"{name} (a fraction)", number)


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
    """An integer in ``[min, max]``, returned as ``int``: a Python or numpy integer, or a 0-d
    integer array/tensor; bools and floats (even 2.0: seeds, epochs and ids are integers by
    nature; counts go through :func:`check_count`) raise ``TypeError``."""
    number = as_python_number(name, value) if not isinstance(value, (str, bytes)) else value
    if not isinstance(number, int):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    return _check_range(name, number, min, max)


def check_number(name: str, value: Any, *, min: Optional[float] = None, max: Optional[float] = None,
                 min_inclusive: bool = True, max_inclusive: bool = True, finite: bool = True) -> float:
    """A real number (any kind :func:`as_python_number` takes) in the given range; NaN is always rejected."""
    value = float(as_python_number(name, value))
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if min is not None and (value < min or (not min_inclusive and value == min)):
        raise ValueError(f"{name} must be {'>=' if min_inclusive else '>'} {min}, got {value}")
    if max is not None and (value > max or (not max_inclusive and value == max)):
        raise ValueError(f"{name} must be {'<=' if max_inclusive else '<'} {max}, got {value}")
    return value


def check_fraction(name: str, value: Any) -> float:
    """A fraction in (0, 1] (any number kind)."""
    value = float(as_python_number(name, value))
    if not 0.0 < value <= 1.0:  # also NaN
        raise ValueError(f"{name} must lie in (0, 1] (a fraction), got {value}")
    return value


def _as_list(name: str, value: Any, what: str) -> list:
    """The items of a list/tuple/range/1-D array or tensor; a scalar or a nested array raises naming ``name``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, range)) and not hasattr(value, "tolist"):
        raise TypeError(f"{name} must be a list of {what}, got {_describe(value)}")
    items = value.tolist() if hasattr(value, "tolist") else list(value)
    if not isinstance(items, list):  # a 0-d array
        raise TypeError(f"{name} must be a list of {what}, got the scalar {items!r}")
    return items


def check_int_list(name: str, value: Any, *, min: Optional[int] = None, length: Optional[int] = None) -> list:
    """A list/tuple/1-D array of integers, each ``>= min``; a scalar is rejected naming the parameter."""
    items = _as_list(name, value, "integers")
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(items)}")
    return [check_int(f"{name}[{i}]", v, min=min) for i, v in enumerate(items)]


def check_count_list(name: str, value: Any, *, min: Optional[int] = 0, length: Optional[int] = None) -> list:
    """A list/tuple/1-D array or tensor of counts (:func:`check_count` for each: integral floats
    such as 3.0 are taken, 1.9 is rejected by its position, never truncated)."""
    items = _as_list(name, value, "counts")
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(items)}")
    return [check_count(f"{name}[{i}]", v, min=min) for i, v in enumerate(items)]


def check_file_entries(path: "os.PathLike[str] | str", state: Any, required: Iterable[str], *,
                       what: str) -> dict:
    """``state`` read from ``path`` is a mapping holding every key of ``required``; else
    ``CorruptFileError`` naming the file and the missing entries."""
    if not isinstance(state, dict):
        raise CorruptFileError(path, f"not {what}: it holds a {type(state).__name__}, not a mapping of entries")
    missing = [key for key in required if key not in state]
    if missing:
        raise CorruptFileError(path, f"incomplete {what}: lacks {', '.join(map(repr, missing))} "
                                     f"(has {sorted(map(str, state))})")
    return state


def check_format_version(path: "os.PathLike[str] | str", found: Any, supported: Iterable[int], *, what: str,
                         key: str = "format") -> int:
    """``found`` (the file's ``key`` entry) is one of the ``supported`` format versions; else
    ``CorruptFileError`` naming the file, the version it has and those this augcore reads."""
    supported = tuple(supported)
    if found in supported and _is_integer(found):
        return int(found)
    if found is None:
        problem = f"has no {key!r} entry (format version)"
    elif _is_integer(found) and found > max(supported):
        problem = f"format version {found} was written by a newer augcore"
    else:
        problem = f"format version {found!r} is not one this augcore reads"
    raise CorruptFileError(path, f"{problem}; this augcore reads {what} of format "
                                 f"{' or '.join(map(str, supported))}")


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


FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_finite(x: "torch.Tensor", name: str, *, hint: str = "") -> None:
    """Raises ``ValueError`` when the float tensor ``x`` holds a NaN or an infinity, naming ``name``,
    how many, their kind and the index of the first (``hint``, if given, follows: what to check).

    One pass when every entry is finite: NaN propagates to both extremes, so finite extremes
    mean a finite tensor (a 5,000^2 matrix: 17 ms against 330 ms for isfinite + any)."""
    if not x.is_floating_point() or x.numel() == 0:
        return
    low, high = torch.aminmax(x)
    if bool(torch.isfinite(low) & torch.isfinite(high)):
        return
    bad = ~torch.isfinite(x)
    first = tuple(int(i) for i in bad.nonzero()[0])
    kind = "NaN" if bool(torch.isnan(x).any()) else "infinite"
    raise ValueError(f"{name} contains {int(bad.sum())} non-finite value(s) ({kind}), first at index {first}"
                     + (f"; {hint}" if hint else ""))


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


__all__ += ["FLOAT_DTYPES", "IndexOutOfRangeError", "check_bool", "check_finite", "check_indices"]
