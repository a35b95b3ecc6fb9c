"""The influence policy: augment the examples whose (up-weighted) augmentation is predicted
to lower the validation loss most (``augcore.influence.InfluenceSelector``).

The policy supplies what the selector needs: a validation split held out of training
(``augment.policy_options.val_fraction`` of the training set, drawn once from the run seed,
stratified by class; those examples are neither trained on nor selected), and the
classifier's final ``nn.Linear`` (the layer whose output is the logits, found once by
``augcore.models.find_classifier``). Every R
epochs it runs one inference pass over the candidates and one over the validation split.

``augment.policy_options.augmenter`` also *learns* the augmentation: after each selection, E is
trained for ``augmenter_epochs`` on the selected images to minimise their augmented copies'
predicted influence on the validation loss (``augcore.influence.learner.train_augmenter``,
the classifier frozen), and the strong copies become E's transform of the weakly augmented
image instead of the ``augment.strong`` preset. E continues training across selections.

* ``paper``: the paper's E (convolutions, FC, tanh -> tau in R^128) through a frozen,
  WGAN-GP pre-trained generator G read from ``augment.policy_options.generator`` (a file of
  ``augcore.influence.generator.save_generator``); Adam lr 0.01, betas (0.9, 0.99), no
  magnitude penalty (App. B).
* ``light`` (``learned`` is the same): ``augcore.influence.ImageAugmenter``, a 2-conv
  encoder with bounded heads, Adam lr 1e-3 and the magnitude penalty
  ``augmenter_regularisation``; no G needed.

``augmenter_lr`` overrides the variant's learning rate. ``augment_all: true`` augments
every training example (as the paper does) instead of the ``augment.fraction`` with the
best influence scores.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Optional

import torch
from torch import nn

from augcore.config import ConfigError
from augcore.data.augmented import stratified_indices
from augcore.influence.selector import InfluenceSelector
from augcore.models.outputs import find_classifier
from augcore.seeds import cpu_generator, derive_seed
from augcore.selection.base import InferenceStats, Selection
from augcore.train.policies.base import SelectionPolicy, construct, register_policy, selector_options_dataclass

_SKIP = ("weight", "bias", "val_stats", "budget", "variants", "dtype")
AUGMENTERS = ("none", "light", "learned", "paper")   # learned: light's earlier name


class LearnedAugmentation:
    """A strong transform: the weak transform, then the learned augmenter E's transform of it."""

    def __init__(self, weak, augmenter: nn.Module):
        self.weak = weak
        self.augmenter = augmenter

    def __call__(self, image) -> torch.Tensor:
        x = self.weak(image)
        with torch.no_grad():
            out, _ = self.augmenter(x.unsqueeze(0))
        return out[0]

    def __repr__(self) -> str:
        return f"LearnedAugmentation({self.weak!r}, {type(self.augmenter).__name__})"


@register_policy("influence")
class InfluencePolicy(SelectionPolicy):
    __doc__ = __doc__
    Options = selector_options_dataclass("influence", InfluenceSelector, skip=_SKIP,
                                         extra=(("val_fraction", float, 0.1), ("augmenter", str, "none"),
                                                ("augmenter_epochs", int, 5),
                                                ("augmenter_regularisation", float, 1.0),
                                                ("augmenter_lr", Optional[float], None),
                                                ("generator", Optional[str], None), ("augment_all", bool, False)))
    policy_only_options = ("val_fraction", "augmenter", "augmenter_epochs", "augmenter_regularisation",
                           "augmenter_lr", "generator", "augment_all")

    def __init__(self, ctx, options):
        labels = torch.as_tensor(ctx.dataset.targets).to(torch.int64).cpu()
        self.val_rows = stratified_indices(labels, options.val_fraction, cpu_generator(ctx.seed, 0, "influence_val"),
                                           leave_one_out=True)
        if self.val_rows.numel() == 0:   # every class has a single example: nothing can be held out
            raise ValueError(f"augment.policy_options.val_fraction: the validation split is empty: each of the "
                             f"{torch.unique(labels).numel()} classes of the {labels.numel()} training examples has "
                             "one example, and one per class stays in training; use more labelled examples")
        keep = torch.ones(labels.numel(), dtype=torch.bool)
        keep[self.val_rows] = False
        self.train_rows = keep.nonzero().flatten()
        self.augmenter = self._new_augmenter(ctx, options) if options.augmenter != "none" else None
        self._classifier: Optional[str] = None   # the final linear layer's name, found at the first selection
        super().__init__(ctx, options)

    @classmethod
    def check_options(cls, options) -> None:
        if not 0.0 < options.val_fraction < 1.0:
            raise ConfigError(f"augment.policy_options.val_fraction: must lie in (0, 1), got {options.val_fraction}")
        if options.augmenter not in AUGMENTERS:
            raise ConfigError(f"augment.policy_options.augmenter: must be one of {AUGMENTERS}, "
                              f"got {options.augmenter!r}")
        if options.augmenter == "paper" and not options.generator:
            raise ConfigError("augment.policy_options.generator: augmenter 'paper' needs the file of a pre-trained G "
                              "(augcore.influence.generator.pretrain_generator + save_generator)")
        if options.augmenter_lr is not None and not options.augmenter_lr > 0:
            raise ConfigError(f"augment.policy_options.augmenter_lr: must be > 0, got {options.augmenter_lr}")
        if options.augmenter_epochs < 1:
            raise ConfigError(f"augment.policy_options.augmenter_epochs: must be >= 1, got {options.augmenter_epochs}")
        if options.augmenter_regularisation < 0:
            raise ConfigError(f"augment.policy_options.augmenter_regularisation: must be >= 0, "
                              f"got {options.augmenter_regularisation}")
        kwargs = cls.selector_kwargs(options)
        # the selector's own checks, on a stand-in validation set of one example
        stand_in = InferenceStats(logits=torch.zeros(1, 2), labels=torch.zeros(1, dtype=torch.int64),
                                  losses=torch.zeros(1), indices=torch.zeros(1, dtype=torch.int64),
                                  embeddings=torch.zeros(1, 1))
        construct("augment.policy_options", InfluenceSelector, weight=torch.zeros(2, 1), bias=None, val_stats=stand_in,
                  budget=0.5, **kwargs)

    def candidate_rows(self) -> Optional[torch.Tensor]:
        rows = super().candidate_rows()
        if rows is None:
            return self.train_rows
        return rows[~torch.isin(rows, self.val_rows)]

    @classmethod
    def selector_kwargs(cls, options) -> dict:
        return {f.name: getattr(options, f.name) for f in fields(options) if f.name not in cls.policy_only_options}

    def select(self, epoch: int, stats: InferenceStats) -> Selection:
        val_stats = self.ctx.stats.model_stats(self.val_rows)
        layer = self.classifier_layer()
        budget = 1.0 if self.options.augment_all else float(self.ctx.augment.fraction)
        selector = InfluenceSelector(layer.weight, layer.bias, val_stats, budget,
                                     **self.selector_kwargs(self.options))
        selection = selector.select(stats, epoch=epoch, seed=self.ctx.seed)
        if self.augmenter is not None and len(selection):
            self._learn_augmenter(selector, stats, selection, epoch)
        return selection

    def classifier_layer(self) -> nn.Module:
        """The model's final linear layer, found on one training image the first time."""
        if self._classifier is None:
            x = self.ctx.stats.inference_set[int(self.train_rows[0])][0].unsqueeze(0).to(self.ctx.device)
            self._classifier = find_classifier(self.ctx.model, x)
        return self.ctx.model.get_submodule(self._classifier)

    # -------------------------------------------------------------- the learned augmentation
    @staticmethod
    def _new_augmenter(ctx, options):
        from augcore.influence.generator import GeneratorAugmenter, load_generator
        from augcore.influence.transforms import ImageAugmenter

        shape = (ctx.dataset.channels, *ctx.dataset.image_size)
        if options.augmenter != "paper":
            return ImageAugmenter(*shape)
        generator = load_generator(options.generator)
        if tuple(generator.shape) != shape:
            raise ConfigError(f"augment.policy_options.generator: {options.generator} transforms images of shape "
                              f"{tuple(generator.shape)}, the data set's are {shape}")
        return GeneratorAugmenter(generator)

    def _optimiser_settings(self) -> dict:
        from augcore.influence.generator import PAPER_ESTIMATOR_OPTIMISER

        if self.options.augmenter == "paper":
            settings = {"lr": PAPER_ESTIMATOR_OPTIMISER["lr"], "betas": PAPER_ESTIMATOR_OPTIMISER["betas"],
                        "regularisation": 0.0}
        else:
            settings = {"lr": 1e-3, "regularisation": self.options.augmenter_regularisation}
        if self.options.augmenter_lr is not None:
            settings["lr"] = self.options.augmenter_lr
        return settings

    def _learn_augmenter(self, selector, stats: InferenceStats, selection: Selection, epoch: int) -> None:
        from augcore.influence.learner import train_augmenter

        _, _, influence = selector.scores(stats, seed=self.ctx.seed)   # the fitted s_val, on these stats
        rows = selection.indices.cpu()
        images = torch.stack([self.ctx.stats.inference_set[int(i)][0] for i in rows]).to(self.ctx.device)
        labels = torch.as_tensor(self.ctx.dataset.targets)[rows].to(self.ctx.device)
        model = self.ctx.model
        was_training = model.training
        model.eval()   # a frozen classifier: no BatchNorm statistics move while E learns
        self.augmenter.to(self.ctx.device)
        try:
            train_augmenter(self.augmenter, model, influence, images, labels, epochs=self.options.augmenter_epochs,
                            **self._optimiser_settings(),
                            seed=derive_seed(self.ctx.seed, epoch, "augmenter") % (2 ** 31), progress=False)
        finally:
            model.train(was_training)
            self.augmenter.cpu().eval()

    def view_options(self):
        if self.augmenter is None:
            return super().view_options()
        return {"strong_override": LearnedAugmentation(self.ctx.weak, self.augmenter)}

    def state_dict(self):
        state = super().state_dict()
        if self.augmenter is not None:
            state["augmenter"] = {k: v.clone() for k, v in self.augmenter.state_dict().items()}
        return state

    def load_state_dict(self, state) -> None:
        if self.augmenter is not None:
            self.augmenter.load_state_dict(state["augmenter"])
        super().load_state_dict(state)

    def originals(self) -> Optional[torch.Tensor]:
        """The validation split is held out of the training data."""
        base = super().originals()
        if base is None:
            return self.train_rows
        return base[~torch.isin(base, self.val_rows)]
