"""Where a policy's statistics come from: an eval-mode inference pass, the labels alone,
or the outputs the last training epoch already computed (``augment.stats: in_epoch``).

``in_epoch`` (full-data setting only) records, during each training epoch, the logits
and embeddings of every original under its weak augmentation in train mode; the next
selection uses them instead of running a pass, so a re-selection costs only the
selector. The first selection (epoch 0) has no previous epoch and runs the pass.
In-epoch statistics are single-process (a DDP rank sees only its share of each batch).
"""
from __future__ import annotations

import time
from typing import Optional

import torch
from torch.utils.data import Subset

from augcore.selection.base import InferenceStats
from augcore.train.strategy import Strategy


def label_only_stats(labels: torch.Tensor, rows: torch.Tensor, num_classes: int) -> InferenceStats:
    """Statistics for selectors that read labels and indices only (random): no model
    outputs exist, so logits and losses are zero placeholders (expanded views, no memory)."""
    n = rows.numel()
    return InferenceStats(logits=torch.zeros(1, num_classes).expand(n, num_classes), labels=labels[rows],
                          losses=torch.zeros(1).expand(n), indices=rows.to(torch.int64))


class StatsProvider:
    """Answers ``model_stats(rows)`` and ``label_stats(rows)`` for the policies; counts passes."""

    def __init__(self, model: torch.nn.Module, inference_set, labels: torch.Tensor, num_classes: int, *,
                 strategy: Strategy, batch_size: int, device: torch.device, num_workers: int, source: str = "eval"):
        self.model = model
        self.inference_set = inference_set
        self.labels = torch.as_tensor(labels).to(torch.int64).cpu()
        self.num_classes = num_classes
        self.strategy = strategy
        self.kwargs = dict(batch_size=batch_size, device=device, num_workers=num_workers)
        self.source = source
        self.passes = 0                  # eval-mode inference passes run so far
        self.pass_seconds = 0.0
        self._recorder = None            # the in-epoch accumulator of the running epoch
        self._recorded: Optional[InferenceStats] = None   # the last complete epoch's

    def model_stats(self, rows: Optional[torch.Tensor] = None, *, embeddings: bool = True) -> InferenceStats:
        """The model's statistics of ``rows`` (None: every example), with penultimate embeddings
        unless ``embeddings=False`` (they cost a hook and (N, H) memory)."""
        if rows is None and self._recorded is not None:
            stats, self._recorded = self._recorded, None
            return stats
        t0 = time.perf_counter()
        dataset = self.inference_set if rows is None else Subset(self.inference_set, rows.tolist())
        stats = self.strategy.collect_stats(self.model, dataset, embeddings=embeddings, **self.kwargs)
        self.passes += 1
        self.pass_seconds += time.perf_counter() - t0
        return stats

    def label_stats(self, rows: Optional[torch.Tensor] = None) -> InferenceStats:
        rows = torch.arange(self.labels.numel()) if rows is None else rows.to(torch.int64).cpu()
        return label_only_stats(self.labels, rows, self.num_classes)

    # -------------------------------------------------------------- in-epoch statistics
    @property
    def records_in_epoch(self) -> bool:
        return self.source == "in_epoch"

    def start_epoch(self) -> None:
        if self.records_in_epoch:
            from augcore.selection.inference import StatsAccumulator
            self._recorder = StatsAccumulator(self.labels.numel(), self.num_classes)

    def record(self, indices: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
               embeddings: Optional[torch.Tensor], is_copy: torch.Tensor) -> None:
        """The training step's outputs; strong copies are skipped (only originals count)."""
        if self._recorder is None:
            return
        keep = ~is_copy.to(torch.bool).to(logits.device)
        self._recorder.add(indices.to(logits.device)[keep], logits.detach()[keep], labels[keep],
                           None if embeddings is None else embeddings.detach()[keep])

    def finish_epoch(self) -> None:
        if self._recorder is not None:
            self._recorded = self._recorder.finish()
            self._recorder = None
