"""Differentiable augmentation transforms and the estimator E that parameterises them.

Transforms (all differentiable in the image and in their parameters; zero parameters are
exactly the identity):

* :func:`affine_warp`: x~(p) = x(A p + t), bilinear (``grid_sample``), theta = [A | t] (B, 2, 3).
* :func:`flow_warp`: the paper's per-pixel spatial model s(p) = sw(p) * p + sb(p) + p,
  bilinear warp. The paper smooths s by average pooling; we smooth the displacement
  sw * p + sb and then add p, which is the same in the interior and keeps the identity
  exact at the borders (pooling p itself would shift border pixels).
* :func:`colour_transform`: the paper's appearance model x~ = x + cw x + cb, a per-image
  1x1 channel-mixing filter cw (B, C, C) and bias cb (B, C).

Coordinates are normalised to [-1, 1] with ``align_corners=True``, so the identity grid
samples pixel centres exactly.

:class:`ImageAugmenter` / :class:`TranslationAugmenter` are the *light* E(x): a small encoder
to a 128-d latent tau (tanh, as App. A's E) and linear heads from tau to the transform's
parameters, each bounded by a tanh times a maximum magnitude (label preservation) and
zero-initialised (they start at the identity), kept small by a magnitude penalty
(:meth:`regulariser`). The paper's E decodes tau with a generator G pre-trained by WGAN-GP
and then frozen: :mod:`augcore.influence.generator`.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from augcore.checks import check_bool, check_choice, check_int, check_number

SPATIAL_MODELS = ("flow", "affine", None)
LATENT_DIM = 128


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError(f"images must be a float (B, C, H, W) tensor, got "
                        f"{images.dtype if isinstance(images, torch.Tensor) else type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images: expected (B, C, H, W), got shape {tuple(images.shape)}")


def _check_parameter(name: str, value) -> None:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got "
                        f"{value.dtype if isinstance(value, torch.Tensor) else type(value).__name__}")


def identity_grid(batch: int, height: int, width: int, dtype: torch.dtype = torch.float32,
                  device: Optional[torch.device] = None) -> torch.Tensor:
    """(B, H, W, 2) sampling grid of the identity, (x, y) in [-1, 1] (``align_corners=True``)."""
    batch = check_int("batch", batch, min=0)
    height = check_int("height", height, min=1)
    width = check_int("width", width, min=1)
    ys = torch.linspace(-1.0, 1.0, height, dtype=dtype, device=device)
    xs = torch.linspace(-1.0, 1.0, width, dtype=dtype, device=device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], -1).expand(batch, height, width, 2)


def _sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)


def affine_warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Bilinear affine warp; ``theta`` (B, 2, 3), identity [[1, 0, 0], [0, 1, 0]]."""
    _check_images(images)
    _check_parameter("theta", theta)
    if theta.shape != (images.shape[0], 2, 3):
        raise ValueError(f"theta: expected ({images.shape[0]}, 2, 3), got {tuple(theta.shape)}")
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=True)
    return _sample(images, grid)


def flow_displacement(scale_map: torch.Tensor, shift_map: torch.Tensor, smoothing: int = 3) -> torch.Tensor:
    """(B, 2, H, W) displacement smooth(sw p + sb) of the paper's spatial model (Eq. 20), (x, y) channels.

    ``scale_map`` sw is (B, 4, H, W), the per-pixel 2x2 matrix [[sw1, sw2], [sw3, sw4]] of
    Eq. 20 row by row, or (B, 2, H, W), its diagonal (sw1, sw4); ``shift_map`` sb is
    (B, 2, H, W). Normalised units; ``smoothing`` is the (odd) average-pooling window, 1 for none.
    """
    for name, m in (("scale_map", scale_map), ("shift_map", shift_map)):
        _check_parameter(name, m)
        if m.dim() != 4:
            raise ValueError(f"{name}: expected (B, C, H, W), got shape {tuple(m.shape)}")
    batch, _, height, width = shift_map.shape
    if shift_map.shape[1] != 2:
        raise ValueError(f"shift_map: expected ({batch}, 2, {height}, {width}), got {tuple(shift_map.shape)}")
    if scale_map.shape not in ((batch, 2, height, width), (batch, 4, height, width)):
        raise ValueError(f"scale_map: expected ({batch}, 2 or 4, {height}, {width}), got {tuple(scale_map.shape)}")
    smoothing = check_int("smoothing", smoothing, min=1)
    if smoothing % 2 == 0:
        raise ValueError(f"smoothing must be an odd window size >= 1, got {smoothing}")
    coords = identity_grid(batch, height, width, shift_map.dtype, shift_map.device).permute(0, 3, 1, 2)
    if scale_map.shape[1] == 2:
        displacement = scale_map * coords + shift_map
    else:
        x, y = coords[:, :1], coords[:, 1:]
        displacement = torch.cat([scale_map[:, 0:1] * x + scale_map[:, 1:2] * y,
                                  scale_map[:, 2:3] * x + scale_map[:, 3:4] * y], 1) + shift_map
    if smoothing > 1:
        displacement = F.avg_pool2d(displacement, smoothing, stride=1, padding=smoothing // 2,
                                    count_include_pad=False)
    return displacement


def displacement_warp(images: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Bilinear warp sampling ``images`` at p + ``displacement`` (B, 2, H, W), normalised (x, y)."""
    _check_images(images)
    _check_parameter("displacement", displacement)
    batch, _, height, width = images.shape
    if displacement.shape != (batch, 2, height, width):
        raise ValueError(f"displacement: expected ({batch}, 2, {height}, {width}), got {tuple(displacement.shape)}")
    coords = identity_grid(batch, height, width, images.dtype, images.device)
    return _sample(images, coords + displacement.to(images.dtype).permute(0, 2, 3, 1))


def flow_warp(images: torch.Tensor, scale_map: torch.Tensor, shift_map: torch.Tensor,
              smoothing: int = 3) -> torch.Tensor:
    """Per-pixel flow s = smooth(sw p + sb) + p (Eq. 20, :func:`flow_displacement`), applied by bilinear warp.

    ``scale_map`` sw is (B, 4, H, W) (the full 2x2 matrix per pixel) or (B, 2, H, W) (its
    diagonal, channel 0 acting on x and 1 on y); ``shift_map`` sb is (B, 2, H, W).
    """
    _check_images(images)
    batch, _, height, width = images.shape
    for name, m in (("scale_map", scale_map), ("shift_map", shift_map)):
        _check_parameter(name, m)
        if m.dim() != 4 or m.shape[0] != batch or tuple(m.shape[2:]) != (height, width):
            raise ValueError(f"{name}: expected ({batch}, 2 or 4, {height}, {width}) for these images, "
                             f"got {tuple(m.shape)}")
    return displacement_warp(images, flow_displacement(scale_map, shift_map, smoothing))


def colour_transform(images: torch.Tensor, mix: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """x~ = x + cw x + cb per pixel; zeros = identity.

    Per image: ``mix`` cw (B, C, C), ``shift`` cb (B, C). Per pixel (the paper's
    appearance model, one 1x1 filter at every pixel): cw (B, C, C, H, W), cb (B, C, H, W).
    """
    _check_images(images)
    batch, channels, height, width = images.shape
    _check_parameter("mix", mix)
    _check_parameter("shift", shift)
    if mix.shape == (batch, channels, channels) and shift.shape == (batch, channels):
        return images + torch.einsum("bij,bjhw->bihw", mix, images) + shift[:, :, None, None]
    if mix.shape == (batch, channels, channels, height, width) and shift.shape == (batch, channels, height, width):
        return images + torch.einsum("bijhw,bjhw->bihw", mix, images) + shift
    raise ValueError(f"mix/shift: expected ({batch}, {channels}, {channels}) and ({batch}, {channels}) per image, "
                     f"or ({batch}, {channels}, {channels}, {height}, {width}) and ({batch}, {channels}, {height}, "
                     f"{width}) per pixel, got {tuple(mix.shape)} and {tuple(shift.shape)}")


def _bounded_head(in_features: int, out_features: int) -> nn.Linear:
    head = nn.Linear(in_features, out_features)
    nn.init.zeros_(head.weight)  # zero output: every transform starts at the identity
    nn.init.zeros_(head.bias)
    return head


class _Augmenter(nn.Module):
    """E(x) -> tau = tanh(encoder(x)) (128-d) -> bounded transform parameters."""

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoder(x))

    @staticmethod
    def regulariser(params: Dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) mean squared deviation from the identity over every transform parameter."""
        terms = [p.flatten(1).pow(2).mean(1) for p in params.values()]
        return torch.stack(terms, 0).sum(0)


class ImageAugmenter(_Augmenter):
    """E(x) for images (B, C, H, W) and the transform it drives.

    ``spatial``: ``"flow"`` (the paper's per-pixel model; maps predicted at
    ``flow_resolution``^2 and upsampled bilinearly), ``"affine"`` or None; ``appearance``:
    the colour model. Bounds: ``|flow/affine entries| <= max_spatial`` (normalised units;
    0.1 is 5% of the image side), ``|cw|, |cb|`` entries ``<= max_colour``.
    """

    def __init__(self, channels: int, height: int, width: int, *, spatial: Optional[str] = "flow",
                 appearance: bool = True, hidden: int = 32, max_spatial: float = 0.1, max_colour: float = 0.2,
                 smoothing: int = 3, flow_resolution: int = 8):
        super().__init__()
        check_choice("spatial", spatial, SPATIAL_MODELS)
        appearance = check_bool("appearance", appearance)
        channels, height, width = (check_int(n, v, min=1) for n, v in (("channels", channels), ("height", height),
                                                                         ("width", width)))
        hidden = check_int("hidden", hidden, min=1)
        max_spatial = check_number("max_spatial", max_spatial, min=0.0)
        max_colour = check_number("max_colour", max_colour, min=0.0)
        smoothing = check_int("smoothing", smoothing, min=1)
        if smoothing % 2 == 0:
            raise ValueError(f"smoothing must be an odd window size >= 1, got {smoothing}")
        flow_resolution = check_int("flow_resolution", flow_resolution, min=1)
        if spatial is None and not appearance:
            raise ValueError("ImageAugmenter needs a spatial model, the appearance model, or both")
        self.shape = (channels, height, width)
        self.spatial, self.appearance = spatial, appearance
        self.max_spatial, self.max_colour = float(max_spatial), float(max_colour)
        self.smoothing, self.flow_resolution = smoothing, flow_resolution
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, 2 * hidden, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * hidden, LATENT_DIM))
        heads = {}
        if spatial == "flow":
            heads["flow"] = _bounded_head(LATENT_DIM, 4 * flow_resolution * flow_resolution)
        elif spatial == "affine":
            heads["affine"] = _bounded_head(LATENT_DIM, 6)
        if appearance:
            heads["colour"] = _bounded_head(LATENT_DIM, channels * channels + channels)
        self.heads = nn.ModuleDict(heads)

    def transform_parameters(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        _check_images(x)
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"images: expected (B, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")
        tau = self.latent(x)
        batch, channels, height, width = x.shape
        params = {}
        if "flow" in self.heads:
            coarse = self.max_spatial * torch.tanh(self.heads["flow"](tau))
            coarse = coarse.view(batch, 4, self.flow_resolution, self.flow_resolution)
            maps = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)
            params["flow_scale"], params["flow_shift"] = maps[:, :2], maps[:, 2:]
        if "affine" in self.heads:
            params["affine"] = self.max_spatial * torch.tanh(self.heads["affine"](tau)).view(batch, 2, 3)
        if "colour" in self.heads:
            colour = self.max_colour * torch.tanh(self.heads["colour"](tau))
            params["colour_mix"] = colour[:, : channels * channels].view(batch, channels, channels)
            params["colour_shift"] = colour[:, channels * channels:]
        return params

    def transform(self, x: torch.Tensor, params: Dict[str, torch.Tensor]) -> torch.Tensor:
        if "flow_scale" in params:
            x = flow_warp(x, params["flow_scale"], params["flow_shift"], self.smoothing)
        if "affine" in params:
            identity = torch.eye(2, 3, dtype=x.dtype, device=x.device).expand(x.shape[0], 2, 3)
            x = affine_warp(x, identity + params["affine"])
        if "colour_mix" in params:
            x = colour_transform(x, params["colour_mix"], params["colour_shift"])
        return x

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        params = self.transform_parameters(x)
        return self.transform(x, params), params


class TranslationAugmenter(_Augmenter):
    """E(x) for feature vectors (B, D): a bounded translation ``x~ = x + t(x)``, ``|t| < max_shift``.

    The transform of the paper's 2-D toy experiment (Fig. 3).
    """

    def __init__(self, dim: int, *, hidden: int = 64, max_shift: float = 0.5):
        super().__init__()
        dim = check_int("dim", dim, min=1)
        hidden = check_int("hidden", hidden, min=1)
        self.dim, self.max_shift = dim, check_number("max_shift", max_shift, min=0.0)
        self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, LATENT_DIM))
        self.heads = nn.ModuleDict({"shift": _bounded_head(LATENT_DIM, dim)})

    def transform_parameters(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError("inputs must be a float (B, D) tensor")
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"inputs: expected (B, {self.dim}), got {tuple(x.shape)}")
        raw = self.heads["shift"](self.latent(x))
        # Radial bound |t| < max_shift keeps the direction (a per-coordinate tanh would push
        # saturated shifts onto the box's diagonals).
        return {"shift": self.max_shift * raw / torch.sqrt(1.0 + raw.pow(2).sum(1, keepdim=True))}

    def transform(self, x: torch.Tensor, params: Dict[str, torch.Tensor]) -> torch.Tensor:
        return x + params["shift"]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        params = self.transform_parameters(x)
        return self.transform(x, params), params
