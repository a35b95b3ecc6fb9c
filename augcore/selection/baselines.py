"""The baselines: random, max-loss (coresets paper); misclassified, high-loss (targeted
synthetic augmentation paper). All give unit weights, as the released code does."""
from __future__ import annotations

import torch

from augcore.checks import check_bool, check_fraction
from augcore.ops.budgets import split_budget
from augcore.seeds import cpu_generator
from augcore.selection._common import budget_from_fraction, require_nonempty_classes, top_per_class
from augcore.selection.base import InferenceStats
from augcore.selection.selector import SELECTORS, BaseSelector, Picks


@SELECTORS.register("random")
class RandomSelector(BaseSelector):
    """Uniformly random subset of ``round(fraction * N)`` examples, unit weights.

    The released coresets code draws uniformly over all N (the default);
    ``stratified=True`` draws the same fraction from every class (proportional
    split with exact total, see ``augcore.split_budget``). Draws depend on
    (seed, epoch) and are made on the CPU, so every device gives the same subset.
    Indices come back in the order of the stats rows.
    """

    needs_model_stats = False

    def __init__(self, fraction: float, *, stratified: bool = False):
        self.fraction = check_fraction("fraction", fraction)
        self.stratified = check_bool("stratified", stratified)

    def pick(self, stats: InferenceStats, *, epoch: int, seed: int) -> Picks:
        n = len(stats)
        budget = budget_from_fraction(self.fraction, n)
        keys = torch.rand(n, generator=cpu_generator(seed, epoch, self.method), dtype=torch.float64)
        if self.stratified:
            sizes = require_nonempty_classes(stats, "RandomSelector(stratified=True)")
            budgets = split_budget(sizes, budget, "proportional")
            rows = top_per_class(keys, stats.labels.to(torch.int64).cpu(), budgets)
        else:
            rows = torch.sort(keys, descending=True, stable=True).indices[:budget]
        rows = torch.sort(rows).values
        return Picks(rows.to(stats.labels.device),
                     info={"requested_fraction": self.fraction, "budget": budget, "stratified": self.stratified})


@SELECTORS.register("max_loss")
class MaxLossSelector(BaseSelector):
    """Global top-``round(fraction * N)`` by loss (not per class), unit weights.

    The Kuchnik & Smith baseline as released with the coresets code; the trainer
    re-selects it at every step (its ``select`` is cheap: one sort). Ties go to the
    smaller row; indices come back in descending order of loss.
    """

    def __init__(self, fraction: float):
        self.fraction = check_fraction("fraction", fraction)

    def pick(self, stats: InferenceStats, *, epoch: int, seed: int) -> Picks:
        budget = budget_from_fraction(self.fraction, len(stats))
        rows = torch.sort(stats.losses, descending=True, stable=True).indices[:budget]
        return Picks(rows, info={"requested_fraction": self.fraction, "budget": budget})


@SELECTORS.register("high_loss")
class HighLossSelector(BaseSelector):
    """Per class, the ``fraction`` of its examples with the highest loss, unit weights.

    The "high loss" ablation of the targeted synthetic augmentation paper: the
    same per-class view as the slow-learnable selector, without clustering.
    Budgets per class are proportional to class size with an exact total of
    ``round(fraction * N)``. Unlike ``MaxLossSelector`` (global), every class
    contributes. Ties go to the smaller row; indices grouped by class, loss
    descending inside each class.
    """

    def __init__(self, fraction: float):
        self.fraction = check_fraction("fraction", fraction)

    def pick(self, stats: InferenceStats, *, epoch: int, seed: int) -> Picks:
        sizes = require_nonempty_classes(stats, "HighLossSelector")
        budget = budget_from_fraction(self.fraction, len(stats))
        budgets = split_budget(sizes, budget, "proportional")
        rows = top_per_class(stats.losses, stats.labels.to(torch.int64), budgets)
        return Picks(rows, budgets=budgets, info={"requested_fraction": self.fraction, "budget": budget})


@SELECTORS.register("misclassified")
class MisclassifiedSelector(BaseSelector):
    """Every example the model currently misclassifies (argmax of the logits, first
    maximum on ties, differs from the label), unit weights, in the order of the stats rows.

    The "misclassified" ablation of the targeted synthetic augmentation paper; its
    size is an outcome, reported as ``info["fraction"]``.
    """

    def pick(self, stats: InferenceStats, *, epoch: int, seed: int) -> Picks:
        wrong = stats.logits.argmax(1) != stats.labels
        return Picks(wrong.nonzero().flatten())
