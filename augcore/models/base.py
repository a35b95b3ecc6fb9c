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
