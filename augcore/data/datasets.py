"""Image classification data sets read from their standard on-disk formats.

Every loader returns an :class:`ImageDataset`: items are ``(image, label)`` with
``image`` an untransformed uint8 tensor (C, H, W). Nothing is downloaded: a
missing data set raises :class:`DatasetNotFoundError` naming the folder searched,
the files expected there and their format.

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
import numbers
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from augcore.checks import (CorruptFileError, IndexOutOfRangeError, check_bool, check_choice, check_indices, check_int,
                            check_number)

PathLike = Union[str, os.PathLike]
Transform = Callable[[torch.Tensor], torch.Tensor]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")

# Per-channel statistics of the training images (torchvision / the papers' code).
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
SVHN_STATS = ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not where they were looked for."""


def default_root() -> str:
    return os.environ.get("AUGCORE_DATA", "data")


# --------------------------------------------------------------------------- storage

class _TensorImages:
    """All images in memory as one uint8 (N, C, H, W) tensor (CIFAR, SVHN, digits)."""

    def __init__(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}")
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]

    def subset(self, idx: torch.Tensor) -> "_TensorImages":
        return _TensorImages(self.images[idx])

    @property
    def image_size(self) -> Tuple[int, int]:
        return tuple(self.images.shape[2:])

    @property
    def channels(self) -> int:
        return self.images.shape[1]


class _FileImages:
    """Image files decoded on access to RGB, resized (shorter side) and centre-cropped to ``size``.

    Class-folder data sets (ImageNet, Caltech-256) have images of every size and are
    too large for memory; a fixed decode size lets them batch like the array sets.
    """

    def __init__(self, paths: List[str], size: int):
        self.paths = paths
        self.size = check_int("image_size", size, min=1)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        try:
            with Image.open(self.paths[i]) as img:
                array = np.asarray(img.convert("RGB"))
        except FileNotFoundError:
            raise FileNotFoundError(f"image file {self.paths[i]} is missing (moved or deleted after the scan)") from None
        except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for truncated / non-image files
            raise CorruptFileError(self.paths[i], f"not a readable image ({type(exc).__name__}: {exc})") from exc
        image = torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
        if tuple(image.shape[1:]) != (self.size, self.size):
            image = TF.center_crop(TF.resize(image, self.size, antialias=True), [self.size, self.size])
        return image

    def subset(self, idx: torch.Tensor) -> "_FileImages":
        return _FileImages([self.paths[i] for i in idx.tolist()], self.size)

    @property
    def image_size(self) -> Tuple[int, int]:
        return (self.size, self.size)

    @property
    def channels(self) -> int:
        return 3


# --------------------------------------------------------------------------- dataset

# Transforms that act on each pixel the same way whatever the batch: applying one to a
# stacked batch gives exactly the per-image results (no randomness, no per-image size).
_PER_PIXEL_TRANSFORMS = ("ToDtype", "Normalize", "ConvertImageDtype", "ToPureTensor", "Identity")


def _acts_per_pixel(transform: Optional[Transform]) -> bool:
    if transform is None:
        return True
    if not type(transform).__module__.startswith("torchvision.transforms"):
        return False
    name = type(transform).__name__
    if name == "Compose":
        return all(_acts_per_pixel(t) for t in transform.transforms)
    return name in _PER_PIXEL_TRANSFORMS


class ImageDataset(Dataset):
    """An image classification data set; items ``(image, label)``.

    ``image`` is the uint8 (C, H, W) image, passed through ``transform`` when one is
    set (see :meth:`with_transform`); ``label`` is an int (the possibly noisy label).
    """

    def __init__(self, images: Union[_TensorImages, _FileImages], targets: torch.Tensor, classes: Sequence[str], *,
                 name: str, mean: Sequence[float], std: Sequence[float], transform: Optional[Transform] = None):
        if not isinstance(images, (_TensorImages, _FileImages)):
            raise TypeError(f"images must come from augcore's storage classes (use a loader such as load_dataset), "
                            f"got {type(images).__name__}")
        targets = torch.as_tensor(targets)
        if targets.dtype.is_floating_point or targets.dtype == torch.bool or targets.is_complex():
            raise TypeError(f"{name}: targets must be integer class labels, got {targets.dtype}")
        targets = targets.to(torch.int64)
        if targets.dim() != 1 or targets.shape[0] != len(images):
            raise ValueError(f"{name}: {len(images)} images but targets of shape {tuple(targets.shape)}")
        if len(classes) == 0:
            raise ValueError(f"{name}: no classes")
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= len(classes)):
            raise ValueError(f"{name}: labels must lie in [0, {len(classes)}), got range "
                             f"[{int(targets.min())}, {int(targets.max())}]")
        if len(mean) != images.channels or len(std) != images.channels:
            raise ValueError(f"{name}: mean/std need {images.channels} entries (one per channel)")
        self._images = images
        self.targets = targets
        self.classes = [str(c) for c in classes]
        self.name = name
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.transform = transform
        self._clean_targets: Optional[torch.Tensor] = None

    # -- shape facts
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> Tuple[int, int]:
        return self._images.image_size

    @property
    def channels(self) -> int:
        return self._images.channels

    @property
    def clean_targets(self) -> torch.Tensor:
        """The true labels; present only when label noise was applied."""
        if self._clean_targets is None:
            raise AttributeError(f"{self.name}: no label noise was applied, so there are no separate clean_targets "
                                 "(targets are the clean labels)")
        return self._clean_targets

    @property
    def noise_mask(self) -> torch.Tensor:
        """Bool (N,): which labels were corrupted (all False without label noise)."""
        if self._clean_targets is None:
            return torch.zeros_like(self.targets, dtype=torch.bool)
        return self._clean_targets != self.targets

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.targets, minlength=self.num_classes)

    # -- access
    def __len__(self) -> int:
        return len(self._images)

    def _check_index(self, index) -> int:
        if not isinstance(index, numbers.Integral) or isinstance(index, bool):
            if isinstance(index, torch.Tensor) and index.numel() == 1 and not index.is_floating_point():
                index = int(index)
            else:
                raise TypeError(f"index must be an integer, got {index!r} ({type(index).__name__})")
        n = len(self)
        if not -n <= index < n:
            raise IndexOutOfRangeError(f"index {index} out of range for {self.name} of {n} images")
        return int(index) % n

    def image(self, index: int) -> torch.Tensor:
        """The raw uint8 (C, H, W) image, ignoring any transform."""
        return self._images[self._check_index(index)]

    def __getitem__(self, index: int):
        index = self._check_index(index)
        image = self._images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])

    def batch_reader(self) -> Optional[Callable[[torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]]:
        """``read(rows) -> (images, labels)``, equal to stacking ``self[r]`` for r in ``rows`` but with
        the transform applied once to the whole batch (per-image Python calls dominate a pass over
        small images); ``None`` when the transform is not the same on every pixel whatever the batch
        (random crops and flips stay per item). ``collect_stats`` loads through it when offered."""
        return self._read_batch if _acts_per_pixel(self.transform) else None

    def _read_batch(self, rows: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack([self.image(int(r)) for r in rows])
        if self.transform is not None:
            images = self.transform(images)
        return images, self.targets[rows]

    # -- views
    def with_transform(self, transform: Optional[Transform]) -> "ImageDataset":
        """A view of the same images and labels whose items pass through ``transform``."""
        view = copy.copy(self)
        view.transform = transform
        return view

    def subset(self, indices: Union[torch.Tensor, Sequence[int]]) -> "ImageDataset":
        """The examples at ``indices`` (in that order), labels and clean labels included."""
        idx = check_indices("indices", indices, size=len(self))
        view = copy.copy(self)
        view._images = self._images.subset(idx)
        view.targets = self.targets[idx]
        if self._clean_targets is not None:
            view._clean_targets = self._clean_targets[idx]
        return view

    def __repr__(self) -> str:
        noisy = f", label_noise={float(self.noise_mask.float().mean()):.3f}" if self._clean_targets is not None else ""
        return (f"ImageDataset({self.name}, n={len(self)}, classes={self.num_classes}, "
                f"image={self.channels}x{self.image_size[0]}x{self.image_size[1]}{noisy})")


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


# --------------------------------------------------------------------------- helpers

def _find_folder(root: Optional[PathLike], folder: str, required: Sequence[str], what: str, fmt: str) -> str:
    """``<root>/<folder>`` or ``root`` itself, whichever holds every required file."""
    base = _root(root)
    candidates = [os.path.join(base, folder), base]
    for path in candidates:
        if all(os.path.exists(os.path.join(path, f)) for f in required):
            return path
    expected = os.path.abspath(candidates[0])
    missing = [f for f in required if not os.path.exists(os.path.join(expected, f))]
    raise DatasetNotFoundError(
        f"{what} not found: expected {', '.join(required)} in {expected} (or directly in {os.path.abspath(base)}); "
        f"missing {', '.join(missing)}. Format: {fmt}. augcore never downloads data: place the files there, "
        f"pass root=..., or set AUGCORE_DATA.")


def _root(root: Optional[PathLike]) -> str:
    if root is None:
        return default_root()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path or None, got {root!r} ({type(root).__name__})")
    return os.fspath(root)


def _unpickle(path: str, keys: Sequence[str] = ()) -> Dict[str, object]:
    """A CIFAR pickle as a dict with str keys; raises CorruptFileError naming the file when it is
    truncated, not a pickle, or lacks one of ``keys``."""
    try:
        with open(path, "rb") as fh:
            raw = pickle.load(fh, encoding="bytes")  # the archives are Python 2 pickles with bytes keys
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, MemoryError, UnicodeDecodeError) as exc:
        raise CorruptFileError(path, f"not a readable CIFAR pickle (truncated or damaged?): "
                                     f"{type(exc).__name__}: {exc}. {CIFAR_FORMAT}") from None
    if not isinstance(raw, dict):
        raise CorruptFileError(path, f"a CIFAR pickle holds a dict, found {type(raw).__name__}")
    entry = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
    missing = [k for k in keys if k not in entry]
    if missing:
        raise CorruptFileError(path, f"lacks key(s) {missing} (has {sorted(map(str, entry))}); {CIFAR_FORMAT}")
    return entry


def _names(values: Sequence[Union[str, bytes]]) -> List[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _cifar_rows_to_images(data: np.ndarray, path: str) -> torch.Tensor:
    try:
        data = np.asarray(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(path, f"'data' is not an array of pixel bytes ({exc})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CorruptFileError(path, f"'data' must be (N, 3072) uint8 rows (1024 R, 1024 G, 1024 B), "
                                     f"got shape {data.shape}")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())


def _cifar_labels(values, count: int, path: str, key: str) -> List[int]:
    labels = values.tolist() if hasattr(values, "tolist") else values
    if not isinstance(labels, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        raise CorruptFileError(path, f"'{key}' must be a list of integer labels")
    if len(labels) != count:
        raise CorruptFileError(path, f"{count} images but {len(labels)} labels in '{key}'")
    return list(labels)


def _stratified_split(labels: np.ndarray, train: bool, test_fraction: float, split_seed: int) -> np.ndarray:
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


# --------------------------------------------------------------------------- loaders

CIFAR_FORMAT = ("the CIFAR 'python version' pickles (cifar-10-python.tar.gz / cifar-100-python.tar.gz from "
                "https://www.cs.toronto.edu/~kriz/cifar.html, extracted)")


def load_cifar10(root: Optional[PathLike], train: bool) -> ImageDataset:
    batches = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    folder = _find_folder(root, "cifar-10-batches-py", batches + ["batches.meta"], "CIFAR-10", CIFAR_FORMAT)
    images, labels = [], []
    for b in batches:
        path = os.path.join(folder, b)
        entry = _unpickle(path, ("data", "labels"))
        images.append(_cifar_rows_to_images(entry["data"], path))
        labels.extend(_cifar_labels(entry["labels"], images[-1].shape[0], path, "labels"))
    classes = _names(_unpickle(os.path.join(folder, "batches.meta"), ("label_names",))["label_names"])
    return ImageDataset(_TensorImages(torch.cat(images)), torch.tensor(labels, dtype=torch.int64), classes,
                        name="cifar10", mean=CIFAR10_STATS[0], std=CIFAR10_STATS[1])


def load_cifar100(root: Optional[PathLike], train: bool) -> ImageDataset:
    split = "train" if train else "test"
    folder = _find_folder(root, "cifar-100-python", [split, "meta"], "CIFAR-100", CIFAR_FORMAT)
    path = os.path.join(folder, split)
    entry = _unpickle(path, ("data", "fine_labels"))
    images = _cifar_rows_to_images(entry["data"], path)
    labels = _cifar_labels(entry["fine_labels"], images.shape[0], path, "fine_labels")
    classes = _names(_unpickle(os.path.join(folder, "meta"), ("fine_label_names",))["fine_label_names"])
    return ImageDataset(_TensorImages(images), torch.tensor(labels, dtype=torch.int64), classes,
                        name="cifar100", mean=CIFAR100_STATS[0], std=CIFAR100_STATS[1])


def load_svhn(root: Optional[PathLike], train: bool) -> ImageDataset:
    import scipy.io

    file = "train_32x32.mat" if train else "test_32x32.mat"
    folder = _find_folder(root, "svhn", [file], "SVHN",
                          "the cropped-digits MATLAB files train_32x32.mat / test_32x32.mat from "
                          "http://ufldl.stanford.edu/housenumbers/ (keys X: (32, 32, 3, N) uint8, y: (N, 1), "
                          "label 10 = digit 0)")
    path = os.path.join(folder, file)
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, TypeError, OSError, EOFError, NotImplementedError) as exc:  # scipy's errors for bad files
        raise CorruptFileError(path, f"not a readable MATLAB file (truncated or damaged?): {exc}") from None
    if "X" not in mat or "y" not in mat:
        raise CorruptFileError(path, f"expected keys 'X' and 'y', found "
                                     f"{sorted(k for k in mat if not k.startswith('__'))}")
    x = np.asarray(mat["X"], dtype=np.uint8)
    if x.ndim != 4 or x.shape[2] != 3:
        raise CorruptFileError(path, f"'X' must be (32, 32, 3, N), got shape {x.shape}")
    y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    if y.shape[0] != x.shape[3]:
        raise CorruptFileError(path, f"{x.shape[3]} images but {y.shape[0]} labels")
    if y.size and (y.min() < 0 or y.max() > 10):
        raise CorruptFileError(path, f"labels must lie in 0..10 (10 = digit 0), found [{y.min()}, {y.max()}]")
    y = np.where(y == 10, 0, y)  # SVHN stores digit 0 as label 10
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
    return ImageDataset(_TensorImages(images), torch.from_numpy(y), [str(d) for d in range(10)],
                        name="svhn", mean=SVHN_STATS[0], std=SVHN_STATS[1])


def load_digits(train: bool, split_seed: int = 0, test_fraction: float = 0.2) -> ImageDataset:
    """scikit-learn's 8x8 digits (1797 images, shipped with scikit-learn), split stratified and seeded.

    Pixel values 0..16 are scaled to 0..255; mean/std are those of the whole set.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    mean = float(pixels.mean() / 255.0)
    std = float(pixels.std() / 255.0)
    keep = _stratified_split(bunch.target, train, test_fraction, split_seed)
    images = torch.from_numpy(pixels[keep]).unsqueeze(1).contiguous()
    return ImageDataset(_TensorImages(images), torch.from_numpy(bunch.target[keep].astype(np.int64)),
                        [str(d) for d in range(10)], name="digits", mean=(mean,), std=(std,))


def _image_files(folder: str) -> List[str]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(IMAGE_EXTENSIONS))
    return files


def _read_class_names(root: str, folder_names: Sequence[str]) -> List[str]:
    """Readable class names for prompts: words.txt (wnid -> names) when present, else cleaned folder names."""
    words_path = os.path.join(root, "words.txt")
    words: Dict[str, str] = {}
    if os.path.exists(words_path):
        with open(words_path, encoding="utf-8") as fh:
            for line in fh:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2:
                    words[parts[0]] = parts[1].split(",")[0].strip()
    return [words.get(f, _readable_folder_name(f)) for f in folder_names]


def _readable_folder_name(folder: str) -> str:
    """Caltech-256's "002.american-flag" / "253.faces-easy-101" read "american flag" / "faces easy"."""
    name = re.sub(r"-101$", "", re.sub(r"^\d+\.", "", folder))
    return re.sub(r"[-_]+", " ", name).strip() or folder


def _class_folders(folder: str) -> List[str]:
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))


def _scan_class_folders(folder: str, what: str) -> Tuple[List[str], List[str], List[int]]:
    classes = _class_folders(folder)
    if not classes:
        raise DatasetNotFoundError(f"{what}: no class folders in {os.path.abspath(folder)} (expected "
                                   f"<class name>/<image files> sub-folders)")
    paths, labels = [], []
    # listing ImageNet's 1000 folders takes a while: show progress for large trees
    for c, name in enumerate(tqdm(classes, desc=f"scanning {folder}", unit="class", disable=len(classes) < 100)):
        files = _image_files(os.path.join(folder, name))
        if not files:
            raise ValueError(f"{what}: class folder {os.path.join(folder, name)} holds no images "
                             f"(extensions {', '.join(IMAGE_EXTENSIONS)})")
        paths.extend(files)
        labels.extend([c] * len(files))
    return classes, paths, labels


def load_image_folder(root: Optional[PathLike], train: bool, image_size: int = 224, split_seed: int = 0,
                      test_fraction: float = 0.2, name: str = "imagefolder") -> ImageDataset:
    """Class folders of images (ImageNet, Caltech-256, ...).

    ``root/train/<class>/...`` with ``root/val/<class>`` (or ``root/test``) for the test
    split; a ``root`` holding class folders directly (Caltech-256's
    ``256_ObjectCategories``) is split stratified and seeded by ``split_seed``.
    """
    base = os.fspath(root) if root is not None else default_root()
    fmt = ("class folders of images: <root>/train/<class>/*.jpg and <root>/val/<class>/*.jpg, or <root>/<class>/*.jpg "
           "split deterministically")
    if not os.path.isdir(base):
        raise DatasetNotFoundError(f"image folder data set not found: {os.path.abspath(base)} does not exist. "
                                   f"Format: {fmt}. augcore never downloads data.")
    if os.path.isdir(os.path.join(base, "train")):
        test_folder = next((os.path.join(base, d) for d in ("val", "test") if os.path.isdir(os.path.join(base, d))),
                           None)
        if not train and test_folder is None:
            raise DatasetNotFoundError(f"image folder data set: {os.path.abspath(base)} has train/ but neither val/ "
                                       f"nor test/ for the test split. Format: {fmt}.")
        train_classes = _class_folders(os.path.join(base, "train"))
        classes, paths, labels = _scan_class_folders(os.path.join(base, "train") if train else test_folder, name)
        if classes != train_classes:
            raise ValueError(f"{name}: the test folder's classes differ from train/'s "
                             f"({len(classes)} vs {len(train_classes)} folders)")
    else:
        classes, paths, labels = _scan_class_folders(base, name)
        keep = _stratified_split(np.asarray(labels), train, test_fraction, split_seed)
        paths = [paths[i] for i in keep]
        labels = [labels[i] for i in keep]
    return ImageDataset(_FileImages(paths, image_size), torch.tensor(labels), _read_class_names(base, classes),
                        name=name, mean=IMAGENET_STATS[0], std=IMAGENET_STATS[1])


def load_tiny_imagenet(root: Optional[PathLike], train: bool, image_size: int = 64) -> ImageDataset:
    """Tiny-ImageNet-200 as extracted: train/<wnid>/images/*.JPEG, val/images + val/val_annotations.txt."""
    folder = _find_folder(root, "tiny-imagenet-200", ["wnids.txt", "train", "val/val_annotations.txt"],
                          "Tiny-ImageNet",
                          "the extracted tiny-imagenet-200.zip (wnids.txt, words.txt, train/<wnid>/images/*.JPEG, "
                          "val/images/*.JPEG with val/val_annotations.txt: file<TAB>wnid<TAB>box)")
    train = check_bool("train", train)
    image_size = check_int("image_size", image_size, min=1)
    wnids_path = os.path.join(folder, "wnids.txt")
    try:
        with open(wnids_path, encoding="utf-8") as fh:
            wnids = [w.strip() for w in fh if w.strip()]
    except UnicodeDecodeError as exc:
        raise CorruptFileError(wnids_path, f"not a text file of class ids ({exc})") from None
    if not wnids:
        raise CorruptFileError(wnids_path, "lists no class ids")
    label_of = {w: c for c, w in enumerate(wnids)}
    if train:
        paths, labels = [], []
        for wnid in wnids:
            files = _image_files(os.path.join(folder, "train", wnid))
            if not files:
                raise DatasetNotFoundError(f"Tiny-ImageNet: no images for class {wnid} under "
                                           f"{os.path.join(folder, 'train', wnid)}")
            paths.extend(files)
            labels.extend([label_of[wnid]] * len(files))
    else:
        paths, labels = [], []
        annotations = os.path.join(folder, "val", "val_annotations.txt")
        with open(annotations, encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                parts = line.strip().split("\t")
                if len(parts) < 2:
                    continue
                if parts[1] not in label_of:
                    raise ValueError(f"{annotations}:{line_no}: class {parts[1]!r} is not in wnids.txt")
                path = os.path.join(folder, "val", "images", parts[0])
                if not os.path.exists(path):
                    raise DatasetNotFoundError(f"Tiny-ImageNet: {annotations}:{line_no} names {path}, which is missing")
                paths.append(path)
                labels.append(label_of[parts[1]])
    return ImageDataset(_FileImages(paths, image_size), torch.tensor(labels), _read_class_names(folder, wnids),
                        name="tiny_imagenet", mean=IMAGENET_STATS[0], std=IMAGENET_STATS[1])


@dataclass(frozen=True)
class DatasetInfo:
    """What a data-set name reads and where (for CLI help and error messages)."""

    name: str
    description: str


DATASETS: Dict[str, DatasetInfo] = {
    info.name: info for info in (
        DatasetInfo("digits", "scikit-learn's 8x8 digits (embedded, no files needed), stratified seeded split"),
        DatasetInfo("cifar10", "CIFAR-10 python pickles in <root>/cifar-10-batches-py"),
        DatasetInfo("cifar100", "CIFAR-100 python pickles in <root>/cifar-100-python"),
        DatasetInfo("svhn", "SVHN cropped digits train_32x32.mat / test_32x32.mat in <root>/svhn"),
        DatasetInfo("mnist", "MNIST IDX files (plain or .gz) in <root>/mnist or <root>/MNIST/raw"),
        DatasetInfo("imagefolder", "class folders of images (ImageNet, Caltech-256) at <root>"),
        DatasetInfo("tiny_imagenet", "extracted tiny-imagenet-200 in <root>/tiny-imagenet-200"),
    )
}


def load_dataset(name: str, root: Optional[PathLike] = None, *, train: bool = True, seed: int = 0,
                 imbalance_factor: Optional[float] = None, label_noise: float = 0.0,
                 image_size: Optional[int] = None, split_seed: int = 0, test_fraction: float = 0.2) -> ImageDataset:
    """Loads a data set by name (one of :data:`DATASETS`).

    ``seed`` drives the long-tail subsampling and the label noise; ``split_seed`` and
    ``test_fraction`` the deterministic train/test split of sets shipped without one
    (digits, a flat class-folder tree). ``image_size`` is the decode size of
    class-folder sets (default 224; 64 for Tiny-ImageNet). The long tail and the
    label noise apply to the training split only; the test split stays clean and
    balanced.
    """
    check_choice("dataset name", name, sorted(DATASETS))
    train = check_bool("train", train)
    seed = check_int("seed", seed, min=0, max=2 ** 32 - 1)
    if imbalance_factor is not None:
        imbalance_factor = check_number("imbalance_factor (largest / smallest class)", imbalance_factor, min=1.0)
    label_noise = check_number("label_noise", label_noise, min=0.0, max=1.0)
    if image_size is not None:
        image_size = check_int("image_size", image_size, min=1)
        if name not in ("imagefolder", "tiny_imagenet"):
            raise ValueError(f"image_size applies to class-folder data sets only; {name} has a fixed size")
    split_seed = check_int("split_seed", split_seed, min=0, max=2 ** 32 - 1)
    test_fraction = check_number("test_fraction", test_fraction, min=0.0, max=1.0, min_inclusive=False,
                                 max_inclusive=False)
    _root(root)
    if name == "digits":
        dataset = load_digits(train, split_seed, test_fraction)
    elif name == "cifar10":
        dataset = load_cifar10(root, train)
    elif name == "cifar100":
        dataset = load_cifar100(root, train)
    elif name == "svhn":
        dataset = load_svhn(root, train)
    elif name == "mnist":
        from augcore.data.mnist import load_mnist

        dataset = load_mnist(_root(root), train)
    elif name == "imagefolder":
        dataset = load_image_folder(root, train, 224 if image_size is None else image_size, split_seed, test_fraction)
    else:
        dataset = load_tiny_imagenet(root, train, 64 if image_size is None else image_size)
    if train and imbalance_factor is not None:
        dataset = make_long_tailed(dataset, imbalance_factor, seed)
    if train and label_noise:
        dataset = add_symmetric_label_noise(dataset, label_noise, seed)
    return dataset
