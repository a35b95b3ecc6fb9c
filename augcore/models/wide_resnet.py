"""Wide ResNet (Zagoruyko & Komodakis, 2016); WRN-28-10 has 36.5M parameters for 10 classes.

Pre-activation basic blocks, widths 16k/32k/64k, 1x1 convolution shortcuts where
the shape changes, dropout between the two convolutions (0 by default, as in the
refinement paper's WRN-28-10 runs), final BatchNorm + ReLU before pooling; the
initialisation follows the authors' code (Kaiming-normal fan-out, zero biases).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from augcore.checks import check_int, check_number
from augcore.models.base import EmbeddingClassifier, check_model_args


class _WideBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.dropout = dropout
        self.shortcut = (nn.Conv2d(in_planes, planes, 1, stride, bias=False)
                         if stride != 1 or in_planes != planes else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = F.relu(self.bn2(self.conv1(out)))
        if self.dropout:
            out = F.dropout(out, p=self.dropout, training=self.training)
        return self.conv2(out) + shortcut


class WideResNet(EmbeddingClassifier):
    classifier_attr = "fc"
    mixing_points = ("block1", "block2", "block3")

    def __init__(self, depth: int, widen_factor: int, num_classes: int, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        num_classes, in_channels = check_model_args(num_classes, in_channels)
        depth = check_int("depth", depth, min=10)
        widen_factor = check_int("widen_factor", widen_factor, min=1)
        dropout = check_number("dropout", dropout, min=0.0, max=1.0, max_inclusive=False)
        if (depth - 4) % 6 != 0:
            raise ValueError(f"Wide ResNet depth must be 6n + 4, got {depth}")
        blocks = (depth - 4) // 6
        widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        stages, in_planes = [], 16
        for planes, stride in zip(widths, (1, 2, 2)):
            stages.append(nn.Sequential(*[_WideBlock(in_planes if b == 0 else planes, planes, stride if b == 0 else 1,
                                                     dropout) for b in range(blocks)]))
            in_planes = planes
        self.block1, self.block2, self.block3 = stages
        self.bn = nn.BatchNorm2d(widths[-1])
        self.fc = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        return F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1).flatten(1)
