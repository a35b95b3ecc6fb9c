"""Classification models; every ``forward`` returns ``(logits, embedding)``.

``build_model(name, num_classes, in_channels=3, image_size=32)`` builds one of
:data:`MODELS`; ``model.classifier`` is the final linear layer (``logits ==
model.classifier(embedding)``) and ``model.embedding_dim`` its input size.
"""
from __future__ import annotations

from typing import Callable, Dict

from torch import nn

from augcore.checks import check_choice, check_int
from augcore.models.all_conv import AllConvNet
from augcore.models.base import EmbeddingClassifier, check_model_args
from augcore.models.cifar_resnet import CifarResNet
from augcore.models.preact_resnet import PreActResNet18
from augcore.models.small_cnn import SmallCNN
from augcore.models.torchvision_models import TorchvisionResNet
from augcore.models.wide_resnet import WideResNet

Builder = Callable[[int, int, int], EmbeddingClassifier]

MODELS: Dict[str, Builder] = {
    "resnet20": lambda c, ch, size: CifarResNet(20, c, ch),
    "resnet32": lambda c, ch, size: CifarResNet(32, c, ch),
    "resnet56": lambda c, ch, size: CifarResNet(56, c, ch),
    "preact_resnet18": lambda c, ch, size: PreActResNet18(c, ch),
    "wrn28_10": lambda c, ch, size: WideResNet(28, 10, c, ch),
    "small_cnn": lambda c, ch, size: SmallCNN(c, ch),
    "allconv": lambda c, ch, size: AllConvNet(c, ch),
    "resnet18": lambda c, ch, size: TorchvisionResNet("resnet18", c, ch, size),
    "resnet50": lambda c, ch, size: TorchvisionResNet("resnet50", c, ch, size),
}


def build_model(name: str, num_classes: int, *, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """A randomly initialised model ``name`` (one of :data:`MODELS`)."""
    check_choice("model", name, sorted(MODELS))
    num_classes, in_channels = check_model_args(num_classes, in_channels)
    image_size = check_int("image_size", image_size, min=4)
    return MODELS[name](num_classes, in_channels, image_size)


__all__ = ["AllConvNet", "CifarResNet", "EmbeddingClassifier", "MODELS", "PreActResNet18", "SmallCNN", "TorchvisionResNet",
           "WideResNet", "build_model"]
