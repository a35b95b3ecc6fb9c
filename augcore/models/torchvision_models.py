"""torchvision ResNet-18/50, randomly initialised (weights=None), returning (logits, embedding).

For images of at most 64 pixels (CIFAR, SVHN, Tiny-ImageNet, digits) the ImageNet
stem (7x7 stride-2 convolution + max-pool) is replaced by a 3x3 stride-1
convolution without pooling, the usual adaptation that keeps small images from
collapsing to 1x1 before the last stage; larger images keep the stem as released.
A different ``in_channels`` replaces the first convolution with one of that many inputs.
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn

from augcore.checks import check_choice, check_int
from augcore.models.base import EmbeddingClassifier, check_model_args

SMALL_IMAGE_MAX = 64


class TorchvisionResNet(EmbeddingClassifier):
    classifier_attr = "fc"

    def __init__(self, arch: str, num_classes: int, in_channels: int = 3, image_size: int = 224):
        super().__init__()
        check_choice("arch", arch, ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"))
        num_classes, in_channels = check_model_args(num_classes, in_channels)
        image_size = check_int("image_size", image_size, min=4)
        backbone = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
        if image_size <= SMALL_IMAGE_MAX:
            backbone.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
            backbone.maxpool = nn.Identity()
        elif in_channels != 3:
            backbone.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.fc = backbone.fc
        backbone.fc = nn.Identity()
        self.backbone = backbone

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)
