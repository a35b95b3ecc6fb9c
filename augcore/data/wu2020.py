"""The strong augmentation of Wu et al. 2020, as its released code (senwu/dauphin) composes it.

Wu, Zhang, Valiant & Ré, *On the generalization effects of linear transformations in data
augmentation* (ICML 2020) is the strong augmentation the coreset paper uses for CIFAR-10 and
SVHN (its supplement, D.1: "We use [7] for CIFAR10/SVHN"). Its image policy
(``dauphin/image/augment_policy.py``, policy ``uncertainty_sampling``) builds every candidate
augmentation of an example as

1. ``num_comp`` ops drawn *with replacement* (``random.choices``) from the 16 of ``OPS``, each
   with its own probability ``p ~ U(0, 1)`` and level ``l ~ U{0, 0.001, ..., 1}``
   (dauphin's ``parse_transform``), so each op runs with overall probability 1/2;
2. a random crop of the image size after reflect padding (dauphin: 4 px at 32 px;
   ``RandomCrop_P1_S32_PD4_PMreflect``);
3. a horizontal flip with probability 1/2 (``HorizontalFlip_P0.5``);
4. Cutout with probability 1 and a random level: a square of side ``level * H/2``
   (``Cutout_P1_MP16`` at 32 px), painted with the data set's mean colour;
5. Mixup with alpha 1 and a random probability (``Mixup_A1``: no ``P`` setting, so its
   probability is drawn like the ops'): the partner is a uniformly drawn training image put
   through the steps before this one, the label becomes ``lam y + (1 - lam) y'``
   (dauphin trains with ``prob_label=True``);

then scaling to [0, 1] and normalisation. ``scripts/run_image.sh`` sets ``num_comp=2`` and
``augment_k=4`` candidates per example, of which the training loop keeps one, sampled in
proportion to its loss (``augcore.train.candidates``).

The ops run on uint8 tensors through ``torchvision.transforms.v2.functional`` (the PIL
operations dauphin calls, as torchvision's AutoAugment ports them), with dauphin's magnitude
ranges. Where augcore chooses rather than dauphin: the flip is left out where the data set's
format forbids it (SVHN, MNIST, digits: a flip changes a digit), as augcore's weak augmentation
does; at sizes other than 32 px the crop padding (H/8) and the translation (10 px at 32 px) scale
with the image. Every random
draw comes from one ``torch.Generator``, so a seed gives the same candidates on every device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from augcore.checks import check_int, check_number
from augcore.data.formats import format_of

__all__ = ["OPS", "Op", "Wu2020Augment"]

# the 16 ops of dauphin's uncertainty_sampling policy, in its order
OPS = ("AutoContrast", "Brightness", "Color", "Contrast", "Cutout", "Equalize", "Invert", "Mixup", "Posterize",
       "Rotate", "Sharpness", "ShearX", "ShearY", "Solarize", "TranslateX", "TranslateY")
_LEVELS = 1000   # dauphin: level = randint(0, 10 ** PRECISION) / 10 ** PRECISION, PRECISION = 3


@dataclass(frozen=True)
class Op:
    """One step of a candidate's recipe: ``name``, applied when ``u <= prob`` for a fresh
    ``u ~ U(0, 1)`` (dauphin's ``DauphinTransform.__call__``), at ``level`` in [0, 1]."""
    name: str
    prob: float
    level: float


def _enhance(fn: Callable) -> Callable:
    # Brightness, Color, Contrast, Sharpness: PIL ImageEnhance factor 0.1 + 1.8 level (dauphin's range (0.1, 1.9))
    return lambda aug, img, level, gen: fn(img, 0.1 + 1.8 * level)


def _signed(value: float, gen: torch.Generator) -> float:
    # dauphin: "if random.random() > 0.5: degree = -degree"
    return -value if float(torch.rand((), generator=gen)) > 0.5 else value


def _rotate(aug, img, level, gen):
    # PIL rotate(degree): counter-clockwise about the centre, nearest neighbour, black fill; range (0, 30)
    return TF.rotate(img, _signed(30.0 * level, gen), interpolation=InterpolationMode.NEAREST, fill=0)


def _shear(axis: int) -> Callable:
    # PIL affine (1, m, 0, 0, 1, 0) / (1, 0, 0, m, 1, 0), about the top-left corner; range (0, 0.3)
    def shear(aug, img, level, gen):
        degrees = math.degrees(math.atan(_signed(0.3 * level, gen)))
        angles = [degrees, 0.0] if axis == 0 else [0.0, degrees]
        return TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=angles,
                         interpolation=InterpolationMode.NEAREST, fill=0, center=[0, 0])
    return shear


def _translate(axis: int) -> Callable:
    # PIL affine (1, 0, d, 0, 1, 0) / (1, 0, 0, 0, 1, d), d in (0, max_degree=10) pixels, black fill: the content
    # moves by -d (torchvision's translate moves it by +t)
    def translate(aug, img, level, gen):
        d = -_signed(aug.translate_max * level, gen)
        return TF.affine(img, angle=0.0, translate=[d, 0.0] if axis == 0 else [0.0, d], scale=1.0, shear=[0.0, 0.0],
                         interpolation=InterpolationMode.NEAREST, fill=0)
    return translate


def _posterize(aug, img, level, gen):
    # bits kept: int(level * 4), range (0, 4); 0 bits gives black, as Pillow did when dauphin was released
    # (Pillow's posterize then masked with ~(2 ** 8 - 1); newer Pillow rejects 0 bits)
    return TF.posterize(img, int(4 * level))


def _solarize(aug, img, level, gen):
    threshold = 256.0 * level                   # PIL inverts pixels >= threshold; range (0, 256)
    return img if threshold > 255 else TF.solarize(img, threshold)


_APPLY: Dict[str, Callable] = {
    "AutoContrast": lambda aug, img, level, gen: TF.autocontrast(img),
    "Brightness": _enhance(TF.adjust_brightness),
    "Color": _enhance(TF.adjust_saturation),
    "Contrast": _enhance(TF.adjust_contrast),
    "Equalize": lambda aug, img, level, gen: TF.equalize(img),
    "Invert": lambda aug, img, level, gen: TF.invert(img),
    "Posterize": _posterize,
    "Rotate": _rotate,
    "Sharpness": _enhance(TF.adjust_sharpness),
    "ShearX": _shear(0),
    "ShearY": _shear(1),
    "Solarize": _solarize,
    "TranslateX": _translate(0),
    "TranslateY": _translate(1),
}


class Wu2020Augment:
    """Candidate augmentations of ``dataset``'s images, as dauphin draws them (module docstring).

    ``candidate(index, generator)`` returns one candidate of example ``index``: a normalised
    float (C, H, W) image and its soft label (the Mixup partners come from ``dataset``).
    ``candidates(indices, per_example, generator)`` stacks ``per_example`` of them for each
    index, example-major. Called on one uint8 image (``augment(image)``, the plain
    strong-transform interface), it returns one candidate with the Mixup steps left out: a
    lone image carries no label to mix; training with ``augment.strong: wu2020`` draws whole
    candidates and keeps one by its loss (``augcore.train.candidates``).

    ``num_comp`` (dauphin's default 2) ops per candidate; ``cutout_max`` (H/2), ``mixup_alpha``
    (1), ``crop_padding`` (4 px at 32 px, H/8 otherwise), ``translate_max`` (10 px at 32 px) and
    ``flip`` (off where the format forbids it: SVHN, MNIST, digits) default to the released values.
    """

    def __init__(self, dataset, *, num_comp: int = 2, cutout_max: Optional[int] = None, mixup_alpha: float = 1.0,
                 crop_padding: Optional[int] = None, translate_max: Optional[float] = None,
                 flip: Optional[bool] = None):
        if not all(hasattr(dataset, attr) for attr in ("image", "targets", "num_classes", "image_size", "mean", "std")):
            raise TypeError(f"dataset must be an augcore ImageDataset, got {type(dataset).__name__}")
        self.dataset = dataset
        h, w = dataset.image_size
        self.num_comp = check_int("num_comp", num_comp, min=1)
        self.cutout_max = check_int("cutout_max", h // 2 if cutout_max is None else cutout_max, min=0)
        self.mixup_alpha = check_number("mixup_alpha", mixup_alpha, min=0.0, min_inclusive=False)
        self.crop_padding = check_int("crop_padding", max(1, h // 8) if crop_padding is None else crop_padding, min=0)
        self.translate_max = check_number("translate_max", 10.0 * w / 32 if translate_max is None else translate_max,
                                          min=0.0)
        self.flip = format_of(dataset.name).flip if flip is None else bool(flip)
        self.num_classes = int(dataset.num_classes)
        # dauphin paints Cutout with round(mean * 255) per channel (TASK_NORMALIZE's mean)
        self._cutout_color = torch.tensor([round(m * 255) for m in dataset.mean], dtype=torch.uint8)
        self._mean = list(dataset.mean)
        self._std = list(dataset.std)

    # ------------------------------------------------------------------ recipes
    def draw_recipe(self, generator: Optional[torch.Generator] = None) -> List[Op]:
        """One candidate's steps: ``num_comp`` random ops, then crop, flip, Cutout and Mixup."""
        def prob_level() -> Tuple[float, float]:
            prob = float(torch.rand((), generator=generator))
            return prob, int(torch.randint(_LEVELS + 1, (), generator=generator)) / _LEVELS

        picks = torch.randint(len(OPS), (self.num_comp,), generator=generator).tolist()
        recipe = [Op(OPS[i], *prob_level()) for i in picks]
        recipe += [Op("RandomCrop", 1.0, 0.0), Op("HorizontalFlip", 0.5 if self.flip else 0.0, 0.0),
                   Op("Cutout", 1.0, prob_level()[1]), Op("Mixup", prob_level()[0], 0.0)]
        return recipe

    def apply(self, recipe: Sequence[Op], image: torch.Tensor, label: Optional[torch.Tensor],
              generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Runs ``recipe`` on a uint8 (C, H, W) image; ``label`` (soft, (num_classes,)) is mixed
        by Mixup steps, which are skipped when ``label`` is None. Returns uint8 image, label."""
        for position, op in enumerate(recipe):
            if float(torch.rand((), generator=generator)) > op.prob:
                continue
            if op.name == "Mixup":
                if label is not None:
                    image, label = self._mixup(recipe[:position], image, label, generator)
            elif op.name == "RandomCrop":
                image = self._crop(image, generator)
            elif op.name == "HorizontalFlip":
                image = TF.horizontal_flip(image)
            elif op.name == "Cutout":
                image = self._cutout(image, op.level, generator)
            else:
                image = _APPLY[op.name](self, image, op.level, generator)
        return image, label

    # ------------------------------------------------------------------ candidates
    def candidate(self, index: int, generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """One candidate of example ``index``: (normalised float (C, H, W), soft label (num_classes,))."""
        index = check_int("index", index, min=0, max=len(self.dataset) - 1)
        image, label = self.apply(self.draw_recipe(generator), self.dataset.image(index), self._onehot(index),
                                  generator)
        return self._normalize(image), label

    def candidates(self, indices: Sequence[int], per_example: int,
                   generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``per_example`` candidates of every index, example-major: images (K * L, C, H, W)
        and soft labels (K * L, num_classes)."""
        per_example = check_int("per_example", per_example, min=1)
        pairs = [self.candidate(int(i), generator) for i in indices for _ in range(per_example)]
        if not pairs:
            c, (h, w) = len(self._mean), self.dataset.image_size
            return torch.empty(0, c, h, w), torch.empty(0, self.num_classes)
        images, labels = zip(*pairs)
        return torch.stack(images), torch.stack(labels)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or image.dim() != 3:
            raise TypeError(f"Wu2020Augment expects a uint8 (C, H, W) image, got "
                            f"{getattr(image, 'dtype', type(image).__name__)} {tuple(getattr(image, 'shape', ()))}")
        return self._normalize(self.apply(self.draw_recipe(), image, None)[0])

    def __repr__(self) -> str:
        return (f"Wu2020Augment(num_comp={self.num_comp}, cutout_max={self.cutout_max}, "
                f"mixup_alpha={self.mixup_alpha}, "
                f"crop_padding={self.crop_padding}, translate_max={self.translate_max}, flip={self.flip})")

    # ------------------------------------------------------------------ steps
    def _onehot(self, index: int) -> torch.Tensor:
        label = torch.zeros(self.num_classes)
        label[int(self.dataset.targets[index])] = 1.0
        return label

    def _normalize(self, image: torch.Tensor) -> torch.Tensor:
        return TF.normalize(TF.to_dtype(image, torch.float32, scale=True), self._mean, self._std)

    def _crop(self, image: torch.Tensor, generator) -> torch.Tensor:
        h, w = image.shape[1:]
        pad = self.crop_padding
        padded = TF.pad(image, [pad], padding_mode="reflect") if pad else image
        top = int(torch.randint(2 * pad + 1, (), generator=generator))
        left = int(torch.randint(2 * pad + 1, (), generator=generator))
        return TF.crop(padded, top, left, h, w)

    def _cutout(self, image: torch.Tensor, level: float, generator) -> torch.Tensor:
        h, w = image.shape[1:]
        side = int(level * self.cutout_max)
        # dauphin draws the corner with np.random.uniform(width), i.e. uniform on (1, width] (numpy reads the
        # single argument as `low`, with high=1), then PIL's rectangle fills both end rows/columns
        cx = w - (w - 1) * float(torch.rand((), generator=generator))
        cy = h - (h - 1) * float(torch.rand((), generator=generator))
        x0, y0 = int(max(0.0, cx - side / 2.0)), int(max(0.0, cy - side / 2.0))
        x1, y1 = min(w, x0 + side), min(h, y0 + side)
        out = image.clone()
        if x0 < w and y0 < h:
            out[:, y0:y1 + 1, x0:x1 + 1] = self._cutout_color.view(-1, 1, 1)
        return out

    def _mixup(self, before: Sequence[Op], image: torch.Tensor, label: torch.Tensor,
               generator) -> Tuple[torch.Tensor, torch.Tensor]:
        # lam ~ Beta(alpha, alpha), np.random.beta in dauphin; numpy seeded from the generator keeps one stream
        lam = float(np.random.default_rng(int(torch.randint(2 ** 62, (), generator=generator)))
                    .beta(self.mixup_alpha, self.mixup_alpha))
        partner = int(torch.randint(len(self.dataset), (), generator=generator))
        other, other_label = self.apply(before, self.dataset.image(partner), self._onehot(partner), generator)
        # ToTensor -> mix -> ToPILImage in dauphin: the float mix is truncated back to uint8
        mixed = (lam * image.float() / 255 + (1 - lam) * other.float() / 255).mul(255).to(torch.uint8)
        return mixed, lam * label + (1 - lam) * other_label
