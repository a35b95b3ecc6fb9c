"""The base of every data-set format, and ``DATASETS``, the one registry of formats by name.

A format is a subclass of :class:`DatasetFormat` whose class attributes hold the data set's facts
(folder, image size, mean/std, classes, the papers' Cutout size, AutoAugment policy, flip rule) and
whose ``load`` reads one split; ``@DATASETS.register("name")`` makes it loadable by
``load_dataset("name")``, valid as ``data.name`` in a training config, and read by the transforms.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Type, Union

import numpy as np
import torch

from augcore.checks import check_int, check_number
from augcore.data.image_dataset import ImageDataset
from augcore.registry import Registry

PathLike = Union[str, os.PathLike]

# torchvision's AutoAugmentPolicy names
AUTOAUGMENT_POLICIES = ("cifar10", "imagenet", "svhn")

DATASETS = Registry("data set", name_attribute="name")


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not where they were looked for."""


def default_root() -> str:
    return os.environ.get("AUGCORE_DATA", "data")


def resolve_root(root: Optional[PathLike]) -> str:
    """``root``, else ``$AUGCORE_DATA``, else ``./data``."""
    if root is None:
        return default_root()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path or None, got {root!r} ({type(root).__name__})")
    return os.fspath(root)


@dataclass(frozen=True)
class LoadOptions:
    """The options of ``load_dataset`` a format's loader may read (each reads the ones it uses)."""

    image_size: int        # decode size of file-backed formats (the format's image_size unless given)
    split_seed: int        # the seeded train/test split of sets shipped without one
    test_fraction: float


class DatasetFormat:
    """One data set: its facts as class attributes, and :meth:`load` for one split.

    The defaults of this base class are what a data set that no format registers gets (one built
    by hand as an ``ImageDataset``): Cutout half the image side, the ImageNet AutoAugment policy,
    flipping allowed. A subclass must set ``image_size`` and ``mean``/``std`` (``None``: the loader
    computes them from the data); its attributes are checked when the class is defined.
    """

    name: str = ""                                    # set by DATASETS.register
    description: str = ""                             # one line: what is read and where (CLI help, docs)
    folder: Optional[str] = None                      # the folder under the root holding the files
    image_size: Optional[Tuple[int, int]] = None      # (H, W): native, or the default decode size
    resizable: bool = False                           # load_dataset's image_size sets the decode size
    mean: Optional[Tuple[float, ...]] = None          # per-channel statistics of the training images
    std: Optional[Tuple[float, ...]] = None
    num_classes: Optional[int] = None                 # None: as many as the files hold (class folders)
    cutout_size: Optional[int] = None                 # the papers' Cutout side at image_size; None: half
    autoaugment_policy: str = "imagenet"              # torchvision's AutoAugment policy for this data set
    flip: bool = True                                 # False where a mirror image changes the class (digits)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        where = f"data set format {cls.__name__}"
        size = cls.image_size
        if (not isinstance(size, tuple) or len(size) != 2
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)):
            raise TypeError(f"{where}: image_size must be a (height, width) tuple of positive ints, got {size!r}")
        if (cls.mean is None) != (cls.std is None):
            raise TypeError(f"{where}: mean and std must both be set or both be None (computed by the loader)")
        if cls.mean is not None:
            for key in ("mean", "std"):
                stats = getattr(cls, key)
                if not isinstance(stats, tuple) or not stats:
                    raise TypeError(f"{where}: {key} must be a tuple of per-channel floats, got {stats!r}")
                for value in stats:
                    check_number(f"{where}: {key}", value, min=0.0, min_inclusive=key == "mean")
            if len(cls.mean) != len(cls.std):
                raise ValueError(f"{where}: mean has {len(cls.mean)} channels, std {len(cls.std)}")
        if cls.num_classes is not None:
            check_int(f"{where}: num_classes", cls.num_classes, min=1)
        if cls.cutout_size is not None:
            check_int(f"{where}: cutout_size", cls.cutout_size, min=1, max=min(size))
        if cls.autoaugment_policy not in AUTOAUGMENT_POLICIES:
            raise ValueError(f"{where}: autoaugment_policy must be one of {AUTOAUGMENT_POLICIES}, "
                             f"got {cls.autoaugment_policy!r}")
        for key in ("flip", "resizable"):
            if not isinstance(getattr(cls, key), bool):
                raise TypeError(f"{where}: {key} must be True or False, got {getattr(cls, key)!r}")

    @classmethod
    def load(cls, root: str, train: bool, options: LoadOptions) -> ImageDataset:
        """The training (``train``) or test split, read from ``root`` (already resolved: a folder path)."""
        raise NotImplementedError(f"data set format {cls.__name__} defines no load()")

    @classmethod
    def dataset(cls, images, targets: torch.Tensor, classes: Sequence[str], *,
                mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None) -> ImageDataset:
        """An ``ImageDataset`` named after this format, with its mean/std unless given."""
        return ImageDataset(images, targets, classes, name=cls.name, mean=cls.mean if mean is None else mean,
                            std=cls.std if std is None else std)

    @classmethod
    def cutout_size_at(cls, side: int) -> int:
        """The Cutout side at an image side of ``side``: ``cutout_size`` scaled from ``image_size`` (the
        papers give it at the usual size), half the side where no paper augments this set with Cutout."""
        fraction = 0.5 if cls.cutout_size is None else cls.cutout_size / min(cls.image_size)
        return max(1, round(fraction * side))


def format_of(name: str) -> Type[DatasetFormat]:
    """The format registered as ``name``; the base :class:`DatasetFormat` (its defaults) for any other."""
    return DATASETS.get(name, DatasetFormat)


def find_folder(root: str, folder: str, required: Sequence[str], what: str, fmt: str) -> str:
    """``<root>/<folder>`` or ``root`` itself, whichever holds every required file."""
    candidates = [os.path.join(root, folder), root]
    for path in candidates:
        if all(os.path.exists(os.path.join(path, f)) for f in required):
            return path
    expected = os.path.abspath(candidates[0])
    missing = [f for f in required if not os.path.exists(os.path.join(expected, f))]
    raise DatasetNotFoundError(
        f"{what} not found: expected {', '.join(required)} in {expected} (or directly in {os.path.abspath(root)}); "
        f"missing {', '.join(missing)}. Format: {fmt}. augcore never downloads data: place the files there, "
        f"pass root=..., or set AUGCORE_DATA.")


def stratified_split(labels: np.ndarray, train: bool, test_fraction: float, split_seed: int) -> np.ndarray:
    """Indices of one side of a deterministic stratified split (scikit-learn's ``train_test_split``)."""
    from sklearn.model_selection import train_test_split

    test_fraction = check_number("test_fraction", test_fraction, min=0.0, max=1.0, min_inclusive=False,
                                 max_inclusive=False)
    split_seed = check_int("split_seed", split_seed, min=0, max=2 ** 32 - 1)
    try:
        train_idx, test_idx = train_test_split(np.arange(labels.shape[0]), test_size=test_fraction,
                                               random_state=split_seed, stratify=labels)
    except ValueError as exc:  # a side too small to hold every class
        raise ValueError(f"test_fraction={test_fraction} cannot split {labels.shape[0]} examples of "
                         f"{len(np.unique(labels))} classes with every class on both sides ({exc})") from None
    return np.sort(train_idx if train else test_idx)
