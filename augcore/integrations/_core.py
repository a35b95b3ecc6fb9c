"""What both callbacks share: the training view, the inference pass and the selector."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Union

import torch

from augcore.checks import check_int
from augcore.data import AugmentedSubsetDataset
from augcore.data.transforms import eval_transform, strong_transform, weak_transform
from augcore.selection import Selection, build_selector, collect_stats
from augcore.selection.base import Selector

Transform = Callable[[torch.Tensor], torch.Tensor]


class Reselector:
    """Owns the ``AugmentedSubsetDataset`` a framework trains on and refreshes its
    selection from the model every ``every`` epochs.

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
        self.dataset = AugmentedSubsetDataset(train_set, None, weak=weak or weak_transform(train_set), strong=strong,
                                              copies=copies, weighting=weighting, placement=placement,
                                              train_on=train_on)
        self.inference_set = inference_set if inference_set is not None else train_set.with_transform(
            eval_transform(train_set))
        self.collect_options: Dict[str, Any] = dict(batch_size=batch_size, num_workers=num_workers,
                                                   classifier=classifier, progress=False)
        self.seed = seed
        self.selections: List[Selection] = []

    def due(self, epoch: int) -> bool:
        return epoch % self.every == 0

    def reselect(self, model: torch.nn.Module, epoch: int, device: Union[str, torch.device]) -> Selection:
        """One eval pass over ``inference_set`` and the selector; the training view switches to the result."""
        embeddings = getattr(self.selector, "needs_embeddings", True)
        stats = collect_stats(model, self.inference_set, device=device, embeddings=embeddings,
                              **self.collect_options)
        selection = self.selector.select(stats, epoch=epoch, seed=self.seed)
        self.dataset.set_selection(selection)
        self.selections.append(selection)
        return selection
