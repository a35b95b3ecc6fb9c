"""A four-layer all-convolutional CNN, the MNIST classifier of "Learning to Augment Influential Data".

The paper (Sec. 5.2) says only "a four-layer all-convolutional CNN", following Ratner et
al. (2017); it gives no widths or kernels, so those here are ours: three 3x3
convolutions (32, 64, 128 channels; the second and third stride 2, in place of pooling,
as in Springenberg et al.'s all-convolutional nets), each with BatchNorm and ReLU, and a
fourth, 1x1 convolution to the classes followed by global average pooling. Average
pooling and a 1x1 convolution commute (both are linear), so the fourth layer is stored
as the final ``nn.Linear`` on the pooled 128-d embedding: the same function, and the
layer that augcore's influence code reads.
"""
from __future__ import annotations

import torch
from torch import nn

from augcore.checks import check_int
from augcore.models.base import EmbeddingClassifier, check_model_args


class AllConvNet(EmbeddingClassifier):
    classifier_attr = "fc"

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 32):
        super().__init__()
        num_classes, in_channels = check_model_args(num_classes, in_channels)
        width = check_int("width", width, min=1)

        def conv(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                 nn.ReLU(inplace=True))

        self.features = nn.Sequential(conv(in_channels, width, 1), conv(width, 2 * width, 2),
                                      conv(2 * width, 4 * width, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4 * width, num_classes)   # the 1x1 convolution to the classes, after the pooling

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
