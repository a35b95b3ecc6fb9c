"""Moving dataset images (uint8, (C, H, W), 1 or 3 channels) to a model's space and back."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

SUPPORTED_CHANNELS = (1, 3)


def check_image(image: torch.Tensor, index: int) -> None:
    """Raises a clear error unless ``image`` is a uint8 (C, H, W) tensor with 1 or 3 channels."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"dataset item {index}: image must be a torch.Tensor, got {type(image).__name__}")
    if image.dtype != torch.uint8:
        raise ValueError(f"dataset item {index}: image must be uint8, got {image.dtype}")
    if image.dim() != 3 or image.shape[0] not in SUPPORTED_CHANNELS:
        raise ValueError(f"dataset item {index}: image must be (C, H, W) with C in {SUPPORTED_CHANNELS} "
                         f"(grayscale or RGB), got shape {tuple(image.shape)}")


def _convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.repeat(1, 3, 1, 1)
    if x.shape[1] == 3 and channels == 1:
        # ITU-R 601 luma, the weights PIL uses for mode "L".
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        return (x * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot convert {x.shape[1]}-channel images to {channels} channels")


def _resize(x: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    # Antialiasing matters when shrinking the model's output back to e.g. 32x32.
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


def to_model_space(images: Sequence[torch.Tensor], resolution: int, channels: int) -> torch.Tensor:
    """uint8 (C, H, W) images -> float32 (B, channels, resolution, resolution) in [0, 1]."""
    sizes = {tuple(im.shape) for im in images}
    if len(sizes) != 1:
        raise ValueError(f"images of one batch must share a shape, got {sorted(sizes)}")
    x = torch.stack(list(images)).float().div_(255.0)
    return _resize(_convert_channels(x, channels), resolution).clamp_(0.0, 1.0)


def from_model_space(x: torch.Tensor, size: Sequence[int], channels: int) -> torch.Tensor:
    """float (B, C', R, R) in [0, 1] -> uint8 (B, channels, H, W) at the dataset's size."""
    x = x.float().clamp(0.0, 1.0)
    x = _resize(_convert_channels(x, channels), size).clamp_(0.0, 1.0)
    return x.mul_(255.0).round_().to(torch.uint8)
