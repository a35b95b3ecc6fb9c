"""The contract every augcore model keeps: ``forward(x) -> (logits, embedding)``.

``embedding`` is the penultimate feature vector, the input of the final linear
layer; ``model.classifier`` is that layer (registered as ``fc`` or ``linear``, the
name the original code uses, so published checkpoints' keys still match), so
influence and last-layer-gradient code can read its weight and bias.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from augcore.checks import check_int


def check_model_args(num_classes: int, in_channels: int) -> tuple:
    """The arguments every model takes, checked: integers >= 1 (Python or numpy)."""
    return check_int("num_classes", num_classes, min=1), check_int("in_channels", in_channels, min=1)


class EmbeddingClassifier(nn.Module):
    """Base class: subclasses define ``embed`` and register the final ``nn.Linear`` as ``classifier_attr``."""

    classifier_attr = "linear"
    # submodules whose outputs Manifold Mixup may mix, in forward order (its residual stages)
    mixing_points: Tuple[str, ...] = ()

    @property
    def classifier(self) -> nn.Linear:
        return getattr(self, self.classifier_attr)

    @property
    def embedding_dim(self) -> int:
        return self.classifier.in_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(x)
        return self.classifier(embedding), embedding


def mixing_points(model: nn.Module) -> Tuple[str, ...]:
    """The names of ``model``'s submodules whose outputs Manifold Mixup may mix, in forward order: the
    ``mixing_points`` an augcore model declares (its residual stages), or ``layer1``-``layer4`` of a
    torchvision ResNet. Raises ValueError for a model without declared points."""
    from torchvision.models import ResNet

    points = getattr(model, "mixing_points", None)
    if points is None and isinstance(model, ResNet):
        points = ("layer1", "layer2", "layer3", "layer4")
    if not points:
        raise ValueError(f"{type(model).__name__} declares no mixing points for Manifold Mixup; models that do: "
                         "preact_resnet18, resnet20/32/56, wrn28_10, shake_shake26_2x96d, small_cnn, torchvision "
                         "ResNets (or set a `mixing_points` tuple of submodule names on the model)")
    names = dict(model.named_modules())
    missing = [p for p in points if p not in names]
    if missing:
        raise ValueError(f"{type(model).__name__}.mixing_points names no submodule {missing}")
    return tuple(points)
