"""Hugging Face ``transformers.Trainer``: re-select every R epochs and train on the augmented subset.

::

    from augcore.integrations.huggingface import AugcoreSelectionCallback

    select = AugcoreSelectionCallback(train_set, selector="coreset", fraction=0.3, every=2)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=select.dataset,
                                   data_collator=select.collate, callbacks=[select])
    trainer.train()

``collate`` turns a batch of training rows into ``{"pixel_values", "labels",
"sample_weights", "dataset_index", "is_augmented"}``: the model's ``forward``
accepts the keys it needs (or set ``remove_unused_columns=False`` and take
``**kwargs``) and returns the (weighted) loss. The selection pass calls
``model(pixel_values)``; a ``ModelOutput`` with ``logits`` is understood.

The ``Trainer`` fixes its steps per epoch from the data set's length before the
first callback runs, so the training view starts at its final length: a
placeholder selection (``k`` examples spread over the classes, ``k`` the
selector's budget) that the real selection replaces at ``on_train_begin``. The
selector must therefore return exactly ``round(fraction * n)`` examples
(coreset and random do); anything else raises.
"""
from __future__ import annotations

from typing import Any, Dict, List

import torch
import transformers

from augcore.integrations._core import Reselector
from augcore.selection import Selection, budget_from_fraction

__all__ = ["AugcoreSelectionCallback"]


class AugcoreSelectionCallback(transformers.TrainerCallback):
    """Trainer callback around ``augcore.integrations._core.Reselector``; takes its arguments
    (the selector needs a ``fraction``). ``dataset`` is the ``train_dataset`` to pass,
    ``collate`` the ``data_collator``, ``selections`` every selection made."""

    def __init__(self, train_set, **options: Any):
        self._reselector = Reselector(train_set, **options)
        fraction = getattr(self._reselector.selector, "fraction", None)
        if fraction is None:
            raise ValueError("the Hugging Face Trainer needs a fixed training-set length: use a selector with a "
                             "fraction (coreset, random)")
        n = len(train_set)
        self.budget = budget_from_fraction(fraction, n)
        self._reselector.start_with(_placeholder(train_set.targets, self.budget))

    @property
    def dataset(self):
        return self._reselector.dataset

    @property
    def selections(self) -> List[Selection]:
        return self._reselector.selections

    @property
    def rows(self) -> List[Dict[str, Any]]:
        """Per epoch, the selection columns of ``augcore.train.Trainer``'s log row."""
        return self._reselector.rows

    @staticmethod
    def collate(rows) -> Dict[str, torch.Tensor]:
        images, labels, weights, indices, augmented = zip(*rows)
        return {"pixel_values": torch.stack(images), "labels": torch.tensor(labels),
                "sample_weights": torch.tensor(weights, dtype=torch.float32),
                "dataset_index": torch.tensor(indices), "is_augmented": torch.tensor(augmented)}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._begin_epoch(model, int(round(state.epoch or 0)))

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        upcoming = int(round(state.epoch))
        self._reselector.end_epoch(upcoming - 1)
        if upcoming < args.num_train_epochs:
            self._begin_epoch(model, upcoming)

    def _begin_epoch(self, model: torch.nn.Module, epoch: int) -> None:
        if self._reselector.begin_epoch(model, epoch, next(model.parameters()).device) is None:
            return
        selection = self._reselector.selections[-1]
        if len(selection) != self.budget:
            raise ValueError(f"the selector returned {len(selection)} examples but the Trainer's steps per epoch "
                             f"were fixed for {self.budget}; use a selector that returns exactly its budget")


def _placeholder(targets: torch.Tensor, budget: int) -> Selection:
    """``budget`` examples spread over the classes like a proportional coreset (unit weights)."""
    order = torch.argsort(targets, stable=True)
    picks = order[torch.linspace(0, targets.numel() - 1, budget).round().long()] if budget else order[:0]
    picks = torch.unique(picks)
    if picks.numel() < budget:  # rounding collided: top up with unused examples
        unused = order[~torch.isin(order, picks)]
        picks = torch.cat([picks, unused[:budget - picks.numel()]])
    return Selection(indices=picks, weights=torch.ones(budget), method="placeholder")
