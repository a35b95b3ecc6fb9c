"""A small CNN for scikit-learn's 8x8 digits (the embedded demo data set); works at any input size.

Three 3x3 convolution + BatchNorm + ReLU layers (32, 64, 128 channels) with one 2x2
max-pool after the second, global average pooling to a 128-d embedding.
"""
from __future__ import annotations

import torch
from torch import nn

from augcore.checks import check_int
from augcore.models.base import EmbeddingClassifier, check_model_args


class SmallCNN(EmbeddingClassifier):
    classifier_attr = "fc"
    mixing_points = ("features.0", "features.1", "features.3")   # its three convolution blocks

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 32):
        super().__init__()
        num_classes, in_channels = check_model_args(num_classes, in_channels)
        width = check_int("width", width, min=1)

        def conv(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.features = nn.Sequential(conv(in_channels, width), conv(width, 2 * width), nn.MaxPool2d(2),
                                      conv(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4 * width, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
