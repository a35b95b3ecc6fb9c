"""The built-in selection policies: none, full, the selector-backed ones and the per-batch max-loss.

==================  ===========================================================================
``none``            no strong copies (weak augmentation only)
``full``            a strong copy of every training original
``coreset``         facility-location coreset of the gradient proxies every R epochs
``random``          uniform random subset every R epochs; labels only, no inference pass
``max_loss``        global top-B by loss every R epochs, unit weights (the coreset paper's baseline
                    as its released code selects it: ``utils/subset.py: get_maxloss_subset``)
``max_loss_batch``  the top-loss fraction of every batch, re-ranked at every step (Kuchnik & Smith)
``slow_learnable``  per-class 2-means, the slower-learnt cluster (targeted synthetic augmentation)
``misclassified``   every currently misclassified example
``high_loss``       per class, the highest-loss fraction
``influence``       lowest predicted validation-loss change (``augcore.train.policies.influence``)
==================  ===========================================================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, List, Optional, Tuple

import torch
import torch.nn.functional as F

from augcore.selection import (CoresetSelector, HighLossSelector, MaxLossSelector, MisclassifiedSelector,
                               RandomSelector, SlowLearnableSelector)
from augcore.selection.base import InferenceStats, Selection
from augcore.selection.inference import logits_of
from augcore.train.policies.base import (NoOptions, SelectionPolicy, construct, empty_selection, register_policy,
                                         selector_options_dataclass)


@register_policy("none")
class NoAugmentation(SelectionPolicy):
    """Weak augmentation only: the selection is always empty."""
    selects = False
    needs_model_stats = False

    def initial_selection(self) -> Optional[Selection]:
        return empty_selection("none")


@register_policy("full")
class FullAugmentation(SelectionPolicy):
    """A strong copy of every training original (of the current random subset, if any)."""
    selects = False
    needs_model_stats = False

    def initial_selection(self) -> Optional[Selection]:
        pool = self.subset if self.subset is not None else torch.arange(len(self.ctx.dataset))
        return Selection(indices=pool.clone(), weights=torch.ones(pool.numel()), method="full")


class SelectorPolicy(SelectionPolicy):
    """Runs a ``Selector`` every R epochs; its constructor's keyword options become the
    typed ``augment.policy_options`` options (``fraction`` comes from ``augment.fraction``)."""

    selector_cls: ClassVar[type]
    takes_fraction: ClassVar[bool] = True

    def __init__(self, ctx, options, selector=None):
        self.selector = selector if selector is not None else self.make_selector(ctx.augment.fraction, options)
        super().__init__(ctx, options)

    @classmethod
    def selector_kwargs(cls, options: Any) -> dict:
        return {k: v for k, v in vars(options).items() if k not in cls.policy_only_options}

    policy_only_options: ClassVar[Tuple[str, ...]] = ()

    @classmethod
    def make_selector(cls, fraction: float, options: Any):
        kwargs = cls.selector_kwargs(options)
        if cls.takes_fraction:
            kwargs["fraction"] = fraction
        return construct("augment.policy_options", cls.selector_cls, **kwargs)

    @classmethod
    def check_options(cls, options: Any) -> None:
        cls.make_selector(0.5, options)   # the selector's own argument checks, under augment.policy_options

    @property
    def needs_embeddings(self) -> bool:
        return getattr(self.selector, "needs_embeddings", True)

    def select(self, epoch: int, stats: InferenceStats) -> Selection:
        return self.selector.select(stats, epoch=epoch, seed=self.ctx.seed)


class GivenSelectorPolicy(SelectorPolicy):
    """A ``SelectorPolicy`` around a ready-made selector object (anything with ``select(stats,
    epoch, seed)``) instead of one built from ``augment.policy_options``: how the Lightning and Hugging
    Face callbacks (``augcore.integrations``) re-select with the Trainer's engine. ``initial`` is
    the selection before the first re-selection. Not registered: a config names its policy."""

    name = "selector"

    def __init__(self, ctx, selector, initial: Optional[Selection] = None):
        self._initial = initial
        super().__init__(ctx, NoOptions(), selector=selector)

    def initial_selection(self) -> Optional[Selection]:
        return self._initial

    @property
    def needs_model_stats(self) -> bool:
        return getattr(self.selector, "needs_model_stats", True)


def _selector_policy(name: str, selector_cls: type, *, takes_fraction: bool = True, doc: str) -> type:
    skip = ("fraction",) if takes_fraction else ()
    cls = type(f"{selector_cls.__name__.replace('Selector', '')}Policy", (SelectorPolicy,), {
        "__doc__": doc, "selector_cls": selector_cls, "takes_fraction": takes_fraction,
        "needs_model_stats": selector_cls.needs_model_stats,
        "Options": selector_options_dataclass(name, selector_cls, skip),
        "__module__": __name__})
    return register_policy(name)(cls)


@register_policy("coreset")
class CoresetPolicy(SelectorPolicy):
    """Facility-location coresets of the gradient proxies (``CoresetSelector``), every R epochs,
    shared out by class over the ranks of a DDP run.

    ``augment.policy_options.greedi: true`` solves each class with GreeDi (two-round distributed
    greedy) over the ranks of a DDP run, for classes too large for one machine's memory;
    each rank then contributes only its own shard of the statistics.
    """
    selector_cls = CoresetSelector
    Options = selector_options_dataclass("coreset", CoresetSelector)

    def select(self, epoch: int, stats: InferenceStats) -> Selection:
        return self.ctx.strategy.select_by_class(self.selector, stats, epoch=epoch, seed=self.ctx.seed)


RandomPolicy = _selector_policy("random", RandomSelector,
                                doc="Uniform random subset every R epochs (``stratified`` per class); "
                                    "reads labels only, so no inference pass is run.")
MaxLossPolicy = _selector_policy("max_loss", MaxLossSelector,
                                 doc="Global top-B examples by loss every R epochs, unit weights (the coreset "
                                     "paper's max-loss baseline as released).")
SlowLearnablePolicy = _selector_policy("slow_learnable", SlowLearnableSelector, takes_fraction=False,
                                       doc="Per-class 2-means on the model's outputs; the higher-loss cluster.")
MisclassifiedPolicy = _selector_policy("misclassified", MisclassifiedSelector, takes_fraction=False,
                                       doc="Every example the model misclassifies at the selection epoch.")
HighLossPolicy = _selector_policy("high_loss", HighLossSelector,
                                  doc="Per class, the highest-loss fraction (proportional budgets).")


@dataclass
class MaxLossBatchOptions:
    """No options: the fraction is ``augment.fraction`` of every batch."""


@register_policy("max_loss_batch")
class MaxLossBatchPolicy(SelectionPolicy):
    """Kuchnik & Smith's per-batch loss policy: at every step, a strong copy of the
    ``round(fraction * batch)`` highest-loss examples of the batch is appended. The
    ranking pass runs in train mode without gradients and without touching BatchNorm
    running statistics. The epoch's picks (their union) are logged as its selection."""

    Options = MaxLossBatchOptions
    selects = False

    def __init__(self, ctx, options):
        super().__init__(ctx, options)
        self._picked: List[torch.Tensor] = []

    def initial_selection(self) -> Optional[Selection]:
        return empty_selection(self.name)

    def begin_epoch(self, epoch: int):
        self._picked = []
        return super().begin_epoch(epoch)

    def augment_batch(self, x, y, w, idx):
        from augcore.train.sam import bn_stats_frozen

        k = int(round(self.ctx.augment.fraction * x.shape[0]))
        if k == 0:
            return x, y, w, idx[:0]
        model = self.ctx.model
        with torch.no_grad(), bn_stats_frozen(model), self.ctx.autocast():
            logits = logits_of(model(x))
        losses = F.cross_entropy(logits.float(), y, reduction="none")
        top = torch.sort(losses, descending=True, stable=True).indices[:k].cpu()
        picked = idx.cpu()[top]
        strong = torch.stack([self.ctx.strong_view[int(i)][0] for i in picked]).to(x.device)
        self._picked.append(picked)
        return (torch.cat([x, strong]), torch.cat([y, y[top.to(y.device)]]),
                torch.cat([w, torch.ones(k, device=w.device, dtype=w.dtype)]), picked)

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        # the saved selection is the last epoch's picks, a log record: the view never holds copies
        self.view = self.make_view(self.initial_selection())

    def end_epoch(self, epoch: int) -> Optional[Selection]:
        if not self._picked:
            return empty_selection(self.name, epoch)
        picked = torch.unique(torch.cat(self._picked))
        self.selection = Selection(indices=picked, weights=torch.ones(picked.numel()), method=self.name, epoch=epoch)
        self.history.update(self.selection)
        return self.selection
