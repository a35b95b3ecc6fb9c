"""PreAct ResNet-18 (He et al., "Identity Mappings in Deep Residual Networks", 2016), CIFAR stem.

Layout of kuangliu/pytorch-cifar (3x3 stem, no max-pool, stages of 64/128/256/512
channels, 1x1 convolution shortcuts where the shape changes), which the targeted
synthetic augmentation and refinement papers train. That code pools the last
block's sum directly; here a final BatchNorm + ReLU precedes pooling, as the
pre-activation design prescribes (the last block's output is otherwise never
normalised). 11.2M parameters for 10 classes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from augcore.models.base import EmbeddingClassifier, check_model_args


class _PreActBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(in_planes, planes, 1, stride, bias=False)
                         if stride != 1 or in_planes != planes else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(EmbeddingClassifier):
    classifier_attr = "linear"
    mixing_points = ("layer1", "layer2", "layer3", "layer4")

    def __init__(self, num_classes: int, in_channels: int = 3):
        super().__init__()
        num_classes, in_channels = check_model_args(num_classes, in_channels)
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        stages, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(_PreActBlock(in_planes, planes, stride), _PreActBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        return F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1).flatten(1)
