"""What both callbacks share: the training view and the Trainer's re-selection engine.

The callbacks drive a ``GivenSelectorPolicy`` (``augcore.train.policies``) exactly as the
``Trainer`` drives its policy: ``begin_epoch`` re-selects when due (statistics from a
``StatsProvider``, the selector, the ``SelectionHistory``, the timings) and ``log_columns``
gives the selection columns of the Trainer's log row. The view the policy updates is the
one ``AugmentedSubsetDataset`` the framework loads from, changed in place.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Union

import torch

from augcore.checks import check_int
from augcore.data import AugmentedSubsetDataset
from augcore.data.transforms import eval_transform, strong_transform, weak_transform
from augcore.selection import Selection, build_selector
from augcore.selection.base import Selector
from augcore.train.config import AugmentConfig
from augcore.train.policies import PolicyContext, SelectionEvent, empty_selection
from augcore.train.policies.builtin import GivenSelectorPolicy
from augcore.train.stats import StatsProvider
from augcore.train.strategy import SingleProcess

Transform = Callable[[torch.Tensor], torch.Tensor]


class _FrameworkStats(StatsProvider):
    """The Trainer's statistics provider for a model the framework owns: the model and device
    are bound at each re-selection (a framework may move the model after the callback exists)."""

    def __init__(self, inference_set, labels: torch.Tensor, num_classes: int, *, batch_size: int, num_workers: int,
                 classifier: Optional[str]):
        super().__init__(None, inference_set, labels, num_classes, strategy=SingleProcess(), batch_size=batch_size,
                         device=torch.device("cpu"), num_workers=num_workers)
        self.kwargs["classifier"] = classifier  # passed on to collect_stats with batch_size, device, num_workers

    def bind(self, model: torch.nn.Module, device: torch.device) -> None:
        self.model = model
        self.kwargs["device"] = device


class Reselector:
    """Owns the ``AugmentedSubsetDataset`` a framework trains on and refreshes its
    selection from the model every ``every`` epochs, with the Trainer's policy engine.

    Args:
      train_set: an augcore ``ImageDataset`` (``augcore.data.load_dataset``), no transform.
      selector: a name for ``augcore.selection.build_selector`` ("coreset", "random",
        ...) with ``selector_options``, or a ready ``Selector``.
      every: re-select at epochs 0, R, 2R, ... (R = ``every``).
      strong: the strong augmentation of the copies (a preset name for
        ``augcore.data.transforms.strong_transform``, or a transform); ``weak`` the
        originals' (default ``weak_transform``); ``inference_set`` what the selection
        pass reads (default: ``train_set`` under ``eval_transform``).
      copies, weighting, placement, train_on: as ``AugmentedSubsetDataset``.
      batch_size, num_workers, classifier: passed to ``collect_stats``.
      seed: the selector's seed (each re-selection derives its own from the epoch).
    """

    def __init__(self, train_set, *, selector: Union[str, Selector] = "coreset", every: int = 1,
                 strong: Union[str, Transform] = "autoaugment", weak: Optional[Transform] = None,
                 inference_set=None, copies: int = 1, weighting: str = "unit", placement: str = "append",
                 train_on: str = "full", batch_size: int = 512, num_workers: int = 0,
                 classifier: Optional[str] = None, seed: int = 0, **selector_options: Any):
        self.every = check_int("every", every, min=1)
        if isinstance(selector, str):
            self.selector = build_selector(selector, **selector_options)
        elif selector_options:
            raise TypeError(f"selector options {sorted(selector_options)} apply to a selector name only; "
                            "configure the Selector object you passed instead")
        elif not callable(getattr(selector, "select", None)):
            raise TypeError(f"selector must be a name or an object with select(stats, epoch, seed), got "
                            f"{type(selector).__name__}")
        else:
            self.selector = selector
        strong = strong_transform(strong, train_set) if isinstance(strong, str) else strong
        if train_on == "selection":
            raise ValueError("train_on='selection' trains on the selection alone, which does not exist before the "
                             "first selection; use 'full' or 'random_subset'")
        weak = weak or weak_transform(train_set)
        self.train_set = train_set
        self.dataset = AugmentedSubsetDataset(train_set, None, weak=weak, strong=strong, copies=copies,
                                              weighting=weighting, placement=placement, train_on=train_on)
        self.inference_set = inference_set if inference_set is not None else train_set.with_transform(
            eval_transform(train_set))
        self._stats = _FrameworkStats(self.inference_set, train_set.targets, train_set.num_classes,
                                      batch_size=batch_size, num_workers=num_workers, classifier=classifier)
        self._weak, self._strong = weak, strong
        self.seed = seed
        self._initial: Optional[Selection] = None
        self.policy: Optional[GivenSelectorPolicy] = None   # built at the first epoch, when the model is known
        self.selections: List[Selection] = []
        self.rows: List[Dict[str, Any]] = []   # per epoch: the selection columns of the Trainer's log row
        self._event: Optional[SelectionEvent] = None
        self._updates_before = 0

    def start_with(self, selection: Selection) -> None:
        """Trains on ``selection`` until the first re-selection (the Hugging Face placeholder)."""
        self.dataset.set_selection(selection)
        self._initial = selection

    def due(self, epoch: int) -> bool:
        return epoch % self.every == 0

    def begin_epoch(self, model: torch.nn.Module, epoch: int,
                    device: Union[str, torch.device]) -> Optional[SelectionEvent]:
        """The policy's ``begin_epoch``: at epochs 0, R, 2R, ... one eval pass over
        ``inference_set`` and the selector, and the training view switches to the result."""
        policy = self._policy(model, torch.device(device))
        self._updates_before = policy.history.num_updates
        self._event = policy.begin_epoch(epoch)
        if self._event is not None:
            self.selections.append(policy.selection)
        return self._event

    def end_epoch(self, epoch: int) -> Dict[str, Any]:
        """The Trainer's selection columns for ``epoch`` (appended to ``rows``, with the epoch)."""
        if self.policy is None:
            raise RuntimeError("end_epoch before begin_epoch: the callback saw no epoch start")
        current = self.policy.end_epoch(epoch)
        if current is None:   # nothing augmented this epoch (no placeholder, not yet selected)
            current = empty_selection(self.policy.name, epoch)
        reselected = self.policy.history.num_updates > self._updates_before
        row = {"epoch": epoch, **self.policy.log_columns(self._event, current, reselected)}
        self._event = None
        self.rows.append(row)
        return row

    def _policy(self, model: torch.nn.Module, device: torch.device) -> GivenSelectorPolicy:
        self._stats.bind(model, device)
        if self.policy is None:
            ctx = PolicyContext(dataset=self.train_set, make_view=self._update_view,
                                strong_view=self.train_set.with_transform(self._strong), weak=self._weak,
                                model=model, stats=self._stats, augment=AugmentConfig(reselect_every=self.every),
                                seed=self.seed, device=device, strategy=self._stats.strategy)
            self.policy = GivenSelectorPolicy(ctx, self.selector, initial=self._initial)
        self.policy.ctx.model, self.policy.ctx.device = model, device
        return self.policy

    def _update_view(self, selection: Optional[Selection], originals: Optional[torch.Tensor]) -> AugmentedSubsetDataset:
        """The policy's view factory: the framework loads from one data set, so it changes in place.
        ``originals`` is always None: the policy's ``train_on`` is full (the data set applies its own)."""
        self.dataset.set_selection(selection)
        return self.dataset
