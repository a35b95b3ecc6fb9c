"""What a selection policy is, what it is given, and how policies are registered.

A policy decides *when* to select and *what* to augment: it owns its selector, the
``SelectionHistory`` and the updates of the training view. The loop calls, per epoch
of the intensive phase::

    event = policy.begin_epoch(epoch)        # may re-select; returns timings or None
    for batch: batch = policy.augment_batch(batch)   # per-step policies only
    row.update(policy.end_epoch(epoch))      # what was augmented, for the logs

and ``state_dict``/``load_state_dict`` for exact resume. A new policy subclasses
``SelectionPolicy`` (or ``SelectorPolicy`` when it wraps a ``Selector``), declares its
typed options as a dataclass, and registers with ``@register_policy("name")``; the
loop does not change.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, Optional, Tuple, Type

import torch

from augcore.config import ConfigError, build
from augcore.registry import Registry
from augcore.seeds import derive_seed
from augcore.selection.base import InferenceStats, Selection
from augcore.train.config import AugmentConfig
from augcore.train.stats import StatsProvider
from augcore.train.strategy import Strategy

# name -> policy class; registering sets the class's ``name``
POLICIES = Registry("selection policy", name_attribute="name")


def register_policy(name: str) -> Callable[[Type["SelectionPolicy"]], Type["SelectionPolicy"]]:
    """Class decorator: makes a policy selectable as ``augment.mode: name``."""
    return POLICIES.register(name)


@dataclass
class NoOptions:
    """A policy without options: ``augment.policy_options`` must be empty."""


def policy_options(mode: str, raw: Optional[Dict[str, Any]]) -> Any:
    """The typed options of policy ``mode`` from ``augment.policy_options``; errors name its keys."""
    if mode not in POLICIES:
        raise ConfigError(f"augment.mode: must be one of {tuple(POLICIES)}, got {mode!r}")
    cls = POLICIES[mode]
    options = build(cls.Options, raw, "augment.policy_options")
    cls.check_options(options)
    return options


@dataclass
class SelectionEvent:
    """One re-selection: seconds in all (inference pass + selector) and in the selector."""
    epoch: int
    seconds: float
    selector_seconds: float
    inference_seconds: float


@dataclass
class PolicyContext:
    """What the loop hands a policy (built once per run by ``Trainer``)."""
    dataset: Any                     # the training ImageDataset
    make_view: Callable[..., Any]    # (selection, originals rows or None, strong=None) -> view
    strong_view: Any                 # dataset under the strong transform (per-step policies)
    weak: Any                        # the weak transform (raw image -> tensor)
    model: torch.nn.Module           # the unwrapped model
    stats: StatsProvider             # where statistics come from
    augment: AugmentConfig
    seed: int
    device: torch.device
    strategy: Strategy               # rank, world size, collectives
    autocast: Callable[[], Any] = contextlib.nullcontext   # the loop's autocast context (per-step policies)


def empty_selection(method: str, epoch: int = 0) -> Selection:
    return Selection(indices=torch.empty(0, dtype=torch.int64), weights=torch.empty(0), method=method, epoch=epoch)


class SelectionPolicy:
    """Base policy: nothing selected, nothing augmented (subclasses override ``select``).

    Re-selection happens at epochs 0, R, 2R, ... of the intensive phase; with
    ``train_on: random_subset`` and ``random_subset_redraw`` the random training subset
    is redrawn at the same epochs (the coreset paper's released protocol).
    """

    name: ClassVar[str] = "base"
    Options: ClassVar[type] = NoOptions
    needs_model_stats: ClassVar[bool] = True   # False: labels are enough (no inference pass)
    selects: ClassVar[bool] = True             # False: a fixed selection (none, full)

    def __init__(self, ctx: PolicyContext, options: Any):
        self.ctx = ctx
        self.options = options
        a = ctx.augment
        from augcore.selection import SelectionHistory

        self.history = SelectionHistory(len(ctx.dataset))
        self.candidates = self._candidate_copies()
        self._epoch, self._batches = 0, 0
        self.subset = self._draw_subset(0) if a.train_on == "random_subset" else None
        self.selection: Optional[Selection] = self.initial_selection()
        self.view = self.make_view()
        self.selection_epochs: list = []

    @classmethod
    def check_options(cls, options: Any) -> None:
        """Range checks of the typed options (raise ConfigError naming augment.policy_options.<key>)."""

    @property
    def needs_embeddings(self) -> bool:
        """Whether ``select`` reads the statistics' embeddings (an inference pass skips them otherwise)."""
        return True

    # ------------------------------------------------------------------ hooks for subclasses
    def initial_selection(self) -> Optional[Selection]:
        """The selection before the first re-selection (None: nothing augmented yet)."""
        if self.ctx.augment.train_on == "selection":
            return empty_selection(self.name)
        return None

    def select(self, epoch: int, stats: InferenceStats) -> Selection:
        raise NotImplementedError(f"policy {self.name!r} re-selects (selects=True) but defines no select()")

    def augment_batch(self, x, y, w, idx) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-step augmentation; returns the batch and the dataset indices of the copies added."""
        return x, y, w, idx[:0]

    # ------------------------------------------------------------------ the loop's calls
    def is_due(self, epoch: int) -> bool:
        return self.selects and epoch % self.ctx.augment.reselect_every == 0

    def make_view(self, selection: Optional[Selection] = None):
        """The training view of ``selection`` (default: the current one) over ``originals()``."""
        return self.ctx.make_view(self.selection if selection is None else selection, self.originals(),
                                  **self.view_options())

    def view_options(self) -> Dict[str, Any]:
        """Overrides of the view's settings (e.g. ``strong``, a learned augmentation)."""
        if self.candidates is not None:  # the copies are made in finish_batch; the loader's rows hold their place
            return {"strong_override": self.ctx.weak}
        return {}

    def finish_batch(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                     is_augmented: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The batch and its loss targets (class ids, or soft labels (B, C)), with the strong
        copies the data loader cannot make put in: with ``augment.strong: wu2020`` each copy
        row becomes the kept one of ``augment.candidates`` scored candidates
        (``augcore.train.candidates``), with its Mixup soft label."""
        if self.candidates is None or not bool(is_augmented.any()):
            return x, y
        rows = is_augmented.nonzero().squeeze(1)
        stream = f"wu2020/{self.ctx.strategy.rank}/{self._batches}"
        self._batches += 1
        generator = torch.Generator().manual_seed(derive_seed(self.ctx.seed, self._epoch, stream))
        copies, soft = self.candidates.make(self.ctx.model, idx[rows].tolist(), generator, device=x.device,
                                            autocast=self.ctx.autocast)
        x = x.clone()
        x[rows.to(x.device)] = copies.to(x.dtype)
        targets = torch.nn.functional.one_hot(y, self.ctx.dataset.num_classes).float()
        targets[rows.to(y.device)] = soft.to(targets.device)
        return x, targets

    def epoch_costs(self) -> Dict[str, float]:
        """Per-epoch costs for the log row (the candidate scoring's, with ``augment.strong: wu2020``)."""
        return {} if self.candidates is None else self.candidates.pop_costs()

    def originals(self) -> Optional[torch.Tensor]:
        """Dataset rows trained on as originals (None: every example)."""
        return self.subset

    def candidate_rows(self) -> Optional[torch.Tensor]:
        """Dataset rows selection may pick from (None: all)."""
        a = self.ctx.augment
        if a.train_on == "random_subset" and a.select_from == "subset":
            return self.subset
        return None

    def begin_epoch(self, epoch: int) -> Optional[SelectionEvent]:
        a = self.ctx.augment
        self._epoch, self._batches = epoch, 0
        redraw = (a.train_on == "random_subset" and a.random_subset_redraw and epoch > 0
                  and epoch % a.reselect_every == 0)
        if redraw:
            self.subset = self._draw_subset(epoch)
            if not self.selects:  # a fixed selection (full) follows the training subset
                self.selection = self.initial_selection()
        if not self.is_due(epoch):
            if redraw:
                self.view = self.make_view()
            return None
        t0 = time.perf_counter()
        pass_seconds = self.ctx.stats.pass_seconds
        rows = self.candidate_rows()
        stats = (self.ctx.stats.model_stats(rows, embeddings=self.needs_embeddings) if self.needs_model_stats
                 else self.ctx.stats.label_stats(rows))
        t1 = time.perf_counter()
        self.selection = self.select(epoch, stats)
        t2 = time.perf_counter()
        self.view = self.make_view()
        # the paper's Fig. 7: how much of the selection the max-loss set of the same size shares
        max_loss = self._max_loss_rows(stats, len(self.selection)) if self.needs_model_stats else None
        self.history.update(self.selection, max_loss)
        self.selection_epochs.append(epoch)
        # inference = the model passes run (none for label-only or in-epoch statistics)
        return SelectionEvent(epoch, time.perf_counter() - t0, t2 - t1, self.ctx.stats.pass_seconds - pass_seconds)

    def end_epoch(self, epoch: int) -> Optional[Selection]:
        """The selection whose copies were trained on this epoch (None: none)."""
        return self.selection

    def log_columns(self, event: Optional[SelectionEvent], current: Selection, reselected: bool) -> Dict[str, Any]:
        """The log row's selection columns: the timings of ``event`` (None: no re-selection this
        epoch), the size and weights of ``current`` (the epoch's selection) and the history's
        coverage and overlaps (the overlaps only when the history gained a selection this epoch)."""
        from augcore.train.metrics import summarize_weights

        return {"selection_time": event.seconds if event else 0.0,
                "selector_time": event.selector_seconds if event else 0.0,
                "inference_time": event.inference_seconds if event else 0.0,
                "selection_size": len(current), **summarize_weights(current.weights),
                "never_selected_fraction": self.history.never_selected_fraction(),
                "overlap_previous": self.history.overlap_with_previous() if reselected else None,
                "overlap_max_loss": self.history.overlap_with_max_loss() if reselected else None}

    def state_dict(self) -> Dict[str, Any]:
        return {"selection": None if self.selection is None else self.selection.to_state(),
                "subset": self.subset, "history": self.history.to_json(),
                "selection_epochs": list(self.selection_epochs)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        from augcore.selection import SelectionHistory

        self.selection = None if state["selection"] is None else Selection.from_state(state["selection"])
        self.subset = state.get("subset", self.subset)
        self.history = SelectionHistory.from_json(state["history"])
        self.selection_epochs = list(state["selection_epochs"])
        self.view = self.make_view()

    # ------------------------------------------------------------------ helpers
    def _candidate_copies(self):
        transforms = self.ctx.augment.transforms
        if transforms.strong != "wu2020":
            return None
        from augcore.data.wu2020 import Wu2020Augment
        from augcore.train.candidates import CandidateCopies

        return CandidateCopies(Wu2020Augment(self.ctx.dataset, num_comp=transforms.wu2020_ops),
                               transforms.candidates, transforms.candidate_choice)

    def _draw_subset(self, epoch: int) -> torch.Tensor:
        from augcore.data import random_subset_indices
        from augcore.selection import budget_from_fraction

        a = self.ctx.augment
        fraction = a.fraction if a.random_subset_fraction is None else a.random_subset_fraction
        size = max(1, budget_from_fraction(fraction, len(self.ctx.dataset)))
        return random_subset_indices(self.ctx.dataset, size, seed=derive_seed(self.ctx.seed, epoch, "random_subset"))

    @staticmethod
    def _max_loss_rows(stats: InferenceStats, size: int) -> Optional[torch.Tensor]:
        if size == 0 or len(stats) == 0:
            return None
        top = torch.sort(stats.losses.float().cpu(), descending=True, stable=True).indices[:size]
        return stats.indices.cpu()[top]


def selector_options_dataclass(name: str, selector_cls: type, skip: Tuple[str, ...] = ("fraction",),
                               extra: Tuple[Tuple[str, type, Any], ...] = ()) -> type:
    """A dataclass of ``selector_cls``'s keyword options (typed by its annotations), plus ``extra``
    fields (name, type, default): the typed ``augment.policy_options`` of a selector-backed policy."""
    import typing

    hints = typing.get_type_hints(selector_cls.__init__)
    fields = []
    for pname, param in inspect.signature(selector_cls.__init__).parameters.items():
        if pname == "self" or pname in skip or param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            continue
        if param.default is inspect.Parameter.empty:
            continue
        fields.append((pname, hints.get(pname, Any), dataclasses.field(default=param.default)))
    fields += [(n, t, dataclasses.field(default=d)) for n, t, d in extra]
    return dataclasses.make_dataclass(f"{name.title().replace('_', '')}Options", fields)


def construct(key: str, cls: type, **kwargs: Any) -> Any:
    """``cls(**kwargs)``, turning its argument errors into ConfigErrors under ``key``."""
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        first = message.split(" ", 1)[0].rstrip(":")
        raise ConfigError(f"{key}.{message}" if first in kwargs else f"{key}: {message}") from None
