"""Learning-rate schedules with linear warm-up, and the refinement phase's plan.

The LR is a pure function of (epoch, iteration within the epoch), so a resumed run
needs only its epoch to continue exactly. Step (multistep) decays apply at epoch
boundaries (like ``torch.optim.lr_scheduler.MultiStepLR`` stepped per epoch, as the
coreset paper's released code and the He et al. setups do); cosine and warm-up are
updated every iteration.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import torch

from augcore.checks import check_choice, check_int, check_int_list, check_number

SCHEDULES = ("multistep", "cosine", "constant")
REFINEMENT_MODES = ("extra", "last")


class LRSchedule:
    """``lr(epoch, step, steps_in_epoch)`` for a run whose schedule spans ``epochs``.

    * multistep: ``base_lr * gamma ** (number of milestones <= epoch)``; milestones
      are epochs (default: 50% and 75% of ``epochs``).
    * cosine: ``min_lr + (base_lr - min_lr) * (1 + cos(pi * t)) / 2``, t the fraction
      of post-warm-up training done (per iteration).
    * constant: ``base_lr``.

    Warm-up ramps linearly over ``warmup_epochs`` (may be fractional), per
    iteration: the i-th iteration of warm-up uses ``base_lr * (progress after it) /
    warmup_epochs``, so the first LR is small but not zero. Progress is measured in
    epochs, so epochs of different lengths (a selection that changes size) are fine.
    """

    def __init__(self, name: str, base_lr: float, epochs: int, *, warmup_epochs: float = 0.0,
                 milestones: Optional[Sequence[int]] = None, gamma: float = 0.1, min_lr: float = 0.0):
        check_choice("schedule", name, SCHEDULES)
        epochs = check_int("epochs", epochs, min=1)
        base_lr = check_number("base_lr (learning rate)", base_lr, min=0.0, min_inclusive=False)
        warmup_epochs = check_number("warmup_epochs", warmup_epochs, min=0.0, max=epochs, max_inclusive=False)
        # gamma in (0, 1]: a step decay multiplies the LR; 0 or less would stop or reverse training
        gamma = check_number("gamma (LR decay factor)", gamma, min=0.0, max=1.0, min_inclusive=False)
        min_lr = check_number("min_lr", min_lr, min=0.0, max=base_lr)
        milestones = [] if milestones is None else check_int_list("milestones", milestones)
        if len(milestones) == 0:
            milestones = [m for m in (int(0.5 * epochs), int(0.75 * epochs)) if m > 0]
        if any(not (0 < m < epochs) for m in milestones) or list(milestones) != sorted(milestones):
            raise ValueError(f"milestones must be increasing epochs in (0, {epochs}), got {list(milestones)}")
        self.name, self.base_lr, self.epochs = name, base_lr, epochs
        self.warmup_epochs = warmup_epochs
        self.milestones = milestones
        self.gamma, self.min_lr = gamma, min_lr

    def lr(self, epoch: int, step: int = 0, steps_in_epoch: int = 1) -> float:
        steps_in_epoch = check_int("steps_in_epoch", steps_in_epoch, min=1)
        step = check_int("step", step, min=0, max=steps_in_epoch - 1)
        epoch = min(check_int("epoch", epoch, min=0), self.epochs - 1)
        start = epoch + step / steps_in_epoch
        if start < self.warmup_epochs:
            return self.base_lr * min(1.0, (start + 1.0 / steps_in_epoch) / self.warmup_epochs)
        if self.name == "constant":
            return self.base_lr
        if self.name == "multistep":
            return self.base_lr * self.gamma ** sum(1 for m in self.milestones if epoch >= m)
        t = (start - self.warmup_epochs) / (self.epochs - self.warmup_epochs)
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))

    def final_lr(self) -> float:
        """The LR of the final epoch (its first iteration, for cosine)."""
        return self.lr(self.epochs - 1)

    def state_dict(self) -> dict:
        return {"name": self.name, "base_lr": self.base_lr, "epochs": self.epochs,
                "warmup_epochs": self.warmup_epochs, "milestones": list(self.milestones),
                "gamma": self.gamma, "min_lr": self.min_lr}


@dataclass(frozen=True)
class RefinementPlan:
    """Which epochs refine (weak-only data, small LR), after He et al., and how strong the augmentation
    of the epochs before is.

    ``mode="extra"`` (the paper's main setting): N scheduled epochs of intensive
    augmentation, then M more; ``"last"`` (the fixed-total ablation): the last M of
    the N scheduled epochs refine. ``lr`` starts refinement: given, else the step
    schedule's final-epoch LR, else (cosine, whose final LR is ~0) ``cosine_lr``; ``schedule``
    runs it over the M epochs: ``constant`` (the paper's main setting), or ``cosine`` / ``multistep``
    (``LRSchedule`` over M epochs from ``lr``; the paper's ablation "Learning Rate while refining"
    starts refinement at a large LR that decays). ``weaken_epochs`` W: the last W epochs before
    refinement have strength (first refinement epoch - epoch) / (W + 1), falling linearly from 1
    towards 0 (the ablation "From Augmented Data to Clean Data Gradually"); refinement has strength 0.
    """

    enabled: bool
    scheduled_epochs: int  # N: epochs the LR schedule spans
    refine_epochs: int     # M
    mode: str = "extra"
    lr: float = 0.0
    schedule: str = "constant"
    milestones: Tuple[int, ...] = ()
    gamma: float = 0.1
    min_lr: float = 0.0
    weaken_epochs: int = 0
    _lr_schedule: Optional[LRSchedule] = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        check_choice("refinement mode", self.mode, REFINEMENT_MODES)
        check_int("scheduled_epochs", self.scheduled_epochs, min=1)
        check_int("refine_epochs", self.refine_epochs, min=0)
        check_number("refinement lr", self.lr, min=0.0)
        check_choice("refinement schedule", self.schedule, SCHEDULES)
        if self.enabled and self.refine_epochs < 1:
            raise ValueError(f"refinement needs epochs >= 1, got {self.refine_epochs}")
        if self.enabled and self.mode == "last" and self.refine_epochs >= self.scheduled_epochs:
            raise ValueError(f"refinement 'last' mode needs M={self.refine_epochs} < N={self.scheduled_epochs}")
        intensive = self.total_epochs - (self.refine_epochs if self.enabled else 0)
        check_int("weaken_epochs", self.weaken_epochs, min=0, max=intensive - 1)
        if self.enabled and self.schedule != "constant":
            object.__setattr__(self, "_lr_schedule", LRSchedule(
                self.schedule, self.lr, self.refine_epochs, milestones=list(self.milestones), gamma=self.gamma,
                min_lr=self.min_lr))

    @classmethod
    def build(cls, schedule: LRSchedule, enabled: bool, epochs: int, mode: str = "extra",
              lr: Optional[float] = None, cosine_lr: float = 1e-4, *, refine_schedule: str = "constant",
              milestones: Sequence[int] = (), gamma: float = 0.1, min_lr: float = 0.0,
              weaken_epochs: int = 0) -> "RefinementPlan":
        if not isinstance(schedule, LRSchedule):
            raise TypeError(f"schedule must be an LRSchedule, got {type(schedule).__name__}")
        if lr is None:
            lr = cosine_lr if schedule.name == "cosine" else schedule.final_lr()
        lr = check_number("refinement lr", lr, min=0.0, min_inclusive=not enabled)
        return cls(bool(enabled), schedule.epochs, check_int("refinement epochs", epochs, min=0), mode, lr,
                   refine_schedule, tuple(check_int_list("refinement milestones", milestones)), gamma, min_lr,
                   weaken_epochs)

    @property
    def total_epochs(self) -> int:
        return self.scheduled_epochs + (self.refine_epochs if self.enabled and self.mode == "extra" else 0)

    @property
    def first_refine_epoch(self) -> Optional[int]:
        if not self.enabled:
            return None
        return self.total_epochs - self.refine_epochs

    def is_refining(self, epoch: int) -> bool:
        first = self.first_refine_epoch
        return first is not None and epoch >= first

    def refine_lr(self, epoch: int, step: int = 0, steps_in_epoch: int = 1) -> float:
        """The LR of a refinement epoch's ``step``: ``lr``, or the refinement schedule's from ``lr``."""
        first = self.first_refine_epoch
        if first is None or epoch < first:
            raise ValueError(f"epoch {epoch} is not a refinement epoch (refinement starts at {first})")
        if self._lr_schedule is None:
            return self.lr
        return self._lr_schedule.lr(epoch - first, step, steps_in_epoch)

    def strength(self, epoch: int) -> float:
        """The strong augmentation's strength in ``epoch``: 1, falling linearly over the last
        ``weaken_epochs`` epochs before refinement (or before the end of training), 0 in refinement."""
        epoch = check_int("epoch", epoch, min=0)
        if self.is_refining(epoch):
            return 0.0
        end = self.first_refine_epoch if self.enabled else self.total_epochs
        if epoch < end - self.weaken_epochs:
            return 1.0
        return (end - epoch) / (self.weaken_epochs + 1)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    lr = check_number("lr", lr, min=0.0)
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(f"optimizer must be a torch optimizer, got {type(optimizer).__name__}")
    for group in optimizer.param_groups:
        group["lr"] = lr
