"""``fixed``: one saved ``Selection`` augmented for the whole run (``augment.selection_file``).

This is the one-shot baseline of Kuchnik & Smith (*Efficient augmentation via data
subsampling*, ICLR 2019; the coreset paper's reference [21]): a model is trained to the
end, its highest-loss examples are picked once, and a new run augments exactly those::

    augcore train --config digits_demo --mode none --out runs/first
    augcore select --checkpoint runs/first/checkpoint.pt --method max_loss --fraction 0.1 --out maxloss.pt
    augcore train --config digits_demo --mode fixed --set augment.selection_file=maxloss.pt

(the coreset paper's own max-loss baseline instead re-selects every R epochs: ``mode: max_loss``).
Any file written by ``augcore select`` or ``Selection.save`` works; it is checked against the
training set when the run starts, and its weights are used as ``augment.weighting`` says.
"""
from __future__ import annotations

from typing import Any, Optional

from augcore.config import ConfigError
from augcore.selection.base import Selection
from augcore.train.policies.base import SelectionPolicy, register_policy

__all__ = ["FixedSelectionPolicy", "load_selection_file"]


def load_selection_file(path: str, dataset: Any) -> Selection:
    """The ``Selection`` saved at ``path``, checked against ``dataset`` (its size and classes);
    every problem is a ``ConfigError`` naming ``augment.selection_file``."""
    from augcore.checks import CorruptFileError, check_indices

    key = "augment.selection_file"
    try:
        selection = Selection.load(path)
    except FileNotFoundError:
        raise ConfigError(f"{key}: no such file {path!r} (write one with `augcore select --out FILE`)") from None
    except (CorruptFileError, OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{key}: {path!r} is not a readable Selection file: {exc}") from None
    n, classes = len(dataset), int(dataset.num_classes)
    try:
        indices = check_indices("indices", selection.indices, size=n, unique=True)
    except (TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"{key}: {path!r} does not fit this training set of {n} examples: {exc}") from None
    if selection.weights.numel() != indices.numel():
        raise ConfigError(f"{key}: {path!r} has {indices.numel()} indices but {selection.weights.numel()} weights")
    # a coreset's per-example assignment and per-class budgets tell the size of the data set it was made on
    if selection.assignment is not None and selection.assignment.numel() != n:
        raise ConfigError(f"{key}: {path!r} was selected from {selection.assignment.numel()} examples, but this "
                          f"training set has {n}")
    if selection.budgets is not None and selection.budgets.numel() != classes:
        raise ConfigError(f"{key}: {path!r} has budgets for {selection.budgets.numel()} classes, but this training "
                          f"set has {classes}")
    selection.indices = indices
    return selection


@register_policy("fixed")
class FixedSelectionPolicy(SelectionPolicy):
    """The Selection in ``augment.selection_file``, read once and augmented every epoch."""

    selects = False
    needs_model_stats = False

    def __init__(self, ctx, options):
        self._loaded: Optional[Selection] = None
        super().__init__(ctx, options)
        self.history.update(self.selection)
        self.selection_epochs.append(0)

    def initial_selection(self) -> Optional[Selection]:
        if self._loaded is None:
            self._loaded = load_selection_file(self.ctx.augment.selection_file, self.ctx.dataset)
        # a copy: the view and the logs never change the loaded file's tensors
        return Selection(indices=self._loaded.indices.clone(), weights=self._loaded.weights.clone(),
                         method=f"fixed:{self._loaded.method}", assignment=self._loaded.assignment,
                         budgets=self._loaded.budgets, epoch=self._loaded.epoch, info=dict(self._loaded.info))
