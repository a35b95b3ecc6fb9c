"""Augmentation presets: weak (crop + flip), strong (torchvision policies, Cutout, noise, perturb), and
the batch augmentations Mixup, CutMix and Manifold Mixup.

Every per-image preset maps an untransformed uint8 (C, H, W) tensor to a
normalised float32 tensor of the same size. Strong presets include the weak crop
and flip first, as in the coreset paper: weak augmentation applies to originals and
to augmented copies alike. Names may be joined with ``+`` ("autoaugment+cutout",
the refinement paper's intensive phase); ops run in the order uint8 policies ->
[0, 1] float ops (noise) -> normalisation -> Cutout (which, as in DeVries &
Taylor's code, zeroes the *normalised* image, i.e. paints the mean colour).
Every setting of a preset is a keyword of :func:`strong_transform` (and an
``augment.*`` key of the training config, :func:`strong_transform_for`); the
defaults are the papers' values, docs/training.md names their sources.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torchvision.transforms import v2

from augcore.checks import check_bool, check_choice, check_int, check_int_list, check_number
from augcore.data.formats import AUTOAUGMENT_POLICIES, format_of

STRONG_AUGMENTATIONS = ("autoaugment", "randaugment", "trivialaugment", "augmix", "cutout", "noise", "perturb",
                        "none", "wu2020")
# the coreset paper's released code (main.py -> augmix/imagenet.py: aug): severity 1, width 3, depth 1-3,
# Dirichlet/Beta coefficient 1, the ops without brightness/contrast/color/sharpness
AUGMIX_RELEASED = {"severity": 1, "width": 3, "depth": -1, "alpha": 1.0, "all_ops": False}
# the coreset paper's released main.py, --noise_only: ColorJitter(brightness=0.2), GaussianBlur(5) (sigma
# left at torchvision's (0.1, 2.0))
PERTURB_RELEASED = {"brightness": 0.2, "blur_kernel": 5, "blur_sigma": (0.1, 2.0)}


def cutout_size_for(dataset) -> int:
    """The Cutout side the papers use for ``dataset``: its format's ``cutout_size``, scaled with the image
    side (half the side for data sets no paper augments with Cutout)."""
    _check_dataset(dataset)
    return format_of(dataset.name).cutout_size_at(min(dataset.image_size))


def autoaugment_policy_for(dataset) -> str:
    """The AutoAugment policy of ``dataset``'s format: CIFAR10 for CIFAR, SVHN for SVHN, MNIST and digits,
    IMAGENET otherwise (the released code's for Caltech-256 and Tiny-ImageNet)."""
    _check_dataset(dataset)
    return format_of(dataset.name).autoaugment_policy


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


class GaussianNoise(v2.GaussianNoise):
    """torchvision's ``v2.GaussianNoise``: N(0, sigma^2) added to a [0, 1] float image, clamped back to
    [0, 1]. uint8 images are refused (v2 would scale the noise by 255): it runs after scaling to [0, 1]."""

    def __init__(self, sigma: float = 0.05):
        super().__init__(mean=0.0, sigma=check_number("noise sigma", sigma, min=0.0), clip=True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if not isinstance(image, torch.Tensor) or not image.is_floating_point():
            raise TypeError(f"GaussianNoise expects a float image in [0, 1], got "
                            f"{image.dtype if isinstance(image, torch.Tensor) else type(image).__name__}")
        return super().forward(image)

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
    if format_of(dataset.name).flip:
        ops.append(v2.RandomHorizontalFlip())
    return ops


def _to_float() -> Callable:
    return v2.ToDtype(torch.float32, scale=True)


def _normalize(dataset) -> Callable:
    return v2.Normalize(list(dataset.mean), list(dataset.std))


def weak_transform(dataset) -> Callable[[torch.Tensor], torch.Tensor]:
    """Random crop with padding (H/8; random-resized crop for images >= 128 px) and horizontal flip
    (where the format allows it: not for digits, MNIST or SVHN), then scaling to [0, 1] and normalisation."""
    _check_dataset(dataset)
    return v2.Compose(_geometry(dataset, True) + [_to_float(), _normalize(dataset)])


def eval_transform(dataset) -> Callable[[torch.Tensor], torch.Tensor]:
    """Scaling to [0, 1] and normalisation only."""
    _check_dataset(dataset)
    return v2.Compose([_to_float(), _normalize(dataset)])


def _check_sigma_range(name: str, sigma) -> Tuple[float, float]:
    if isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
        sigma = (sigma, sigma)
    if not isinstance(sigma, (list, tuple)) or len(sigma) != 2:
        raise ValueError(f"{name} must be a number or [min, max], got {sigma!r}")
    low = check_number(f"{name} (min)", sigma[0], min=0.0, min_inclusive=False)
    high = check_number(f"{name} (max)", sigma[1], min=low)
    return low, high


def strong_parts(name: str) -> Tuple[str, ...]:
    """The strong augmentations a name joins with ``+`` (``"autoaugment+cutout"``), lower-cased and
    checked: each one of :data:`STRONG_AUGMENTATIONS`, and ``wu2020`` only on its own."""
    if not isinstance(name, str):
        raise TypeError(f"name (the strong augmentation) must be a string such as 'autoaugment' or "
                        f"'autoaugment+cutout', got {name!r} ({type(name).__name__})")
    parts = tuple(p.strip().lower() for p in name.split("+"))
    unknown = [p for p in parts if p not in STRONG_AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown strong augmentation {unknown}; choose from {STRONG_AUGMENTATIONS} "
                         f"(several may be joined with '+', e.g. 'autoaugment+cutout'), got {name!r}")
    if "wu2020" in parts and len(parts) > 1:
        raise ValueError(f"'wu2020' is a whole augmentation (its own crop, flip, Cutout and Mixup) and cannot be "
                         f"joined with others, got {name!r}")
    return parts


def strong_transform(name: str, dataset, *, autoaugment_policy: Optional[str] = None,
                     cutout_size: Optional[int] = None, noise_sigma: float = 0.05,
                     augmix_severity: int = AUGMIX_RELEASED["severity"], augmix_width: int = AUGMIX_RELEASED["width"],
                     augmix_depth: int = AUGMIX_RELEASED["depth"], augmix_alpha: float = AUGMIX_RELEASED["alpha"],
                     augmix_all_ops: bool = AUGMIX_RELEASED["all_ops"],
                     perturb_brightness: float = PERTURB_RELEASED["brightness"],
                     perturb_blur_kernel: int = PERTURB_RELEASED["blur_kernel"],
                     perturb_blur_sigma=PERTURB_RELEASED["blur_sigma"]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The weak crop/flip followed by the strong augmentation(s) ``name`` (see module docstring).

    * ``autoaugment``: torchvision's AutoAugment with ``autoaugment_policy`` (cifar10 | imagenet |
      svhn; None: :func:`autoaugment_policy_for` the data set).
    * ``randaugment`` / ``trivialaugment``: torchvision defaults.
    * ``augmix``: ``v2.AugMix(severity, mixture_width, chain_depth, alpha, all_ops)`` from the
      ``augmix_*`` keywords; the defaults are the coreset paper's released code (severity 1, width 3,
      depth 1-3 at random (-1), alpha 1, without the all_ops extras).
    * ``cutout``: one square hole of side ``cutout_size`` (None: :func:`cutout_size_for` the data set:
      16 on CIFAR-10/100, 20 on SVHN, 32 on Tiny-ImageNet (64 px) and class folders (224 px)).
    * ``noise``: colour jitter (brightness/contrast/saturation 0.4) and Gaussian pixel noise of std
      ``noise_sigma`` on the [0, 1] image.
    * ``perturb``: the coreset paper's released noise perturbation: ``ColorJitter(brightness=
      perturb_brightness)`` then ``GaussianBlur(perturb_blur_kernel, perturb_blur_sigma)`` (0.2, 5,
      sigma drawn from [0.1, 2.0]).
    * ``none``: the weak augmentation only (copies that differ only by crop/flip).
    * ``wu2020``: Wu et al. 2020 as dauphin composes it (``augcore.data.wu2020.Wu2020Augment``;
      it brings its own crop and flip and cannot be joined with others). As a plain transform
      it gives one candidate without Mixup; training scores several (``augment.candidates``).
    """
    parts = strong_parts(name)
    _check_dataset(dataset)
    if cutout_size is not None:
        cutout_size = check_int("cutout_size", cutout_size, min=1)
    if autoaugment_policy is not None:
        if not isinstance(autoaugment_policy, str):
            raise TypeError(f"autoaugment_policy must be a policy name or None, got {autoaugment_policy!r}")
        autoaugment_policy = check_choice("autoaugment_policy (the AutoAugment policy)", autoaugment_policy.lower(),
                                          AUTOAUGMENT_POLICIES)
    noise_sigma = check_number("noise_sigma", noise_sigma, min=0.0)
    augmix = dict(severity=check_int("augmix_severity", augmix_severity, min=1, max=10),
                  mixture_width=check_int("augmix_width", augmix_width, min=1),
                  chain_depth=check_int("augmix_depth", augmix_depth, min=-1),
                  alpha=check_number("augmix_alpha", augmix_alpha, min=0.0, min_inclusive=False),
                  all_ops=check_bool("augmix_all_ops", augmix_all_ops))
    if augmix["chain_depth"] == 0:
        raise ValueError("augmix_depth must be >= 1, or -1 for a random depth in [1, 3]; got 0")
    perturb_brightness = check_number("perturb_brightness", perturb_brightness, min=0.0)
    perturb_blur_kernel = check_int("perturb_blur_kernel", perturb_blur_kernel, min=1)
    if perturb_blur_kernel % 2 == 0:
        raise ValueError(f"perturb_blur_kernel must be odd (a centred Gaussian kernel), got {perturb_blur_kernel}")
    perturb_blur_sigma = _check_sigma_range("perturb_blur_sigma", perturb_blur_sigma)
    if parts == ("wu2020",):
        from augcore.data.wu2020 import Wu2020Augment
        return Wu2020Augment(dataset)
    uint8_ops: List[Callable] = []
    float_ops: List[Callable] = []
    normalized_ops: List[Callable] = []
    for part in parts:
        if part == "autoaugment":
            policy = (autoaugment_policy or autoaugment_policy_for(dataset)).upper()
            uint8_ops.append(v2.AutoAugment(v2.AutoAugmentPolicy[policy]))
        elif part == "randaugment":
            uint8_ops.append(v2.RandAugment())
        elif part == "trivialaugment":
            uint8_ops.append(v2.TrivialAugmentWide())
        elif part == "augmix":
            uint8_ops.append(v2.AugMix(**augmix))
        elif part == "noise":
            uint8_ops.append(v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4))
            float_ops.append(GaussianNoise(noise_sigma))
        elif part == "perturb":
            uint8_ops.append(v2.ColorJitter(brightness=perturb_brightness))
            uint8_ops.append(v2.GaussianBlur(perturb_blur_kernel, sigma=perturb_blur_sigma))
        elif part == "cutout":
            normalized_ops.append(Cutout(cutout_size if cutout_size is not None else cutout_size_for(dataset)))
    return v2.Compose(_geometry(dataset, True) + uint8_ops + [_to_float()] + float_ops + [_normalize(dataset)]
                      + normalized_ops)


# the keyword of strong_transform each augment.* config key sets
STRONG_OPTION_KEYS = ("autoaugment_policy", "cutout_size", "noise_sigma", "augmix_severity", "augmix_width",
                      "augmix_depth", "augmix_alpha", "augmix_all_ops", "perturb_brightness", "perturb_blur_kernel",
                      "perturb_blur_sigma")


def strong_transform_for(augment, dataset) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`strong_transform` as a training config's ``augment`` section (or its ``.transforms`` part) sets
    it: ``augment.strong`` and the option keys of the same names, :data:`STRONG_OPTION_KEYS`."""
    return strong_transform(augment.strong, dataset, **{key: getattr(augment, key) for key in STRONG_OPTION_KEYS})


class StrongOrWeak:
    """``strong(image)`` with probability ``strength``, else ``weak(image)``: the strong augmentation
    weakened towards refinement (``refinement.weaken_epochs``). At strength 1 no coin is drawn, so the
    strong transform's random stream is untouched."""

    def __init__(self, strong: Callable, weak: Callable):
        for name, transform in (("strong", strong), ("weak", weak)):
            if not callable(transform):
                raise TypeError(f"{name} must be a callable transform, got {type(transform).__name__}")
        self.strong, self.weak = strong, weak
        self.strength = 1.0

    def set_strength(self, strength: float) -> None:
        self.strength = check_number("strength", strength, min=0.0, max=1.0)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if self.strength >= 1.0 or float(torch.rand(())) < self.strength:
            return self.strong(image)
        return self.weak(image)

    def __repr__(self) -> str:
        return f"StrongOrWeak(strength={self.strength}, strong={self.strong!r})"


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
    """A batch augmentation applied to a batch with probability ``prob`` (one uniform draw per batch,
    none when ``prob`` is 1), with draws from a numpy generator seeded with ``seed``."""

    def __init__(self, alpha: float, seed: Optional[int] = None, prob: float = 1.0):
        self.alpha = check_number(f"{type(self).__name__} alpha", alpha, min=0.0, min_inclusive=False)
        self.prob = check_number(f"{type(self).__name__} prob", prob, min=0.0, max=1.0)
        self._rng = np.random.default_rng(None if seed is None else check_int("seed", seed, min=0))

    def _applies(self) -> bool:
        return self.prob >= 1.0 or float(self._rng.random()) < self.prob

    def _draw(self, batch: int, device: torch.device) -> Tuple[float, torch.Tensor]:
        lam = float(self._rng.beta(self.alpha, self.alpha))
        perm = torch.from_numpy(self._rng.permutation(batch)).to(device)
        return lam, perm

    def forward_context(self):
        """Held around the batch's forward pass(es); only Manifold Mixup mixes inside the model."""
        return contextlib.nullcontext()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha}, prob={self.prob})"


class Mixup(_BatchMix):
    """Zhang et al.: x = lam x + (1 - lam) x[perm], y likewise, lam ~ Beta(alpha, alpha), perm a random
    permutation of the batch (their released code's ``torch.randperm``)."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        _check_batch(x, y, "Mixup")
        if not self._applies():
            return x, y
        lam, perm = self._draw(x.shape[0], x.device)
        return lam * x + (1.0 - lam) * x[perm], lam * y + (1.0 - lam) * y[perm]


class CutMix(_BatchMix):
    """Yun et al. (as released): a box of area (1 - lam) H W, lam ~ Beta(alpha, alpha), centred uniformly
    and clipped at the border, is pasted from x[perm]; the label weight is the pasted area actually kept.
    Their released code applies it to a batch with probability ``cutmix_prob`` (``prob`` here)."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        _check_batch(x, y, "CutMix")
        if not self._applies():
            return x, y
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


# Verma et al.'s released code (vikasverma1077/manifold_mixup, supervised/models: layer_mix =
# random.randint(0, 2)): the input, or the output of the first or second residual stage
MANIFOLD_MIXUP_LAYERS = (0, 1, 2)


class ManifoldMixup(_BatchMix):
    """Manifold Mixup (Verma et al., ICML 2019): per batch, one mixing point k drawn uniformly from
    ``layers``; k = 0 mixes the input as Mixup does, k >= 1 the output of the model's k-th mixing point
    (``augcore.models.mixing_points``: its residual stages), h = lam h + (1 - lam) h[perm], with lam ~
    Beta(alpha, alpha) and the labels mixed alike.

    ``__call__(x, y)`` draws lam, perm and k and returns the (input-mixed, for k = 0) batch and the
    mixed labels; the forward passes inside ``forward_context()`` then mix at point k (a forward hook,
    removed on exit; SAM's two passes mix alike)."""

    def __init__(self, model: torch.nn.Module, alpha: float, seed: Optional[int] = None, prob: float = 1.0,
                 layers: Sequence[int] = MANIFOLD_MIXUP_LAYERS):
        super().__init__(alpha, seed, prob)
        from augcore.models import mixing_points

        points = mixing_points(model)
        layers = check_int_list("manifold_mixup_layers", layers, min=0)
        if not layers or max(layers) > len(points):
            raise ValueError(f"manifold_mixup_layers must name mixing points in [0, {len(points)}] (0: the input; "
                             f"{type(model).__name__}'s points: {', '.join(points)}), got {layers}")
        self.layers = layers
        self.modules = [model.get_submodule(name) for name in points]
        self._pending: Optional[Tuple[torch.nn.Module, float, torch.Tensor]] = None
        self.last_layer: Optional[int] = None   # the mixing point of the last mixed batch (None: unmixed)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        _check_batch(x, y, "ManifoldMixup")
        self._pending, self.last_layer = None, None
        if not self._applies():
            return x, y
        lam, perm = self._draw(x.shape[0], x.device)
        layer = self.layers[int(self._rng.integers(len(self.layers)))]
        self.last_layer = layer
        if layer == 0:
            x = lam * x + (1.0 - lam) * x[perm]
        else:
            self._pending = (self.modules[layer - 1], lam, perm)
        return x, lam * y + (1.0 - lam) * y[perm]

    @contextlib.contextmanager
    def forward_context(self):
        if self._pending is None:
            yield
            return
        module, lam, perm = self._pending

        def mix(_module, _inputs, output):
            return lam * output + (1.0 - lam) * output[perm]

        handle = module.register_forward_hook(mix)
        try:
            yield
        finally:
            handle.remove()

    def __repr__(self) -> str:
        return f"ManifoldMixup(alpha={self.alpha}, prob={self.prob}, layers={self.layers})"
