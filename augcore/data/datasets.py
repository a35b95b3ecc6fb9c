"""Image classification data sets read from their standard on-disk formats, by name.

:func:`load_dataset` looks the name up in :data:`DATASETS`, the registry that the formats of
``augcore.data.formats`` fill (one module per format, each carrying its facts). Every format
returns an :class:`ImageDataset`: items are ``(image, label)`` with ``image`` an untransformed
uint8 tensor (C, H, W). Nothing is downloaded: a missing data set raises
:class:`DatasetNotFoundError` naming the folder searched, the files expected there and their format.

Where the files are looked for: ``root`` if given, else the environment variable
``AUGCORE_DATA``, else ``./data``. ``root`` may be either the folder holding the
extracted archive (``<root>/cifar-10-batches-py``) or the extracted folder itself.

Data-set options used by the coreset paper (Liu & Mirzasoleiman, 2022):

* ``imbalance_factor`` (training split only): the exponential long-tail profile of
  Cao et al. (LDAM, 2019), n_c = int(n_max * (1 / factor) ** (c / (C - 1))) for
  class c, where n_max is the smallest class size of the balanced set (5000 on
  CIFAR). The kept examples are chosen exactly as the LDAM code does: one
  ``numpy.random`` stream seeded with ``seed``, one shuffle of each class's indices
  in class order, the first n_c kept.
* ``label_noise`` (training split only): symmetric noise. Exactly
  ``round(rate * N)`` examples, chosen with ``seed``, get a label drawn uniformly
  from the *other* classes; ``clean_targets`` keeps the true labels. (Co-teaching /
  CRUST's code samples every label independently from the symmetric transition
  matrix, so its realised rate is ``rate`` only in expectation; the exact count here
  makes runs with equal seeds and rates comparable.)
"""
from __future__ import annotations

import copy
import warnings
from typing import List, Optional, Sequence

import numpy as np
import torch

from augcore.checks import check_bool, check_choice, check_int, check_number
from augcore.data.formats import DATASETS, DatasetFormat, DatasetNotFoundError, LoadOptions, default_root
from augcore.data.formats.base import PathLike, resolve_root
# _TensorImages / _FileImages: tests and benchmarks build ImageDatasets from them through this module
from augcore.data.image_dataset import ImageDataset, _FileImages, _TensorImages  # noqa: F401

__all__ = ["DATASETS", "DatasetFormat", "DatasetNotFoundError", "ImageDataset", "add_symmetric_label_noise",
           "default_root", "load_dataset", "long_tail_counts", "make_long_tailed"]


# --------------------------------------------------------------------------- options

def long_tail_counts(class_sizes: Sequence[int], imbalance_factor: float) -> List[int]:
    """LDAM's exponential profile: n_c = int(n_max * (1/factor) ** (c / (C - 1))), n_max = min class size."""
    imbalance_factor = check_number("imbalance_factor (largest / smallest class)", imbalance_factor, min=1.0)
    class_sizes = [check_int(f"class_sizes[{c}]", n, min=0) for c, n in enumerate(_as_list("class_sizes", class_sizes))]
    num_classes = len(class_sizes)
    if num_classes == 0:
        raise ValueError("class_sizes must name at least one class, got []")
    n_max = min(class_sizes)
    if n_max == 0:
        raise ValueError(f"class_sizes: class {class_sizes.index(0)} is empty; a long-tailed profile needs every class")
    if num_classes == 1:
        return [n_max]
    counts = [int(n_max * (1.0 / imbalance_factor) ** (c / (num_classes - 1.0))) for c in range(num_classes)]
    if counts[-1] == 0:  # LDAM's formula, kept exactly; but say so when it empties tail classes
        warnings.warn(f"imbalance_factor={imbalance_factor:g} leaves classes {[c for c, n in enumerate(counts) if n == 0]} "
                      f"with no examples (n_max = {n_max}); at most {n_max} keeps one example in every class",
                      stacklevel=2)
    return counts


def _as_list(name: str, value) -> list:
    items = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
        raise TypeError(f"{name} must be a list, got {value!r} ({type(value).__name__})")
    return list(items)


def _check_dataset(dataset) -> None:
    if not isinstance(dataset, ImageDataset):
        raise TypeError(f"dataset must be an augcore ImageDataset, got {type(dataset).__name__}")


def make_long_tailed(dataset: ImageDataset, imbalance_factor: float, seed: int = 0) -> ImageDataset:
    """The long-tailed subset of ``dataset`` (LDAM's selection procedure, see the module docstring)."""
    _check_dataset(dataset)
    imbalance_factor = check_number("imbalance_factor (largest / smallest class)", imbalance_factor, min=1.0)
    seed = check_int("seed", seed, min=0, max=2 ** 32 - 1)
    targets = dataset.targets.numpy()
    sizes = [int((targets == c).sum()) for c in range(dataset.num_classes)]
    if min(sizes) == 0:
        raise ValueError(f"{dataset.name}: class {sizes.index(0)} is empty; a long-tailed profile needs every class")
    rng = np.random.RandomState(seed)
    keep = []
    for c, n_c in enumerate(long_tail_counts(sizes, imbalance_factor)):
        idx = np.where(targets == c)[0]
        rng.shuffle(idx)
        keep.append(idx[:n_c])
    return dataset.subset(torch.from_numpy(np.concatenate(keep)))


def add_symmetric_label_noise(dataset: ImageDataset, rate: float, seed: int = 0) -> ImageDataset:
    """A view whose labels are corrupted symmetrically; ``clean_targets`` keeps the true ones."""
    _check_dataset(dataset)
    rate = check_number("label_noise", rate, min=0.0, max=1.0)
    seed = check_int("seed", seed, min=0)
    if dataset.num_classes < 2:
        raise ValueError("label noise needs at least two classes")
    if dataset._clean_targets is not None:
        raise ValueError(f"{dataset.name} already carries label noise")
    n = len(dataset)
    gen = torch.Generator().manual_seed(seed)
    flipped = torch.randperm(n, generator=gen)[: int(round(rate * n))]
    # an offset in [1, C-1] added modulo C gives a uniform draw over the other classes
    offsets = torch.randint(1, dataset.num_classes, (flipped.numel(),), generator=gen)
    noisy = dataset.targets.clone()
    noisy[flipped] = (noisy[flipped] + offsets) % dataset.num_classes
    view = copy.copy(dataset)
    view._clean_targets = dataset.targets
    view.targets = noisy
    return view


def load_dataset(name: str, root: Optional[PathLike] = None, *, train: bool = True, seed: int = 0,
                 imbalance_factor: Optional[float] = None, label_noise: float = 0.0,
                 image_size: Optional[int] = None, split_seed: int = 0, test_fraction: float = 0.2) -> ImageDataset:
    """Loads a data set by name (one of :data:`DATASETS`).

    ``seed`` drives the long-tail subsampling and the label noise; ``split_seed`` and
    ``test_fraction`` the deterministic train/test split of sets shipped without one
    (digits, a flat class-folder tree). ``image_size`` is the decode size of the
    formats that take one (class folders: default 224; Tiny-ImageNet: 64). The long tail and the
    label noise apply to the training split only; the test split stays clean and
    balanced.
    """
    check_choice("dataset name", name, sorted(DATASETS))
    data_format = DATASETS[name]
    train = check_bool("train", train)
    seed = check_int("seed", seed, min=0, max=2 ** 32 - 1)
    if imbalance_factor is not None:
        imbalance_factor = check_number("imbalance_factor (largest / smallest class)", imbalance_factor, min=1.0)
    label_noise = check_number("label_noise", label_noise, min=0.0, max=1.0)
    if image_size is not None:
        image_size = check_int("image_size", image_size, min=1)
        if not data_format.resizable:
            resizable = sorted(n for n, f in DATASETS.items() if f.resizable)
            raise ValueError(f"image_size applies to the formats decoded at a chosen size ({', '.join(resizable)}) "
                             f"only; {name} has a fixed size")
    split_seed = check_int("split_seed", split_seed, min=0, max=2 ** 32 - 1)
    test_fraction = check_number("test_fraction", test_fraction, min=0.0, max=1.0, min_inclusive=False,
                                 max_inclusive=False)
    options = LoadOptions(image_size=min(data_format.image_size) if image_size is None else image_size,
                          split_seed=split_seed, test_fraction=test_fraction)
    dataset = data_format.load(resolve_root(root), train, options)
    if train and imbalance_factor is not None:
        dataset = make_long_tailed(dataset, imbalance_factor, seed)
    if train and label_noise:
        dataset = add_symmetric_label_noise(dataset, label_noise, seed)
    return dataset
