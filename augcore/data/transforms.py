"""Augmentation presets: weak (crop + flip), strong (torchvision policies, Cutout, noise), Mixup/CutMix.

Every per-image preset maps an untransformed uint8 (C, H, W) tensor to a
normalised float32 tensor of the same size. Strong presets include the weak crop
and flip first, as in the coreset paper: weak augmentation applies to originals and
to augmented copies alike. Names may be joined with ``+`` ("autoaugment+cutout",
the refinement paper's intensive phase); ops run in the order uint8 policies ->
[0, 1] float ops (noise) -> normalisation -> Cutout (which, as in DeVries &
Taylor's code, zeroes the *normalised* image, i.e. paints the mean colour).
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from torchvision.transforms import v2

from augcore.checks import check_choice, check_int, check_number

STRONG_AUGMENTATIONS = ("autoaugment", "randaugment", "trivialaugment", "augmix", "cutout", "noise", "none", "wu2020")

# DeVries & Taylor's Cutout sizes; other data sets get half the image side
_CUTOUT_SIZE = {"cifar10": 16, "cifar100": 8, "svhn": 20}
_AUTOAUGMENT_POLICY = {"cifar10": "cifar10", "cifar100": "cifar10", "svhn": "svhn", "digits": "svhn", "mnist": "svhn"}
_NO_FLIP = ("digits", "svhn", "mnist")  # flipping changes a digit's meaning


class Cutout:
    """Zeroes ``holes`` squares of side ``size`` centred uniformly in the image (clipped at the border).

    Operates on float (C, H, W) tensors; returns a new tensor.
    """

    def __init__(self, size: int, holes: int = 1):
        self.size = check_int("Cutout size", size, min=1)
        self.holes = check_int("Cutout holes", holes, min=1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if not image.is_floating_point() or image.dim() != 3:
            raise TypeError(f"Cutout expects a float (C, H, W) tensor, got {image.dtype} {tuple(image.shape)}")
        h, w = image.shape[1:]
        out = image.clone()
        for _ in range(self.holes):
            cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
            half = self.size // 2
            out[:, max(cy - half, 0):min(cy + self.size - half, h), max(cx - half, 0):min(cx + self.size - half, w)] = 0
        return out

    def __repr__(self) -> str:
        return f"Cutout(size={self.size}, holes={self.holes})"


class GaussianNoise:
    """Adds N(0, sigma^2) noise to a [0, 1] float image and clamps back to [0, 1]."""

    def __init__(self, sigma: float = 0.05):
        self.sigma = check_number("noise sigma", sigma, min=0.0)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if not isinstance(image, torch.Tensor) or not image.is_floating_point():
            raise TypeError(f"GaussianNoise expects a float image in [0, 1], got "
                            f"{image.dtype if isinstance(image, torch.Tensor) else type(image).__name__}")
        return (image + self.sigma * torch.randn_like(image)).clamp_(0.0, 1.0)

    def __repr__(self) -> str:
        return f"GaussianNoise(sigma={self.sigma})"


def _check_dataset(dataset) -> None:
    missing = [a for a in ("name", "image_size", "mean", "std") if not hasattr(dataset, a)]
    if missing:
        raise TypeError(f"dataset must be an augcore ImageDataset (or have {', '.join(missing)}), "
                        f"got {type(dataset).__name__}")


def _geometry(dataset, train: bool) -> List[Callable]:
    if not train:
        return []
    h, w = dataset.image_size
    ops: List[Callable] = []
    if min(h, w) >= 128:
        ops.append(v2.RandomResizedCrop((h, w), antialias=True))  # the ImageNet-style recipe for large images
    else:
        ops.append(v2.RandomCrop((h, w), padding=max(1, min(h, w) // 8)))  # 4 pixels on 32x32, 1 on 8x8
    if dataset.name not in _NO_FLIP:
        ops.append(v2.RandomHorizontalFlip())
    return ops


def _to_float() -> Callable:
    return v2.ToDtype(torch.float32, scale=True)


def _normalize(dataset) -> Callable:
    return v2.Normalize(list(dataset.mean), list(dataset.std))


def weak_transform(dataset) -> Callable[[torch.Tensor], torch.Tensor]:
    """Random crop with padding (H/8; random-resized crop for images >= 128 px) and horizontal flip
    (none for digits/SVHN), then scaling to [0, 1] and normalisation."""
    _check_dataset(dataset)
    return v2.Compose(_geometry(dataset, True) + [_to_float(), _normalize(dataset)])


def eval_transform(dataset) -> Callable[[torch.Tensor], torch.Tensor]:
    """Scaling to [0, 1] and normalisation only."""
    _check_dataset(dataset)
    return v2.Compose([_to_float(), _normalize(dataset)])


def strong_transform(name: str, dataset, *, autoaugment_policy: Optional[str] = None,
                     cutout_size: Optional[int] = None, noise_sigma: float = 0.05) -> Callable[[torch.Tensor], torch.Tensor]:
    """The weak crop/flip followed by the strong augmentation(s) ``name`` (see module docstring).

    * ``autoaugment``: torchvision's AutoAugment, policy CIFAR10 for CIFAR, SVHN for
      SVHN/digits, IMAGENET otherwise (override with ``autoaugment_policy``).
    * ``randaugment`` / ``trivialaugment`` / ``augmix``: torchvision defaults.
    * ``cutout``: one square hole, side 16 (CIFAR-10), 8 (CIFAR-100), 20 (SVHN), H/2 otherwise.
    * ``noise``: colour jitter (brightness/contrast/saturation 0.4) and Gaussian
      pixel noise of std ``noise_sigma`` on the [0, 1] image.
    * ``none``: the weak augmentation only (copies that differ only by crop/flip).
    * ``wu2020``: Wu et al. 2020 as dauphin composes it (``augcore.data.wu2020.Wu2020Augment``;
      it brings its own crop and flip and cannot be joined with others). As a plain transform
      it gives one candidate without Mixup; training scores several (``augment.candidates``).
    """
    if not isinstance(name, str):
        raise TypeError(f"name (the strong augmentation) must be a string such as 'autoaugment' or 'autoaugment+cutout', "
                        f"got {name!r} ({type(name).__name__})")
    _check_dataset(dataset)
    if cutout_size is not None:
        cutout_size = check_int("cutout_size", cutout_size, min=1)
    noise_sigma = check_number("noise_sigma", noise_sigma, min=0.0)
    parts = [p.strip().lower() for p in name.split("+")]
    unknown = [p for p in parts if p not in STRONG_AUGMENTATIONS]
    if unknown or not parts:
        raise ValueError(f"unknown strong augmentation {unknown or name!r}; choose from {STRONG_AUGMENTATIONS} "
                         f"(several may be joined with '+')")
    if "wu2020" in parts:
        if len(parts) > 1:
            raise ValueError(f"'wu2020' is a whole augmentation (its own crop, flip, Cutout and Mixup) and cannot be "
                             f"joined with others, got {name!r}")
        from augcore.data.wu2020 import Wu2020Augment
        return Wu2020Augment(dataset)
    uint8_ops: List[Callable] = []
    float_ops: List[Callable] = []
    normalized_ops: List[Callable] = []
    for part in parts:
        if part == "autoaugment":
            if autoaugment_policy is not None and not isinstance(autoaugment_policy, str):
                raise TypeError(f"autoaugment_policy must be a policy name or None, got {autoaugment_policy!r}")
            policy = (autoaugment_policy or _AUTOAUGMENT_POLICY.get(dataset.name, "imagenet")).upper()
            check_choice("AutoAugment policy (autoaugment_policy)", policy, list(v2.AutoAugmentPolicy.__members__))
            uint8_ops.append(v2.AutoAugment(v2.AutoAugmentPolicy[policy]))
        elif part == "randaugment":
            uint8_ops.append(v2.RandAugment())
        elif part == "trivialaugment":
            uint8_ops.append(v2.TrivialAugmentWide())
        elif part == "augmix":
            uint8_ops.append(v2.AugMix())
        elif part == "noise":
            uint8_ops.append(v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4))
            float_ops.append(GaussianNoise(noise_sigma))
        elif part == "cutout":
            size = cutout_size if cutout_size is not None else _CUTOUT_SIZE.get(dataset.name,
                                                                                  max(1, dataset.image_size[0] // 2))
            normalized_ops.append(Cutout(size))
    return v2.Compose(_geometry(dataset, True) + uint8_ops + [_to_float()] + float_ops + [_normalize(dataset)]
                      + normalized_ops)


# --------------------------------------------------------------------------- batch transforms

def _check_batch(x: torch.Tensor, y: torch.Tensor, who: str) -> None:
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{who}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"{who}: x must be a float (B, C, H, W) batch, got {x.dtype} {tuple(x.shape)}")
    if y.dim() != 2 or not y.is_floating_point():
        raise ValueError(f"{who}: y must be float one-hot / soft labels of shape (B, num_classes), got {y.dtype} "
                         f"{tuple(y.shape)} (use torch.nn.functional.one_hot(labels, C).float())")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{who}: {x.shape[0]} images but {y.shape[0]} label rows")
    if x.device != y.device:
        raise ValueError(f"{who}: x is on {x.device} but y is on {y.device}")


class _BatchMix:
    def __init__(self, alpha: float, seed: Optional[int] = None):
        self.alpha = check_number(f"{type(self).__name__} alpha", alpha, min=0.0, min_inclusive=False)
        self._rng = np.random.default_rng(None if seed is None else check_int("seed", seed, min=0))

    def _draw(self, batch: int, device: torch.device) -> Tuple[float, torch.Tensor]:
        lam = float(self._rng.beta(self.alpha, self.alpha))
        perm = torch.from_numpy(self._rng.permutation(batch)).to(device)
        return lam, perm

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"


class Mixup(_BatchMix):
    """Zhang et al.: x = lam x + (1 - lam) x[perm], y likewise, lam ~ Beta(alpha, alpha)."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        _check_batch(x, y, "Mixup")
        lam, perm = self._draw(x.shape[0], x.device)
        return lam * x + (1.0 - lam) * x[perm], lam * y + (1.0 - lam) * y[perm]


class CutMix(_BatchMix):
    """Yun et al. (as released): a box of area (1 - lam) H W, lam ~ Beta(alpha, alpha), centred uniformly
    and clipped at the border, is pasted from x[perm]; the label weight is the pasted area actually kept."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        _check_batch(x, y, "CutMix")
        lam, perm = self._draw(x.shape[0], x.device)
        h, w = x.shape[2:]
        cut = math.sqrt(1.0 - lam)
        cut_h, cut_w = int(h * cut), int(w * cut)
        cy, cx = int(self._rng.integers(h)), int(self._rng.integers(w))
        y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        mixed = x.clone()
        mixed[:, :, y1:y2, x1:x2] = x[perm, :, y1:y2, x1:x2]
        kept = 1.0 - (y2 - y1) * (x2 - x1) / float(h * w)
        return mixed, kept * y + (1.0 - kept) * y[perm]
