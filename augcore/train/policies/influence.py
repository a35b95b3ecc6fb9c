"""The influence policy: augment the examples whose (up-weighted) augmentation is predicted
to lower the validation loss most (``augcore.influence.InfluenceSelector``).

The policy supplies what the selector needs: a validation split held out of training
(``augment.selector.val_fraction`` of the training set, drawn once from the run seed,
stratified by class; those examples are neither trained on nor selected), and the
classifier's last layer (``model.classifier``, else the last ``nn.Linear``). Every R
epochs it runs one inference pass over the candidates and one over the validation split.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Optional

import torch
from torch import nn

from augcore.config import ConfigError
from augcore.influence.selector import InfluenceSelector
from augcore.selection.base import InferenceStats, Selection
from augcore.train.policies.base import SelectionPolicy, construct, register_policy, selector_options_dataclass

_SKIP = ("weight", "bias", "val_stats", "budget", "variants", "dtype")


def classifier_layer(model: nn.Module) -> nn.Linear:
    """``model.classifier`` when it is an ``nn.Linear``, else the model's last ``nn.Linear``."""
    layer = getattr(model, "classifier", None)
    if isinstance(layer, nn.Linear):
        return layer
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"augment.mode=influence needs a final nn.Linear classifier; {type(model).__name__} has none")
    return linears[-1]


def stratified_rows(labels: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """About ``fraction`` of every class (at least one example of each class with two or more), sorted."""
    picked = []
    for c in torch.unique(labels):
        rows = (labels == c).nonzero().flatten()
        take = min(rows.numel() - 1, max(1, int(round(fraction * rows.numel()))))
        if take > 0:
            picked.append(rows[torch.randperm(rows.numel(), generator=generator)[:take]])
    return torch.cat(picked).sort().values if picked else torch.empty(0, dtype=torch.int64)


@register_policy("influence")
class InfluencePolicy(SelectionPolicy):
    __doc__ = __doc__
    Options = selector_options_dataclass("influence", InfluenceSelector, skip=_SKIP,
                                         extra=(("val_fraction", float, 0.1),))

    def __init__(self, ctx, options):
        from augcore.selection._common import cpu_generator

        labels = torch.as_tensor(ctx.dataset.targets).to(torch.int64).cpu()
        self.val_rows = stratified_rows(labels, options.val_fraction, cpu_generator(ctx.seed, 0, "influence_val"))
        keep = torch.ones(labels.numel(), dtype=torch.bool)
        keep[self.val_rows] = False
        self.train_rows = keep.nonzero().flatten()
        super().__init__(ctx, options)

    @classmethod
    def check_options(cls, options) -> None:
        if not 0.0 < options.val_fraction < 1.0:
            raise ConfigError(f"augment.selector.val_fraction: must lie in (0, 1), got {options.val_fraction}")
        kwargs = {f.name: getattr(options, f.name) for f in fields(options) if f.name != "val_fraction"}
        # the selector's own checks, on a stand-in validation set of one example
        stand_in = InferenceStats(logits=torch.zeros(1, 2), labels=torch.zeros(1, dtype=torch.int64),
                                  losses=torch.zeros(1), indices=torch.zeros(1, dtype=torch.int64),
                                  embeddings=torch.zeros(1, 1))
        construct("augment.selector", InfluenceSelector, weight=torch.zeros(2, 1), bias=None, val_stats=stand_in,
                  budget=0.5, **kwargs)

    def candidate_rows(self) -> Optional[torch.Tensor]:
        rows = super().candidate_rows()
        if rows is None:
            return self.train_rows
        return rows[~torch.isin(rows, self.val_rows)]

    def select(self, epoch: int, stats: InferenceStats) -> Selection:
        val_stats = self.ctx.stats.model_stats(self.val_rows)
        layer = classifier_layer(self.ctx.model)
        kwargs = {f.name: getattr(self.options, f.name) for f in fields(self.options) if f.name != "val_fraction"}
        selector = InfluenceSelector(layer.weight, layer.bias, val_stats, float(self.ctx.augment.fraction), **kwargs)
        return selector.select(stats, epoch=epoch, seed=self.ctx.seed)

    def originals(self) -> Optional[torch.Tensor]:
        """The validation split is held out of the training data."""
        base = super().originals()
        if base is None:
            return self.train_rows
        return base[~torch.isin(base, self.val_rows)]
