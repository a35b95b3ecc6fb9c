"""The shared vocabulary of selection: inference statistics in, a Selection out.

Data flows one way: model -> ``InferenceStats`` (one eval-mode pass) -> a
``Selector`` -> ``Selection`` -> dataset view -> loader -> trainer. Selectors know
nothing of loaders or models; the trainer and the generation driver consume
``Selection`` only.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Protocol, Union, runtime_checkable

import numpy as np
import torch

from augcore.checks import CorruptFileError, check_format_version, check_int
from augcore.io import atomic_torch_save, load_torch_file

SELECTION_FORMAT = 1  # the "format" entry of Selection.save's file (files without one predate it)

_STATS_FIELDS = ("logits", "labels", "losses", "indices", "embeddings")


def _as_tensor_field(owner: str, name: str, value: Any, optional: bool = False) -> Optional[torch.Tensor]:
    """A tensor from a tensor, numpy array or (nested) list of numbers; None only where optional."""
    if value is None:
        if optional:
            return None
        raise TypeError(f"{owner}.{name} is missing (None); every field but embeddings is required")
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray) or (isinstance(value, (list, tuple)) and not isinstance(value, str)):
        try:
            array = np.asarray(value)
        except ValueError as exc:  # ragged lists
            raise ValueError(f"{owner}.{name} must be a rectangular array, got a ragged list ({exc})") from None
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{owner}.{name} must hold numbers, got a {array.dtype} array")
        if array.dtype.kind == "f" and isinstance(value, (list, tuple)):
            array = array.astype(np.float32)  # Python floats: float32 like a model's outputs
        return torch.from_numpy(np.ascontiguousarray(array))
    raise TypeError(f"{owner}.{name} must be a torch.Tensor (or numpy array), got {value!r} "
                    f"({type(value).__name__})")


@dataclass
class InferenceStats:
    """Per-example outputs of one eval-mode pass over a data set (all on one device).

    numpy arrays and lists are converted to tensors; a missing (None) required field or
    a field of another type raises ``TypeError`` naming it. Shapes, dtypes, devices and
    values are checked by the selectors (``validate_stats``).
    """

    logits: torch.Tensor                 # (N, C) float
    labels: torch.Tensor                 # (N,) int64
    losses: torch.Tensor                 # (N,) float32 per-example cross-entropy
    indices: torch.Tensor                # (N,) int64 dataset indices of the rows
    embeddings: Optional[torch.Tensor] = None  # (N, H) penultimate embeddings

    def __post_init__(self):
        for name in _STATS_FIELDS:
            setattr(self, name, _as_tensor_field("stats", name, getattr(self, name), optional=name == "embeddings"))

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    def __len__(self) -> int:
        return self.labels.shape[0]


@dataclass
class Selection:
    """Which examples to augment (or generate for), with their weights.

    ``indices`` are dataset indices (not row numbers of the stats). ``weights``
    are the training weights of the augmented copies (unit for baselines).
    """

    indices: torch.Tensor                        # (K,) int64 dataset indices
    weights: torch.Tensor                        # (K,) float32
    method: str                                  # e.g. "coreset", "random", "max_loss", "slow_learnable"
    assignment: Optional[torch.Tensor] = None    # (N,) int64: dataset index of each example's medoid, or -1
    budgets: Optional[torch.Tensor] = None       # (C,) int64 picks per class
    epoch: int = 0
    timings: Dict[str, float] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)  # selector-specific facts (e.g. selected fraction)

    def __post_init__(self):
        self.indices = _as_tensor_field("selection", "indices", self.indices)
        self.weights = _as_tensor_field("selection", "weights", self.weights)
        if not isinstance(self.method, str):
            raise TypeError(f"selection.method must be a string, got {self.method!r}")
        self.epoch = check_int("selection.epoch", self.epoch)  # np.int64(2) becomes 2: summary() is JSON

    def __len__(self) -> int:
        return self.indices.numel()

    def to_state(self) -> Dict[str, Any]:
        return {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_state(cls, state: Dict[str, Any]) -> "Selection":
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from Selection.to_state, got {type(state).__name__}")
        fields = set(cls.__dataclass_fields__)
        missing = sorted({"indices", "weights", "method"} - set(state))
        unknown = sorted(set(state) - fields)
        if missing or unknown:
            raise ValueError(f"state is not a Selection state: missing {missing}, unknown {unknown}")
        return cls(**state)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes atomically (temp file + rename): a killed run never leaves half a file."""
        atomic_torch_save({**self.to_state(), "format": SELECTION_FORMAT}, path)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Selection":
        """Reads a file written by :meth:`save`, its checksum verified; ``CorruptFileError`` names a bad file."""
        state = load_torch_file(path, what="selection file")
        if isinstance(state, dict) and "format" in state:
            state = dict(state)
            check_format_version(path, state.pop("format"), (SELECTION_FORMAT,), what="selection files")
        try:
            return cls.from_state(state)
        except (TypeError, ValueError) as exc:
            raise CorruptFileError(path, f"not a saved Selection ({exc})") from None

    def summary(self) -> str:
        return json.dumps({"method": self.method, "epoch": self.epoch, "size": len(self),
                           "weight_min": float(self.weights.min()) if len(self) else None,
                           "weight_max": float(self.weights.max()) if len(self) else None,
                           **{f"time_{k}": v for k, v in self.timings.items()}})


@runtime_checkable
class Selector(Protocol):
    """Turns inference statistics into a Selection. Deterministic given ``seed``.

    A selector may set ``needs_model_stats = False`` when labels are enough (a random subset): the
    training loop then runs no inference pass for it. Without the attribute, it gets the model's
    statistics."""

    def select(self, stats: InferenceStats, epoch: int = 0, seed: int = 0) -> Selection: ...
