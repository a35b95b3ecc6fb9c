"""Shake-Shake regularised ResNet (Gastaldi, "Shake-Shake regularization", 2017), CIFAR layout.

Shake-Shake 26 2x96d (26.2M parameters for 10 classes, as Gastaldi's Table 1) is the
refinement paper's third CIFAR-100 backbone, beside PreAct ResNet-18 and WRN-28-10. The
layout follows the author's Torch code (xgastaldi/shake-shake,
``models/shakeshake.lua`` and ``shakeshakeblock.lua``):

- stem: 3x3 convolution to 16 channels + BatchNorm (no ReLU: every block starts with one);
- three stages of (depth - 2) / 6 blocks, widths w, 2w, 4w (the first block of stages 2
  and 3 has stride 2); a block is ``shortcut(x) + mix(branch1(x), branch2(x))``, each
  branch ReLU-conv3x3-BN-ReLU-conv3x3-BN;
- where the width changes the shortcut is ReLU, then two 1x1 convolutions to w/2 channels
  each, on the input subsampled by the stride and on the input shifted one pixel right
  and down then subsampled, concatenated, then BatchNorm;
- ReLU, global average pooling, the linear classifier ``fc``.

"Shake-Shake-Image" (the paper's best CIFAR setting): in training, the forward mix is
``alpha * b1 + (1 - alpha) * b2`` and the backward pass sends ``beta * g`` and ``(1 - beta) * g``
to the branches, alpha and beta drawn independently from U(0, 1) per image and per block;
in evaluation both are 0.5. (The Torch code draws beta during the backward pass; here it
is drawn with alpha in the forward pass: the same distribution, and a run's random
sequence does not depend on when backward runs.) Initialisation as the author's code:
Kaiming-normal fan-out convolutions without bias, BatchNorm 1/0, zero linear bias.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from augcore.checks import check_int
from augcore.models.base import EmbeddingClassifier, check_model_args


class _ShakeMix(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(beta)
        return alpha * a + (1 - alpha) * b

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (beta,) = ctx.saved_tensors
        return beta * grad, (1 - beta) * grad, None, None


def shake_mix(a: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """``alpha * a + (1 - alpha) * b`` forward; gradients ``beta * g`` to ``a`` and ``(1 - beta) * g`` to ``b``."""
    return _ShakeMix.apply(a, b, alpha, beta)


def _branch(in_planes: int, planes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes),
                         nn.ReLU(), nn.Conv2d(planes, planes, 3, 1, 1, bias=False), nn.BatchNorm2d(planes))


class _ShiftedShortcut(nn.Module):
    """Two 1x1 convolutions to half the width each, on the (subsampled) input and on the input
    shifted one pixel right and down, concatenated and normalised."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(in_planes, planes // 2, 1, bias=False)
        self.conv2 = nn.Conv2d(in_planes, planes - planes // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        shifted = F.pad(x, (1, -1, 1, -1))
        s = self.stride
        return self.bn(torch.cat([self.conv1(x[:, :, ::s, ::s]), self.conv2(shifted[:, :, ::s, ::s])], 1))


class _ShakeBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.branch1 = _branch(in_planes, planes, stride)
        self.branch2 = _branch(in_planes, planes, stride)
        self.shortcut = _ShiftedShortcut(in_planes, planes, stride) if in_planes != planes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            alpha = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)
            beta = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)
        else:
            alpha = beta = torch.full((1, 1, 1, 1), 0.5, device=x.device, dtype=x.dtype)
        return self.shortcut(x) + shake_mix(self.branch1(x), self.branch2(x), alpha, beta)


class ShakeShake(EmbeddingClassifier):
    """Shake-Shake ``depth`` 2x``width``d; ``ShakeShake(26, 96, num_classes)`` is 26 2x96d."""

    classifier_attr = "fc"
    mixing_points = ("stage1", "stage2", "stage3")

    def __init__(self, depth: int, width: int, num_classes: int, in_channels: int = 3):
        super().__init__()
        num_classes, in_channels = check_model_args(num_classes, in_channels)
        depth = check_int("depth", depth, min=8)
        width = check_int("width", width, min=2)
        if (depth - 2) % 6 != 0:
            raise ValueError(f"Shake-Shake depth must be 6n + 2, got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, in_planes = [], 16
        for planes, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
            stages.append(nn.Sequential(*[_ShakeBlock(in_planes if b == 0 else planes, planes, stride if b == 0 else 1)
                                          for b in range(blocks)]))
            in_planes = planes
        self.stage1, self.stage2, self.stage3 = stages
        self.fc = nn.Linear(4 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.fc.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stage3(self.stage2(self.stage1(self.bn1(self.conv1(x)))))
        return F.adaptive_avg_pool2d(F.relu(out), 1).flatten(1)
