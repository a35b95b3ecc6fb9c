"""CIFAR ResNet-20/32/56 (He et al., 2016, Sec. 4.2) with option A shortcuts.

Three stages of n basic blocks (16, 32, 64 channels; depth 6n + 2). Where the
resolution halves, the shortcut subsamples by 2 and zero-pads the new channels
(option A: parameter-free), as in the paper and in the implementation the coreset
paper's code uses (akamaster/pytorch_resnet_cifar10), including its Kaiming-normal
initialisation of convolutions and the linear layer. Parameters for 10 classes:
0.27M / 0.46M / 0.85M.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from augcore.checks import check_int
from augcore.models.base import EmbeddingClassifier, check_model_args


class _PadShortcut(nn.Module):
    """Option A: stride-2 subsampling, then ``extra`` zero channels on each side."""

    def __init__(self, extra: int):
        super().__init__()
        self.extra = extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.extra, self.extra))


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _PadShortcut(planes // 4) if stride != 1 or in_planes != planes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(EmbeddingClassifier):
    classifier_attr = "linear"
    mixing_points = ("layer1", "layer2", "layer3")

    def __init__(self, depth: int, num_classes: int, in_channels: int = 3):
        super().__init__()
        num_classes, in_channels = check_model_args(num_classes, in_channels)
        depth = check_int("depth", depth, min=8)
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            layers = []
            for b in range(blocks):
                layers.append(_BasicBlock(in_planes, planes, stride if b == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)
