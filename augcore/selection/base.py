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

import torch

from augcore.io import atomic_torch_save


@dataclass
class InferenceStats:
    """Per-example outputs of one eval-mode pass over a data set (all on one device)."""

    logits: torch.Tensor                 # (N, C) float
    labels: torch.Tensor                 # (N,) int64
    losses: torch.Tensor                 # (N,) float32 per-example cross-entropy
    indices: torch.Tensor                # (N,) int64 dataset indices of the rows
    embeddings: Optional[torch.Tensor] = None  # (N, H) penultimate embeddings

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

    def __len__(self) -> int:
        return self.indices.numel()

    def to_state(self) -> Dict[str, Any]:
        return {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_state(cls, state: Dict[str, Any]) -> "Selection":
        return cls(**state)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes atomically (temp file + rename): a killed run never leaves half a file."""
        atomic_torch_save(self.to_state(), path)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Selection":
        if not os.path.exists(path):
            raise FileNotFoundError(f"no selection file at {path}")
        return cls.from_state(torch.load(path, map_location="cpu", weights_only=False))

    def summary(self) -> str:
        return json.dumps({"method": self.method, "epoch": self.epoch, "size": len(self),
                           "weight_min": float(self.weights.min()) if len(self) else None,
                           "weight_max": float(self.weights.max()) if len(self) else None,
                           **{f"time_{k}": v for k, v in self.timings.items()}})


@runtime_checkable
class Selector(Protocol):
    """Turns inference statistics into a Selection. Deterministic given ``seed``."""

    def select(self, stats: InferenceStats, epoch: int = 0, seed: int = 0) -> Selection: ...
