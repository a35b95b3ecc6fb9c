"""``ImageDataset``: an image classification data set, items ``(uint8 (C, H, W) image, label)``, held
in memory as one tensor (the array formats) or as files decoded on access (the class-folder formats).
The formats in ``augcore.data.formats`` build one; ``augcore.data.load_dataset`` reads one by name."""
from __future__ import annotations

import copy
import numbers
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from augcore.checks import CorruptFileError, IndexOutOfRangeError, check_indices, check_int

Transform = Callable[[torch.Tensor], torch.Tensor]


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

