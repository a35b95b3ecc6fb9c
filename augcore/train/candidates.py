"""Candidate scoring for the strong augmentation of Wu et al. 2020 (``augment.strong: wu2020``).

Each strong copy the loop trains on is chosen among L candidate augmentations of its
example (``augcore.data.wu2020``), as dauphin's ``AugScheduler.get_batches`` chooses it:

* all candidates of a batch are scored in **one** forward pass without gradients, with the
  model in eval mode (dauphin: ``model.eval(); with torch.no_grad(): model(...); model.train()``),
  so BatchNorm normalises with its running statistics and does not update them, and dropout
  is off; the model's mode is restored afterwards;
* the score is the soft-label cross-entropy of each candidate with its (Mixup-mixed) label;
* one candidate is kept per copy (dauphin's ``augment_enlarge = 1``): drawn with probability
  proportional to its loss (``choice="sample"``, dauphin's row-wise L1-normalised
  ``random.choices``; a row of zero losses is drawn uniformly), or the highest loss
  (``choice="max"``, an option of augcore's).

Only the copies are made this way: the selection decides which examples get one, so a
coreset of 10% costs a tenth of the candidates (and of the extra forward examples) of
augmenting the full data. ``CandidateCopies.pop_costs`` reports that cost per epoch.
With ``per_example=1`` there is nothing to choose and no scoring pass runs, as in dauphin.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Dict, Sequence, Tuple

import torch
from torch import nn

from augcore.checks import check_choice, check_int
from augcore.selection.inference import logits_of
from augcore.train.losses import per_example_cross_entropy

CHOICES = ("sample", "max")

__all__ = ["CHOICES", "CandidateCopies", "choose_candidates", "score_candidates"]


@torch.no_grad()
def score_candidates(model: nn.Module, images: torch.Tensor, soft_targets: torch.Tensor, *,
                     autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
                     ) -> torch.Tensor:
    """(n,) float32 soft-label cross-entropy of each candidate, from one eval-mode forward pass.

    ``model`` may return logits, ``(logits, embedding)`` or a mapping with ``"logits"``.
    """
    if images.dim() != 4 or soft_targets.dim() != 2 or images.shape[0] != soft_targets.shape[0]:
        raise ValueError(f"images must be (n, C, H, W) and soft_targets (n, num_classes); got {tuple(images.shape)} "
                         f"and {tuple(soft_targets.shape)}")
    was_training = model.training
    model.eval()
    try:
        with autocast():
            logits = logits_of(model(images))
    finally:
        model.train(was_training)
    return per_example_cross_entropy(logits.float(), soft_targets.float())


def choose_candidates(losses: torch.Tensor, choice: str = "sample", generator: torch.Generator = None) -> torch.Tensor:
    """For a (K, L) table of candidate losses, the (K,) chosen candidate of each row."""
    check_choice("choice", choice, CHOICES)
    if losses.dim() != 2 or losses.shape[1] == 0:
        raise ValueError(f"losses must be a (K, L) table with L >= 1, got {tuple(losses.shape)}")
    losses = losses.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(losses).all()) or bool((losses < 0).any()):
        raise ValueError("candidate losses must be finite and non-negative")
    if choice == "max":
        return losses.argmax(dim=1)
    weights = losses.clone()
    weights[weights.max(dim=1).values <= 0] = 1.0   # dauphin: a row without positive loss is drawn uniformly
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)


class CandidateCopies:
    """Makes the strong copies of a batch: ``per_example`` candidates from ``augmenter``
    (an ``augcore.data.wu2020.Wu2020Augment``), scored by the model, one kept per copy;
    counts the cost it adds (``pop_costs``)."""

    def __init__(self, augmenter, per_example: int = 4, choice: str = "sample"):
        if not hasattr(augmenter, "candidates"):
            raise TypeError(f"augmenter must draw candidates (Wu2020Augment), got {type(augmenter).__name__}")
        self.augmenter = augmenter
        self.per_example = check_int("per_example (augment.candidates)", per_example, min=1)
        self.choice = check_choice("choice (augment.candidate_choice)", choice, CHOICES)
        self._costs = self._zero_costs()

    @staticmethod
    def _zero_costs() -> Dict[str, float]:
        return {"candidate_copies": 0, "candidate_forward_examples": 0, "candidate_forward_seconds": 0.0,
                "candidate_augment_seconds": 0.0}

    def make(self, model: nn.Module, indices: Sequence[int], generator: torch.Generator, *, device: torch.device,
             autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The kept copies of ``indices`` (dataset indices): images (K, C, H, W) and soft labels
        (K, num_classes), on ``device``."""
        t0 = time.perf_counter()
        images, labels = self.augmenter.candidates([int(i) for i in indices], self.per_example, generator)
        images, labels = images.to(device), labels.to(device)
        t1 = time.perf_counter()
        k, per = len(indices), self.per_example
        if per > 1 and k:
            losses = score_candidates(model, images, labels, autocast=autocast).cpu()  # .cpu() waits for the device
            keep = choose_candidates(losses.view(k, per), self.choice, generator)
            self._costs["candidate_forward_examples"] += k * per
            self._costs["candidate_forward_seconds"] += time.perf_counter() - t1
        else:
            keep = torch.zeros(k, dtype=torch.int64)
        self._costs["candidate_copies"] += k
        self._costs["candidate_augment_seconds"] += t1 - t0
        rows = (torch.arange(k) * per + keep).to(images.device)
        return images[rows], labels[rows]

    def pop_costs(self) -> Dict[str, float]:
        """The costs since the last call: copies made, forward examples and seconds of the
        scoring passes, seconds spent drawing candidates; the counters restart at zero."""
        costs, self._costs = self._costs, self._zero_costs()
        return costs
