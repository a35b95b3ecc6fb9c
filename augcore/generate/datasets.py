"""Training sets for targeted synthetic augmentation: originals + synthetic copies, and
the paper's "Upsample" baseline (the selected images repeated so each appears k times).

Items are ``(image uint8 (C, H, W), label)`` like :class:`augcore.data.ImageDataset`, so
the trainer's transforms apply to originals and copies alike; ``with_transform`` works
the same way. ``source`` (the base index of each item) and ``is_synthetic`` say what each
item is. k counts the original (paper): k = 2 adds one copy per selected image.
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import torch
from torch.utils.data import Dataset

from augcore.checks import IndexOutOfRangeError, check_indices, check_int, check_int_list

from .driver import PAPER_STEPS_FOR_K
from .store import SyntheticStore


def _check_base(base) -> None:
    if not hasattr(base, "__len__") or getattr(base, "targets", None) is None:
        raise TypeError(f"base must be a data set with per-item labels in .targets (an ImageDataset), "
                        f"got {type(base).__name__}")


class _AppendedDataset(Dataset):
    """The base dataset followed by extra items, each tied to a base index."""

    def __init__(self, base, extra_sources: torch.Tensor, transform=None):
        _check_base(base)
        self.base = base
        self.transform = transform if transform is not None else getattr(base, "transform", None)
        base_targets = torch.as_tensor(base.targets, dtype=torch.int64)
        self.source = torch.cat([torch.arange(len(base), dtype=torch.int64), extra_sources])
        self.is_synthetic = torch.zeros(len(self.source), dtype=torch.bool)
        self.targets = base_targets[self.source]
        for attr in ("classes", "mean", "std", "name"):
            if hasattr(base, attr):
                setattr(self, attr, getattr(base, attr))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self):
        return self.base.image_size

    @property
    def channels(self) -> int:
        return self.base.channels

    def __len__(self) -> int:
        return len(self.source)

    def _base_image(self, index: int) -> torch.Tensor:
        return self.base.image(index) if hasattr(self.base, "image") else self.base[index][0]

    def image(self, index: int) -> torch.Tensor:
        """The raw uint8 (C, H, W) image of item ``index``, ignoring any transform."""
        return self._base_image(int(self.source[index]))

    def __getitem__(self, index: int):
        image = self.image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])

    def with_transform(self, transform):
        view = copy.copy(self)
        view.transform = transform
        return view


class UpsampledDataset(_AppendedDataset):
    """The paper's "Upsample" baseline: each selected image appears ``k`` times in all
    (the original plus k - 1 repeats); k = 2 is its best in the paper."""

    def __init__(self, base, indices, k: int = 2, transform=None):
        _check_base(base)
        k = check_int("k (appearances of each selected image, original included)", k, min=1)
        idx = check_indices("indices", indices, size=len(base)).unique()
        super().__init__(base, idx.repeat_interleave(k - 1), transform)
        self.k = k


def resolve_steps(available: Sequence[int], steps: Optional[Sequence[int]], k: Optional[int]) -> tuple:
    """Which kept steps make the copies: ``steps`` if given, else by ``k`` (the paper's
    choice for k = 2 and 5, or all stored steps when there are exactly k - 1), else all."""
    available = tuple(sorted(set(available)))
    if k is not None:
        k = check_int("k", k, min=1)
    if steps is not None:
        chosen = tuple(sorted(set(check_int_list("steps", steps, min=1))))
        if k is not None and len(chosen) != k - 1:
            raise ValueError(f"k = {k} needs k - 1 = {k - 1} steps, got {list(chosen)}")
    elif k is None:
        chosen = available
    elif len(available) == k - 1:
        chosen = available
    elif k in PAPER_STEPS_FOR_K and set(PAPER_STEPS_FOR_K[k]) <= set(available):
        chosen = PAPER_STEPS_FOR_K[k]
    else:
        raise ValueError(f"cannot choose k - 1 = {k - 1} steps from the stored {list(available)}; pass steps")
    missing = sorted(set(chosen) - set(available))
    if missing:
        raise ValueError(f"steps {missing} are not in the store (it has {list(available)})")
    return chosen


class SyntheticAugmentedDataset(_AppendedDataset):
    """The originals followed by the stored synthetic copies at the chosen steps.

    Every selected image must have a copy at every chosen step (a run that did not
    finish raises), so each selected image appears k = len(steps) + 1 times in all.
    """

    def __init__(self, base, store, steps: Optional[Sequence[int]] = None, k: Optional[int] = None, transform=None):
        _check_base(base)
        self.store = store if isinstance(store, SyntheticStore) else SyntheticStore(store)
        records = self.store.records()
        if not records:
            raise ValueError(f"{self.store.root} holds no synthetic images yet")
        self.steps = resolve_steps([r["step"] for r in records], steps, k)
        kept = [r for r in records if r["step"] in self.steps]
        by_step = {s: {r["source"] for r in kept if r["step"] == s} for s in self.steps}
        sources = set().union(*by_step.values())
        for s, have in by_step.items():
            if have != sources:
                raise ValueError(f"{self.store.root}: step {s} lacks copies of {len(sources - have)} selected images; "
                                 "finish the generation run (it resumes) before training")
        planned = (self.store.settings() or {}).get("num_sources")
        if isinstance(planned, int) and len(sources) != planned:  # whole units missing at every step
            raise ValueError(f"{self.store.root}: holds copies of {len(sources)} of the {planned} selected images its "
                             "store.json plans; finish the generation run (it resumes) before training")
        base_size = tuple(base.image_size) if hasattr(base, "image_size") else None
        for r in kept:
            if r["source"] >= len(base):
                raise IndexOutOfRangeError(f"{self.store.root}: copy of item {r['source']} but the dataset has "
                                           f"{len(base)} items")
            if base_size is not None and tuple(r["shape"][-2:]) != base_size:
                raise ValueError(f"{self.store.root}: copies are {r['shape']} but the dataset's images are {base_size}")
        super().__init__(base, torch.tensor([r["source"] for r in kept], dtype=torch.int64), transform)
        n = len(base)
        self.is_synthetic[n:] = True
        self.records = kept
        self.k = len(self.steps) + 1

    def image(self, index: int) -> torch.Tensor:
        n = len(self.base)
        if index < n:
            return self._base_image(index)
        return self.store.load_image(self.records[index - n])
