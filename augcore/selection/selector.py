"""What every selector shares: the ``SELECTORS`` registry and ``BaseSelector``, which validates
the statistics, times the call and assembles the ``Selection`` around a subclass's ``pick``."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Optional

import torch

from augcore.registry import Registry
from augcore.selection._common import validate_stats
from augcore.selection.base import InferenceStats, Selection

# name -> selector class; ``@SELECTORS.register("name")`` also sets the class's ``method``.
# Selectors of other packages register when their package is imported (augcore.influence: "influence").
SELECTORS = Registry("selector", name_attribute="method")


@dataclass
class Picks:
    """What a selector picked, in rows of the stats (a ``BaseSelector`` turns it into a ``Selection``)."""

    rows: torch.Tensor                           # (K,) int64 rows of the stats; the Selection lives on their device
    weights: Optional[torch.Tensor] = None       # (K,) training weights; None: unit weights
    budgets: Optional[torch.Tensor] = None       # (C,) picks per class; None: counted from the rows
    assignment: Optional[torch.Tensor] = None    # (N,) row of each example's medoid, or -1
    timings: Dict[str, float] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)


class BaseSelector:
    """``select(stats, epoch, seed)``: ``validate`` the stats, ``pick`` (the subclass's part),
    and one ``Selection`` of dataset indices with ``timings["total"]`` (validation included)
    and ``info["fraction"]`` (the share of the rows selected) added to the pick's own."""

    method: ClassVar[str] = ""
    # False: ``pick`` reads labels and indices only, so a caller may skip the model's inference pass
    needs_model_stats: ClassVar[bool] = True

    @property
    def needs_embeddings(self) -> bool:
        """Whether ``pick`` reads ``stats.embeddings`` (then ``validate`` requires them)."""
        return False

    def select(self, stats: InferenceStats, epoch: int = 0, seed: int = 0) -> Selection:
        return self._select(stats, epoch, seed)

    def _select(self, stats: InferenceStats, epoch: int, seed: int, **options: Any) -> Selection:
        """``select`` of a subclass whose ``pick`` takes more ``options`` (coreset: ``classes``)."""
        t0 = time.perf_counter()
        self.validate(stats)
        picks = self.pick(stats, epoch=epoch, seed=seed, **options)
        return self.assemble(stats, picks, epoch, t0)

    def validate(self, stats: InferenceStats) -> None:
        validate_stats(stats, need_embeddings=self.needs_embeddings)

    def pick(self, stats: InferenceStats, *, epoch: int, seed: int, **options: Any) -> Picks:
        raise NotImplementedError(f"{type(self).__name__} defines no pick()")

    def assemble(self, stats: InferenceStats, picks: Picks, epoch: int, started: float) -> Selection:
        rows = picks.rows.to(torch.int64)
        indices = stats.indices.to(rows.device)
        weights = (torch.ones(rows.numel(), dtype=torch.float32, device=rows.device) if picks.weights is None
                   else picks.weights.to(rows.device))
        budgets = picks.budgets
        if budgets is None:
            budgets = torch.bincount(stats.labels[rows.to(stats.labels.device)].to(torch.int64).cpu(),
                                     minlength=stats.num_classes)
        assignment = picks.assignment
        if assignment is not None:  # rows of the stats -> dataset indices, -1 kept
            assignment = assignment.to(indices.device)
            assignment = torch.where(assignment >= 0, indices[assignment.clamp_min(0)], torch.full_like(assignment, -1))
        n = len(stats)
        return Selection(indices=indices[rows].to(torch.int64), weights=weights, method=self.method,
                         assignment=assignment, budgets=budgets, epoch=epoch,
                         timings={**picks.timings, "total": time.perf_counter() - started},
                         info={"fraction": rows.numel() / n if n else 0.0, **picks.info})
