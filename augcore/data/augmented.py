"""The training view that adds strongly augmented copies of a selected subset.

Rows are the kept originals (weak augmentation) followed by ``copies`` strongly
augmented copies of every selected example. The strong transform is drawn anew at
every access, so each epoch sees fresh copies: the released code's scheme
(tianyu139/data-efficient-augmentation: r = 1 copy re-drawn every epoch, unit
weights on copies appended to the full data). The coreset paper's form, r copies
each weighted gamma_j / r, is ``copies=r, weighting="gamma"``.

The three settings of the coreset paper (Liu & Mirzasoleiman, 2022):

* coreset + its augmentations: ``train_on="selection"`` (originals carry the
  coreset weights, as when training on the coreset itself);
* full data + augmented coreset: ``train_on="full"`` (the default);
* random subset + augmented coreset: ``train_on="random_subset"`` with
  ``random_subset_indices``.

``placement="inplace"`` instead replaces each selected original by its strong
copy (no rows are added), as intensive-augmentation phases do over the whole set.
"""
from __future__ import annotations

import numbers
from typing import Callable, Optional, Protocol, Sequence, Union

import torch
from torch.utils.data import Dataset

from augcore.checks import check_choice, check_count_or_fraction, check_indices, check_int
from augcore.data.datasets import ImageDataset

WEIGHTINGS = ("unit", "gamma")
PLACEMENTS = ("append", "inplace")
TRAIN_ON = ("full", "selection", "random_subset")

Transform = Callable[[torch.Tensor], torch.Tensor]


class WeightedIndices(Protocol):
    """What the view augments: dataset indices and their weights (an ``augcore.selection.Selection``
    has both; the data layer needs nothing else of it)."""

    indices: torch.Tensor
    weights: torch.Tensor


def _check_indices(indices, n: int, what: str) -> torch.Tensor:
    """1-D, integer, distinct, in [0, n) (the base data set's size)."""
    return check_indices(what, indices, size=n, unique=True)


def random_subset_indices(dataset: ImageDataset, size: Union[int, float], seed: int = 0) -> torch.Tensor:
    """Sorted indices of a uniform random subset: ``size`` examples when an integer (Python or
    numpy, or a 0-d integer tensor), or that fraction of the data set (rounded to the nearest
    count) when a float of any kind (``0.5``, ``np.float32(0.5)``, ``torch.tensor(0.5)``) in (0, 1]."""
    n = len(dataset)
    size = check_count_or_fraction("size", size, max_count=n)
    count = size if isinstance(size, int) else int(round(size * n))
    seed = check_int("seed", seed, min=0)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[:count].sort().values


def stratified_indices(labels, fraction: float, generator: torch.Generator, *,
                       leave_one_out: bool = False) -> torch.Tensor:
    """Sorted rows of about ``fraction`` of every class of ``labels``: ``round(fraction * n_c)`` of
    class c (at least one), drawn class by class in label order with ``generator``.
    ``leave_one_out`` takes at most ``n_c - 1`` (none of a class of one), so every class keeps an
    example outside the sample (a held-out split that leaves every class trainable)."""
    labels = torch.as_tensor(labels).cpu()
    picked = []
    for c in torch.unique(labels):
        rows = (labels == c).nonzero().flatten()
        take = max(1, int(round(fraction * rows.numel())))
        if leave_one_out:
            take = min(take, rows.numel() - 1)
        if take > 0:
            picked.append(rows[torch.randperm(rows.numel(), generator=generator)[:take]])
    return torch.cat(picked).sort().values if picked else torch.empty(0, dtype=torch.int64)


class AugmentedSubsetDataset(Dataset):
    """Items ``(image, label, weight, dataset_index, is_augmented)``.

    ``image`` is ``weak(raw)`` for an original and ``strong(raw)`` for a copy (strong
    presets include the weak crop/flip). ``weight`` is a Python float: 1 for
    originals (the selection weight when ``train_on="selection"``), and for copies
    gamma_j / copies (``weighting="gamma"``, with gamma_j the selection's weights) or
    1 (``"unit"``). ``selection`` is anything with ``indices`` and ``weights`` (a ``Selection``);
    ``selection=None`` gives the originals alone.
    """

    def __init__(self, base: ImageDataset, selection: Optional[WeightedIndices], *, weak: Transform, strong: Transform,
                 copies: int = 1, weighting: str = "unit", placement: str = "append", train_on: str = "full",
                 random_subset_indices: Optional[Union[torch.Tensor, Sequence[int]]] = None):
        # an ImageDataset, or anything shaped like one (the generation pipeline's synthetic-augmented data)
        if not all(hasattr(base, attr) for attr in ("image", "targets", "__len__")):
            raise TypeError(f"base must be an augcore ImageDataset (with .image(i) and .targets), "
                            f"got {type(base).__name__}")
        check_choice("weighting", weighting, WEIGHTINGS)
        check_choice("placement", placement, PLACEMENTS)
        check_choice("train_on", train_on, TRAIN_ON)
        copies = check_int("copies", copies, min=1)
        for name, transform in (("weak", weak), ("strong", strong)):
            if not callable(transform):
                raise TypeError(f"{name} must be a callable transform (image -> image), got {type(transform).__name__}")
        if placement == "inplace" and copies != 1:
            raise ValueError(f"placement='inplace' replaces each selected example by one strong copy; copies={copies} "
                             "needs placement='append'")
        if (train_on == "random_subset") != (random_subset_indices is not None):
            raise ValueError("random_subset_indices must be given exactly when train_on='random_subset'")
        self.base = base
        self.weak = weak
        self.strong = strong
        self.copies = copies
        self.weighting = weighting
        self.placement = placement
        self.train_on = train_on
        self._subset = (None if random_subset_indices is None
                        else _check_indices(random_subset_indices, len(base), "random_subset_indices"))
        self.selection: Optional[WeightedIndices] = None
        self.set_selection(selection)

    def set_selection(self, selection: Optional[WeightedIndices]) -> None:
        """Swaps the selected subset (its ``indices`` and ``weights``); the base data are untouched."""
        n = len(self.base)
        if selection is None:
            if self.train_on == "selection":
                raise ValueError("train_on='selection' needs a selection to train on")
            sel_idx = torch.empty(0, dtype=torch.int64)
            sel_w = torch.empty(0, dtype=torch.float32)
        else:
            if not (hasattr(selection, "indices") and hasattr(selection, "weights")):
                raise TypeError(f"selection must have indices and weights (an augcore Selection) or be None, got "
                                f"{type(selection).__name__}")
            sel_idx = _check_indices(selection.indices, n, "selection.indices")
            sel_w = torch.as_tensor(selection.weights).detach()
            if not (sel_w.is_floating_point() or sel_w.dtype in (torch.int32, torch.int64)):
                raise TypeError(f"selection.weights must be real numbers, got {sel_w.dtype}")
            sel_w = sel_w.to("cpu", torch.float32).reshape(-1)
            if sel_w.numel() != sel_idx.numel():
                raise ValueError(f"selection has {sel_idx.numel()} indices but {sel_w.numel()} weights")
            if sel_w.numel() and (not bool(torch.isfinite(sel_w).all()) or float(sel_w.min()) < 0):
                raise ValueError("selection.weights must be finite and non-negative")

        if self.train_on == "full":
            orig_idx = torch.arange(n)
            orig_w = torch.ones(n)
        elif self.train_on == "selection":
            orig_idx, orig_w = sel_idx, sel_w.clone()
        else:
            orig_idx = self._subset
            orig_w = torch.ones(orig_idx.numel())
        orig_strong = torch.zeros(orig_idx.numel(), dtype=torch.bool)

        if self.placement == "inplace":
            row_of = torch.full((n,), -1, dtype=torch.int64)
            row_of[orig_idx] = torch.arange(orig_idx.numel())
            rows = row_of[sel_idx]
            if bool((rows < 0).any()):
                raise ValueError(f"placement='inplace' needs every selected example among the training originals; "
                                 f"{int((rows < 0).sum())} of {rows.numel()} are not (train_on={self.train_on!r})")
            orig_strong[rows] = True
            if self.weighting == "gamma":
                orig_w[rows] = sel_w
            copy_idx = torch.empty(0, dtype=torch.int64)
            copy_w = torch.empty(0)
        else:
            copy_idx = sel_idx.repeat_interleave(self.copies)
            copy_w = (sel_w / self.copies if self.weighting == "gamma"
                      else torch.ones(sel_idx.numel())).repeat_interleave(self.copies)

        self.selection = selection
        self.num_originals = orig_idx.numel()
        self.num_copies = copy_idx.numel()
        self.dataset_indices = torch.cat([orig_idx, copy_idx])
        self.weights = torch.cat([orig_w, copy_w]).to(torch.float32)
        self.is_augmented = torch.cat([orig_strong, torch.ones(copy_idx.numel(), dtype=torch.bool)])
        self.targets = self.base.targets[self.dataset_indices]

    def __len__(self) -> int:
        return self.dataset_indices.numel()

    def __getitem__(self, row: int):
        if not isinstance(row, numbers.Integral) or isinstance(row, bool):
            raise TypeError(f"row must be an integer, got {row!r} ({type(row).__name__})")
        if not -len(self) <= row < len(self):
            raise IndexError(f"row {row} out of range for {len(self)} rows")
        index = int(self.dataset_indices[row])
        augmented = bool(self.is_augmented[row])
        image = self.base.image(index)
        image = self.strong(image) if augmented else self.weak(image)
        return image, int(self.targets[row]), float(self.weights[row]), index, augmented

    def __repr__(self) -> str:
        return (f"AugmentedSubsetDataset({self.base.name}, originals={self.num_originals}, copies={self.num_copies}, "
                f"train_on={self.train_on}, placement={self.placement}, weighting={self.weighting})")
