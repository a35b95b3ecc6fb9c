"""The paper's learned transformation: generator G, its two critics, WGAN-GP pre-training, and E.

"Learning to Augment Influential Data" (ICLR 2019 submission), Sec. 4 and Appendices A-B:

* **G** (:class:`TransformGenerator`) maps tau in R^128 to per-pixel transformation maps
  through a linear layer and transposed convolutions (App. A): 4 + 2 spatial channels
  (sw, the 2x2 matrix of Eq. 20 at every pixel, and sb) and C x C + C appearance channels
  (a 1x1 filter cw and bias cb at every pixel, Sec. 4.2): 8 maps for grey images, 18 for
  RGB, as App. A's output layers. The flow s = sw p + sb + p and the appearance maps are
  smoothed by average pooling, the image is warped bilinearly by s, then x~ = x + cw x + cb.
* **Critics** (:class:`Critic`, App. A's D): one tells real images x from transformed ones
  x~ = G(x, tau); one tells G's flow fields from random affine flow fields
  (:func:`random_affine_displacement`). Both see the displacement s - p, the flow less
  the identity (a fixed shift of s, so the same information).
* **WGAN-GP** (Gulrajani et al.): :func:`critic_loss` = mean D(fake) - mean D(real) +
  lambda GP, :func:`gradient_penalty` GP = mean_i (||grad D(x^_i)||_2 - 1)^2 at
  x^_i = a_i real_i + (1 - a_i) fake_i, a_i ~ U(0, 1); :func:`generator_loss` = -mean D(fake).
  To keep G away from the identity, G's loss adds the inverse mean-square error of the
  flow (against no displacement) and of the image (against x): :func:`inverse_mse`.
* :func:`pretrain_generator` trains G and the critics (Adam lr 1e-4, betas (0.5, 0.9),
  batch 128: App. B), checkpointing atomically so a killed run resumes exactly;
  :func:`save_generator` / :func:`load_generator` write and read G as a checksummed file.
* **E** (:class:`Estimator`): convolutions, a linear layer and tanh to tau (App. A);
  :class:`GeneratorAugmenter` is E followed by the frozen G, the augmenter that
  ``augcore.influence.learner.train_augmenter`` trains (Adam lr 0.01, betas (0.9, 0.99):
  :data:`PAPER_ESTIMATOR_OPTIMISER`).

Where the paper is silent, the values here are ours and say so: the prior of tau during
pre-training (uniform on [-1, 1]^128, the range of E's tanh), the random affine ranges,
the weight of the inverse-MSE term, the critic steps per G step (5, WGAN-GP's default),
the gradient-penalty weight (10, WGAN-GP's default), the pooling window (3), the paddings
(the table gives kernel and stride only; ours keep App. A's sizes 28 -> 14 -> 7 and
32 -> 16 -> 8 -> 4), and no activation after G's first linear layer (App. A lists none).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from augcore.checks import CorruptFileError, check_bool, check_int, check_number
from augcore.influence.transforms import colour_transform, displacement_warp, flow_displacement, identity_grid
from augcore.io import atomic_torch_save, atomic_write_text, load_torch_file

PathLike = Union[str, os.PathLike]

LATENT_DIM = 128                      # tau in R^128 (Sec. 5.2, 5.3)
SPATIAL_CHANNELS = 6                  # sw (2x2 per pixel) + sb (2): "4 + 2 channels" (Sec. 4.1)
PAPER_GENERATOR_OPTIMISER = {"lr": 1e-4, "betas": (0.5, 0.9), "batch_size": 128}   # G and D, App. B
PAPER_ESTIMATOR_OPTIMISER = {"lr": 0.01, "betas": (0.9, 0.99), "batch_size": 128}  # E, App. B
GENERATOR_FORMAT = "augcore-transform-generator"
PRETRAINING_FORMAT = "augcore-generator-pretraining"
FORMAT_VERSION = 1


def appearance_channels(channels: int) -> int:
    """cw (C x C) + cb (C): 2 for grey images, 12 for RGB (App. A's 8 = 6 + 2 and 18 = 6 + 12)."""
    return channels * channels + channels


def default_widths(height: int, width: int) -> Tuple[int, ...]:
    """G's channel widths from its first (smallest) feature map to its last, as App. A.

    28x28 (MNIST): (64, 32, 16), 32x32 (CIFAR-10): (128, 64, 32, 16). Other sizes (not in
    the paper): one stride-2 stage per halving while both sides stay even and at least 4,
    at most three, widths 16 * 2^k (8x8 digits: (32, 16)). E and the critics use the
    reverse order.
    """
    height = check_int("height", height, min=1)
    width = check_int("width", width, min=1)
    stages = 0
    while stages < 3 and height % 2 == 0 and width % 2 == 0 and height // 2 >= 4 and width // 2 >= 4:
        height, width, stages = height // 2, width // 2, stages + 1
    return tuple(16 * 2 ** k for k in range(stages, -1, -1))


def _check_widths(widths: Optional[Sequence[int]], height: int, width: int) -> Tuple[int, ...]:
    if widths is None:
        return default_widths(height, width)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, (list, tuple)) or not widths:
        raise TypeError(f"widths must be a non-empty list of channel counts, got {widths!r}")
    widths = tuple(check_int(f"widths[{i}]", w, min=1) for i, w in enumerate(widths))
    scale = 2 ** (len(widths) - 1)
    if height % scale or width % scale:
        raise ValueError(f"widths: {len(widths) - 1} stride-2 stages need the image sides divisible by {scale}, "
                         f"got {height}x{width}")
    return widths


def _encoder_widths(widths: Optional[Sequence[int]], height: int, width: int) -> Tuple[int, ...]:
    """E's and D's widths, first convolution first: G's reversed unless given."""
    return default_widths(height, width)[::-1] if widths is None else _check_widths(widths, height, width)


def _conv_stack(in_channels: int, widths: Sequence[int], activation) -> nn.Sequential:
    """App. A's E and D trunk: 4x4 convolutions, the first stride 1, the others stride 2 (halving)."""
    layers: List[nn.Module] = []
    for i, out_channels in enumerate(widths):
        if i == 0:  # stride 1 keeps the size: pad 1 before and 2 after (what padding="same" does, minus its warning)
            layers += [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(in_channels, out_channels, 4, stride=1)]
        else:
            layers.append(nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1))
        layers.append(activation())
        in_channels = out_channels
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def _check_shape(channels: int, height: int, width: int) -> Tuple[int, int, int]:
    return tuple(check_int(n, v, min=1) for n, v in (("channels", channels), ("height", height), ("width", width)))


def _check_images(images: torch.Tensor, shape: Tuple[int, int, int], name: str = "images") -> None:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError(f"{name} must be a float (B, C, H, W) tensor, got "
                        f"{images.dtype if isinstance(images, torch.Tensor) else type(images).__name__}")
    if images.dim() != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise ValueError(f"{name}: expected (B, {', '.join(map(str, shape))}), got {tuple(images.shape)}")


# --------------------------------------------------------------------------- the networks

class TransformGenerator(nn.Module):
    """G: tau (B, latent_dim) -> per-pixel transformation maps; ``G(x, tau)`` transforms images.

    App. A: Linear(latent_dim -> widths[0] * h0 * w0), reshape, stride-2 4x4 transposed
    convolutions with ReLU through ``widths``, a last stride-1 4x4 transposed convolution
    with no activation to 6 + C^2 + C maps of the image size. ``smoothing`` (odd) is the
    average-pooling window applied to the displacement and the appearance maps (the
    paper pools them; it gives no size).
    """

    def __init__(self, channels: int, height: int, width: int, *, latent_dim: int = LATENT_DIM,
                 widths: Optional[Sequence[int]] = None, smoothing: int = 3):
        super().__init__()
        channels, height, width = _check_shape(channels, height, width)
        latent_dim = check_int("latent_dim", latent_dim, min=1)
        widths = _check_widths(widths, height, width)
        smoothing = check_int("smoothing", smoothing, min=1)
        if smoothing % 2 == 0:
            raise ValueError(f"smoothing must be an odd window size >= 1, got {smoothing}")
        self.shape = (channels, height, width)
        self.latent_dim, self.widths, self.smoothing = latent_dim, widths, smoothing
        scale = 2 ** (len(widths) - 1)
        self.base = (height // scale, width // scale)
        self.project = nn.Linear(latent_dim, widths[0] * self.base[0] * self.base[1])
        layers: List[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.ReLU()]
        # stride 1, kernel 4, padding 1 gives one row and column more than the image; the last are cut
        layers.append(nn.ConvTranspose2d(widths[-1], SPATIAL_CHANNELS + appearance_channels(channels), 4,
                                         stride=1, padding=1))
        self.decode = nn.Sequential(*layers)

    def config(self) -> Dict:
        """The constructor's arguments (what :func:`save_generator` stores beside the weights)."""
        channels, height, width = self.shape
        return {"channels": channels, "height": height, "width": width, "latent_dim": self.latent_dim,
                "widths": list(self.widths), "smoothing": self.smoothing}

    def _check_tau(self, tau: torch.Tensor) -> None:
        if not isinstance(tau, torch.Tensor) or not tau.is_floating_point():
            raise TypeError(f"tau must be a float (B, {self.latent_dim}) tensor, got "
                            f"{tau.dtype if isinstance(tau, torch.Tensor) else type(tau).__name__}")
        if tau.dim() != 2 or tau.shape[1] != self.latent_dim:
            raise ValueError(f"tau: expected (B, {self.latent_dim}), got {tuple(tau.shape)}")

    def transformation(self, tau: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The smoothed maps: ``displacement`` s - p (B, 2, H, W), ``mix`` cw (B, C, C, H, W), ``shift`` cb (B, C, H, W)."""
        self._check_tau(tau)
        channels, height, width = self.shape
        hidden = self.project(tau).view(tau.shape[0], self.widths[0], *self.base)
        maps = self.decode(hidden)[:, :, :height, :width]
        displacement = flow_displacement(maps[:, :4], maps[:, 4:6], self.smoothing)
        colour = maps[:, SPATIAL_CHANNELS:]
        if self.smoothing > 1:
            colour = F.avg_pool2d(colour, self.smoothing, stride=1, padding=self.smoothing // 2,
                                  count_include_pad=False)
        mix = colour[:, :channels * channels].reshape(tau.shape[0], channels, channels, height, width)
        return {"displacement": displacement, "mix": mix, "shift": colour[:, channels * channels:]}

    def apply_transformation(self, images: torch.Tensor, maps: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Warp by the displacement, then the per-pixel appearance filter (Fig. 2 / Fig. 4's order)."""
        warped = displacement_warp(images, maps["displacement"])
        return colour_transform(warped, maps["mix"], maps["shift"])

    def forward(self, images: torch.Tensor, tau: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """(x~ = G(x, tau), the maps)."""
        _check_images(images, self.shape)
        self._check_tau(tau)
        if tau.shape[0] != images.shape[0]:
            raise ValueError(f"tau has {tau.shape[0]} rows but images has {images.shape[0]}")
        maps = self.transformation(tau)
        return self.apply_transformation(images, maps), maps


class Critic(nn.Module):
    """D of App. A: 4x4 convolutions (the first stride 1, then stride 2) with LeakyReLU 0.2, then
    Linear -> one score per example. No normalisation layer: the gradient penalty is per example.
    ``widths``: first convolution first (default: G's widths reversed, App. A's 16, 32, 64 on MNIST)."""

    def __init__(self, in_channels: int, height: int, width: int, *, widths: Optional[Sequence[int]] = None):
        super().__init__()
        in_channels, height, width = _check_shape(in_channels, height, width)
        widths = _encoder_widths(widths, height, width)
        self.shape = (in_channels, height, width)
        scale = 2 ** (len(widths) - 1)
        self.features = _conv_stack(in_channels, widths, lambda: nn.LeakyReLU(0.2))
        self.score = nn.Linear(widths[-1] * (height // scale) * (width // scale), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) scores."""
        _check_images(x, self.shape, "critic input")
        return self.score(self.features(x)).squeeze(1)


class Estimator(nn.Module):
    """E of App. A: 4x4 convolutions (the first stride 1, then stride 2) with ReLU, Linear -> tau, tanh.

    MNIST (28x28): 16, 32, 64 channels and 7x7x64 -> 128; CIFAR-10 (32x32): 16, 32, 64, 128
    and 4x4x128 -> 128 (:func:`default_widths`, reversed).
    """

    def __init__(self, channels: int, height: int, width: int, *, latent_dim: int = LATENT_DIM,
                 widths: Optional[Sequence[int]] = None):
        super().__init__()
        channels, height, width = _check_shape(channels, height, width)
        latent_dim = check_int("latent_dim", latent_dim, min=1)
        widths = _encoder_widths(widths, height, width)
        self.shape, self.latent_dim = (channels, height, width), latent_dim
        scale = 2 ** (len(widths) - 1)
        self.features = _conv_stack(channels, widths, nn.ReLU)
        self.to_latent = nn.Linear(widths[-1] * (height // scale) * (width // scale), latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.shape)
        return torch.tanh(self.to_latent(self.features(x)))


class GeneratorAugmenter(nn.Module):
    """The paper's augmenter x~ = G(x, E(x)): a trainable :class:`Estimator` and a frozen G.

    ``forward(x) -> (x~, {"tau", "displacement", "mix", "shift"})``, the interface of
    ``train_augmenter`` and the training policy. G's parameters never receive gradients
    (``requires_grad`` off) and G stays in eval mode whatever ``train()`` says.
    """

    def __init__(self, generator: TransformGenerator, estimator: Optional[Estimator] = None):
        super().__init__()
        if not isinstance(generator, TransformGenerator):
            raise TypeError(f"generator must be a TransformGenerator, got {type(generator).__name__}")
        channels, height, width = generator.shape
        if estimator is None:
            estimator = Estimator(channels, height, width, latent_dim=generator.latent_dim,
                                  widths=generator.widths[::-1])
        if not isinstance(estimator, Estimator):
            raise TypeError(f"estimator must be an Estimator, got {type(estimator).__name__}")
        if estimator.shape != generator.shape or estimator.latent_dim != generator.latent_dim:
            raise ValueError(f"estimator (image {estimator.shape}, tau {estimator.latent_dim}) does not match the "
                             f"generator (image {generator.shape}, tau {generator.latent_dim})")
        self.estimator = estimator
        self.generator = generator.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "GeneratorAugmenter":
        super().train(mode)
        self.generator.eval()
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        tau = self.estimator(x)
        augmented, maps = self.generator(x, tau)
        return augmented, {"tau": tau, **maps}


# --------------------------------------------------------------------------- WGAN-GP losses

def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, *,
                     alpha: Optional[torch.Tensor] = None,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """WGAN-GP's penalty mean_i (||grad_x D(x^_i)||_2 - 1)^2 at x^_i = a_i real_i + (1 - a_i) fake_i.

    ``alpha`` (B,) in [0, 1], else drawn U(0, 1) from ``generator`` (on the CPU, then moved).
    Differentiable in the critic's parameters (``create_graph``), so the critic's loss
    gradient includes it. The gradient of the summed scores is every example's own input
    gradient only when the critic treats examples independently (no batch norm), as
    :class:`Critic` does.
    """
    if not isinstance(real, torch.Tensor) or not isinstance(fake, torch.Tensor) or real.shape != fake.shape:
        raise ValueError(f"real and fake must be tensors of one shape, got "
                         f"{getattr(real, 'shape', type(real).__name__)} and {getattr(fake, 'shape', type(fake).__name__)}")
    if real.dim() < 2 or real.shape[0] == 0:
        raise ValueError(f"real/fake: expected a non-empty batch (B, ...), got shape {tuple(real.shape)}")
    batch = real.shape[0]
    if alpha is None:
        alpha = torch.rand(batch, generator=generator, dtype=real.dtype)
    if not isinstance(alpha, torch.Tensor) or alpha.shape != (batch,):
        raise ValueError(f"alpha: expected a ({batch},) tensor, got {getattr(alpha, 'shape', type(alpha).__name__)}")
    alpha = alpha.to(device=real.device, dtype=real.dtype).view(batch, *([1] * (real.dim() - 1)))
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    grads, = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grads.flatten(1).norm(dim=1) - 1).pow(2).mean()


def critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, *, gp_weight: float = 10.0,
                alpha: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
    """(mean D(fake) - mean D(real) + gp_weight * GP, {"wasserstein": mean D(real) - mean D(fake), "penalty": GP}).

    ``fake`` is detached: this loss trains the critic only.
    """
    gp_weight = check_number("gp_weight", gp_weight, min=0.0)
    fake = fake.detach()
    distance = critic(real).mean() - critic(fake).mean()
    penalty = gradient_penalty(critic, real, fake, alpha=alpha, generator=generator)
    return -distance + gp_weight * penalty, {"wasserstein": distance.item(), "penalty": penalty.item()}


def generator_loss(critic: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """WGAN's generator loss -mean D(fake)."""
    return -critic(fake).mean()


def inverse_mse(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """mean_i 1 / (mean((a_i - b_i)^2) + eps): large when G's output stays near the identity.

    Per example, so no example may collapse to the identity while others move; ``eps``
    bounds the term (the paper gives neither form nor constant).
    """
    eps = check_number("eps", eps, min=0.0, min_inclusive=False)
    if a.shape != b.shape or a.dim() < 1:
        raise ValueError(f"inverse_mse: shapes differ or are empty: {tuple(a.shape)} and {tuple(b.shape)}")
    return (1.0 / ((a - b).pow(2).flatten(1).mean(1) + eps)).mean()


# --------------------------------------------------------------------------- random affine flows

@dataclass
class AffineRanges:
    """Ranges of the random affine transforms whose flows the flow critic takes as real.

    The paper says "random affine transforms" and no more; these are ours, moderate and
    label-preserving for digits: rotation +-``rotation`` degrees, isotropic scale in
    ``scale``, shear +-``shear`` degrees, translation +-``translate`` of the image side.
    """

    rotation: float = 15.0
    scale: Tuple[float, float] = (0.9, 1.1)
    shear: float = 10.0
    translate: float = 0.1

    def check(self) -> "AffineRanges":
        check_number("rotation", self.rotation, min=0.0, max=180.0)
        check_number("shear", self.shear, min=0.0, max=80.0)
        check_number("translate", self.translate, min=0.0, max=1.0)
        if not isinstance(self.scale, (tuple, list)) or len(self.scale) != 2:
            raise ValueError(f"scale must be a (low, high) pair, got {self.scale!r}")
        low = check_number("scale[0]", self.scale[0], min=0.0, min_inclusive=False)
        high = check_number("scale[1]", self.scale[1], min=low)
        self.scale = (low, high)
        return self


def random_affine_displacement(batch: int, height: int, width: int, *, ranges: Optional[AffineRanges] = None,
                               generator: Optional[torch.Generator] = None, dtype: torch.dtype = torch.float32,
                               device: Optional[torch.device] = None) -> torch.Tensor:
    """(B, 2, H, W) displacements A p + t - p of random affine maps (``F.affine_grid``), normalised (x, y).

    A = scale * R(rotation) * [[1, tan(shear)], [0, 1]]; t in normalised units (2 = the side).
    Drawn on the CPU from ``generator``.
    """
    batch = check_int("batch", batch, min=1)
    ranges = (ranges or AffineRanges()).check()

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator, dtype=torch.float64)

    angle = torch.deg2rad(uniform(-ranges.rotation, ranges.rotation))
    shear = torch.tan(torch.deg2rad(uniform(-ranges.shear, ranges.shear)))
    scale = uniform(*ranges.scale)
    shift = torch.stack([uniform(-2 * ranges.translate, 2 * ranges.translate) for _ in range(2)], 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, cos * shear - sin, shift[:, 0]], 1),
                         torch.stack([sin, sin * shear + cos, shift[:, 1]], 1)], 1)
    theta[:, :, :2] *= scale[:, None, None]
    grid = F.affine_grid(theta, [batch, 1, height, width], align_corners=True)
    displacement = grid - identity_grid(batch, height, width, torch.float64)
    return displacement.permute(0, 3, 1, 2).to(dtype=dtype, device=device).contiguous()


# --------------------------------------------------------------------------- saving G

def save_generator(generator: TransformGenerator, path: PathLike) -> None:
    """Writes G (its constructor arguments and weights) atomically, with a checksum."""
    if not isinstance(generator, TransformGenerator):
        raise TypeError(f"generator must be a TransformGenerator, got {type(generator).__name__}")
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    atomic_torch_save({"format": GENERATOR_FORMAT, "version": FORMAT_VERSION, "config": generator.config(),
                       "state_dict": state}, path)


def _generator_from_record(record, path: PathLike) -> TransformGenerator:
    if not isinstance(record, dict) or record.get("format") != GENERATOR_FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise CorruptFileError(path, f"not an augcore transformation generator (format {GENERATOR_FORMAT!r}); "
                                     f"found {found!r}")
    if record.get("version") != FORMAT_VERSION:
        raise CorruptFileError(path, f"generator file version {record.get('version')!r}; this augcore reads "
                                     f"version {FORMAT_VERSION}")
    config = dict(record["config"])
    generator = TransformGenerator(config.pop("channels"), config.pop("height"), config.pop("width"), **config)
    try:
        generator.load_state_dict(record["state_dict"])
    except RuntimeError as exc:
        raise CorruptFileError(path, f"weights do not match the stored configuration: {exc}") from None
    return generator


def load_generator(path: PathLike) -> TransformGenerator:
    """G from a :func:`save_generator` file, its checksum verified (``CorruptFileError`` naming the file)."""
    return _generator_from_record(load_torch_file(path, what="transformation generator", weights_only=True), path)


# --------------------------------------------------------------------------- pre-training G

@dataclass
class PretrainSettings:
    """G's WGAN-GP pre-training. ``steps``: G updates (the paper gives none; ``critic_steps``
    critic updates precede each); ``lr``, ``betas``, ``batch_size``: App. B's G and D."""

    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-4
    betas: Tuple[float, float] = (0.5, 0.9)
    critic_steps: int = 5
    gp_weight: float = 10.0
    inverse_weight: float = 0.01
    inverse_eps: float = 1e-3
    affine: AffineRanges = field(default_factory=AffineRanges)
    seed: int = 0

    def check(self) -> "PretrainSettings":
        check_int("steps", self.steps, min=1)
        check_int("batch_size", self.batch_size, min=1)
        check_number("lr", self.lr, min=0.0, min_inclusive=False)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair, got {self.betas!r}")
        self.betas = tuple(check_number(f"betas[{i}]", b, min=0.0, max=1.0, max_inclusive=False)
                           for i, b in enumerate(self.betas))
        check_int("critic_steps", self.critic_steps, min=1)
        check_number("gp_weight", self.gp_weight, min=0.0)
        check_number("inverse_weight", self.inverse_weight, min=0.0)
        check_number("inverse_eps", self.inverse_eps, min=0.0, min_inclusive=False)
        if not isinstance(self.affine, AffineRanges):
            raise TypeError(f"affine must be an AffineRanges, got {type(self.affine).__name__}")
        self.affine.check()
        check_int("seed", self.seed, min=0)
        return self

    def fingerprint(self) -> Dict:
        """Everything but ``steps``: what a resumed run must share with the checkpoint (steps may grow)."""
        data = asdict(self)
        data.pop("steps")
        data["betas"] = list(data["betas"])
        data["affine"]["scale"] = list(data["affine"]["scale"])
        return data


@dataclass
class PretrainResult:
    generator: TransformGenerator
    image_critic: Critic
    flow_critic: Critic
    records: List[Dict[str, float]]   # one per G step
    resumed_from: int                 # G steps already done when this call started (0: a fresh run)


class _Pretraining:
    """G, both critics, their optimisers and the sampling generator: everything a resume needs."""

    def __init__(self, shape: Tuple[int, int, int], settings: PretrainSettings, generator_kwargs: Dict,
                 device: torch.device):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)  # initial weights from the seed, the global RNG untouched
            self.generator = TransformGenerator(*shape, **generator_kwargs)
            widths = self.generator.widths
            self.image_critic = Critic(shape[0], shape[1], shape[2], widths=widths[::-1])
            self.flow_critic = Critic(2, shape[1], shape[2], widths=widths[::-1])
        for module in (self.generator, self.image_critic, self.flow_critic):
            module.to(device)
        critics = list(self.image_critic.parameters()) + list(self.flow_critic.parameters())
        self.critic_optimiser = torch.optim.Adam(critics, lr=settings.lr, betas=settings.betas)
        self.generator_optimiser = torch.optim.Adam(self.generator.parameters(), lr=settings.lr, betas=settings.betas)
        self.sampler = torch.Generator().manual_seed(settings.seed)
        self.step = 0
        self.records: List[Dict[str, float]] = []

    def state_dict(self, settings: PretrainSettings) -> Dict:
        return {"format": PRETRAINING_FORMAT, "version": FORMAT_VERSION, "settings": settings.fingerprint(),
                "generator_config": self.generator.config(), "step": self.step, "records": self.records,
                "generator": self.generator.state_dict(), "image_critic": self.image_critic.state_dict(),
                "flow_critic": self.flow_critic.state_dict(),
                "critic_optimiser": self.critic_optimiser.state_dict(),
                "generator_optimiser": self.generator_optimiser.state_dict(), "sampler": self.sampler.get_state()}

    def load_state_dict(self, state: Dict, settings: PretrainSettings, path: PathLike) -> None:
        if not isinstance(state, dict) or state.get("format") != PRETRAINING_FORMAT:
            raise CorruptFileError(path, f"not an augcore generator pre-training checkpoint "
                                         f"(format {PRETRAINING_FORMAT!r})")
        for what, ours, theirs in (("settings", settings.fingerprint(), state["settings"]),
                                   ("generator", self.generator.config(), state["generator_config"])):
            differ = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
            if differ:
                raise ValueError(f"checkpoint {os.fspath(path)} was written with other {what}: {', '.join(differ)} "
                                 f"differ ({ {k: theirs.get(k) for k in differ} } there, "
                                 f"{ {k: ours.get(k) for k in differ} } here); use another checkpoint path")
        self.generator.load_state_dict(state["generator"])
        self.image_critic.load_state_dict(state["image_critic"])
        self.flow_critic.load_state_dict(state["flow_critic"])
        self.critic_optimiser.load_state_dict(state["critic_optimiser"])
        self.generator_optimiser.load_state_dict(state["generator_optimiser"])
        self.sampler.set_state(state["sampler"])
        self.step, self.records = int(state["step"]), list(state["records"])


def _batch(images: torch.Tensor, state: _Pretraining, settings: PretrainSettings):
    rows = torch.randint(images.shape[0], (settings.batch_size,), generator=state.sampler)
    tau = 2 * torch.rand(settings.batch_size, state.generator.latent_dim, generator=state.sampler) - 1
    device = next(state.generator.parameters()).device
    return images[rows].to(device), tau.to(device=device, dtype=images.dtype)


def _pretrain_step(images: torch.Tensor, state: _Pretraining, settings: PretrainSettings) -> Dict[str, float]:
    g, d_image, d_flow = state.generator, state.image_critic, state.flow_critic
    _, height, width = g.shape
    record: Dict[str, float] = {}
    for _ in range(settings.critic_steps):
        real, tau = _batch(images, state, settings)
        with torch.no_grad():
            fake, maps = g(real, tau)
        affine = random_affine_displacement(settings.batch_size, height, width, ranges=settings.affine,
                                            generator=state.sampler, dtype=real.dtype, device=real.device)
        image_loss, image_parts = critic_loss(d_image, real, fake, gp_weight=settings.gp_weight,
                                              generator=state.sampler)
        flow_loss, flow_parts = critic_loss(d_flow, affine, maps["displacement"], gp_weight=settings.gp_weight,
                                            generator=state.sampler)
        state.critic_optimiser.zero_grad(set_to_none=True)
        (image_loss + flow_loss).backward()
        state.critic_optimiser.step()
    record.update(image_wasserstein=image_parts["wasserstein"], image_penalty=image_parts["penalty"],
                  flow_wasserstein=flow_parts["wasserstein"], flow_penalty=flow_parts["penalty"])
    real, tau = _batch(images, state, settings)
    fake, maps = g(real, tau)
    adversarial = generator_loss(d_image, fake) + generator_loss(d_flow, maps["displacement"])
    inverse = (inverse_mse(maps["displacement"], torch.zeros_like(maps["displacement"]), settings.inverse_eps)
               + inverse_mse(fake, real, settings.inverse_eps))
    loss = adversarial + settings.inverse_weight * inverse
    state.generator_optimiser.zero_grad(set_to_none=True)
    loss.backward()
    state.generator_optimiser.step()
    state.critic_optimiser.zero_grad(set_to_none=True)  # G's backward left gradients on the critics
    record.update(generator_adversarial=adversarial.item(), generator_inverse_mse=inverse.item(),
                  generator_loss=loss.item(),
                  mean_displacement=maps["displacement"].detach().pow(2).sum(1).sqrt().mean().item())
    if not all(math.isfinite(v) for v in record.values()):
        raise FloatingPointError(f"generator pre-training diverged at step {state.step}: {record}; lower lr or "
                                 "inverse_weight")
    return record


def pretrain_generator(images: torch.Tensor, settings: Optional[PretrainSettings] = None, *,
                       generator_kwargs: Optional[Dict] = None, checkpoint: Optional[PathLike] = None,
                       checkpoint_every: int = 100, stop_after: Optional[int] = None,
                       log_path: Optional[PathLike] = None, device: Union[str, torch.device, None] = None,
                       progress: bool = True) -> PretrainResult:
    """Trains G and its two critics with WGAN-GP on ``images`` (N, C, H, W), as normalised for training.

    ``generator_kwargs``: :class:`TransformGenerator` options (``widths``, ``smoothing``,
    ``latent_dim``). ``checkpoint``: a file written atomically every ``checkpoint_every``
    G steps and at the end; when it exists, the run resumes from it (bitwise the same
    as an uninterrupted run on the same device) after checking that it was written
    with the same settings (``steps`` may differ: a finished run can be extended).
    ``stop_after``: stop after this many G steps in total (for tests of resume).
    ``log_path``: JSON lines, one record per G step, rewritten at each checkpoint.
    """
    settings = (settings or PretrainSettings()).check()
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4:
        raise TypeError(f"images must be a float (N, C, H, W) tensor, got "
                        f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if images.shape[0] == 0:
        raise ValueError("images is empty: G's pre-training needs at least one image")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contains NaN or inf")
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, min=1)
    if stop_after is not None:
        stop_after = check_int("stop_after", stop_after, min=0)
    progress = check_bool("progress", progress)
    generator_kwargs = dict(generator_kwargs or {})
    device = torch.device(device) if device is not None else images.device
    state = _Pretraining(tuple(images.shape[1:]), settings, generator_kwargs, device)
    if checkpoint is not None and os.path.exists(checkpoint):
        state.load_state_dict(load_torch_file(checkpoint, what="generator pre-training checkpoint"),
                              settings, checkpoint)
    resumed_from = state.step
    images = images.cpu()

    def save() -> None:
        if checkpoint is not None:
            atomic_torch_save(state.state_dict(settings), checkpoint)
        if log_path is not None:
            atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in state.records))

    last = settings.steps if stop_after is None else min(settings.steps, stop_after)
    with tqdm(total=settings.steps, initial=state.step, desc="pretrain G", disable=not progress) as bar:
        while state.step < last:
            record = _pretrain_step(images, state, settings)
            state.records.append({"step": state.step, **record})
            state.step += 1
            bar.update(1)
            if state.step % checkpoint_every == 0 or state.step == last:
                save()
    if state.step == resumed_from:
        save()  # nothing left to train: still write what was asked for
    for module in (state.generator, state.image_critic, state.flow_critic):
        module.eval()
    return PretrainResult(state.generator, state.image_critic, state.flow_critic, state.records, resumed_from)


__all__ = ["AffineRanges", "Critic", "Estimator", "GeneratorAugmenter", "LATENT_DIM", "PAPER_ESTIMATOR_OPTIMISER",
           "PAPER_GENERATOR_OPTIMISER", "PretrainResult", "PretrainSettings", "TransformGenerator",
           "appearance_channels", "critic_loss", "default_widths", "generator_loss", "gradient_penalty",
           "inverse_mse", "load_generator", "pretrain_generator", "random_affine_displacement", "save_generator"]
