"""ViT-S for small images, as the targeted-synthetic paper trains it on CIFAR-10.

The paper (its appendix, "Training with different architectures") takes ViT from
Yuan et al. 2021 through the lucidrains/vit-pytorch implementation with hidden size 768,
depth 8, 8 attention heads and MLP size 2304, the patch size set to 4 "to fit the
resolution of CIFAR10". Built here on torchvision's ``VisionTransformer`` (class token,
learned position embeddings, pre-norm encoder, final LayerNorm, linear head
``heads.head``): 47.4M parameters at 32 px for 10 classes. Each head has 768 / 8 = 96
dimensions, as in Yuan et al.'s ViT-S; the paper does not give lucidrains' ``dim_head``
(its default, 64, would make attention 512-wide). Returns logits only.
"""
from __future__ import annotations

from typing import Optional

from torch import nn

from augcore.checks import check_int, check_number
from augcore.models.base import check_model_args

PATCH_SIZE = 4


def vit_s(num_classes: int, in_channels: int = 3, image_size: int = 32, dropout: Optional[float] = None) -> nn.Module:
    """The paper's ViT-S: patch 4, hidden 768, 8 layers, 8 heads, MLP 2304; ``dropout`` (default 0)
    applies after the embeddings, inside the MLPs and after attention, as torchvision's."""
    from torchvision.models.vision_transformer import VisionTransformer

    num_classes, in_channels = check_model_args(num_classes, in_channels)
    image_size = check_int("image_size", image_size, min=PATCH_SIZE)
    if image_size % PATCH_SIZE:
        raise ValueError(f"vit_s: image_size must be a multiple of the patch size {PATCH_SIZE}, got {image_size}")
    dropout = 0.0 if dropout is None else check_number("dropout", dropout, min=0.0, max=1.0, max_inclusive=False)
    model = VisionTransformer(image_size=image_size, patch_size=PATCH_SIZE, num_layers=8, num_heads=8,
                              hidden_dim=768, mlp_dim=2304, dropout=dropout, num_classes=num_classes)
    if in_channels != 3:
        old = model.conv_proj
        model.conv_proj = nn.Conv2d(in_channels, old.out_channels, PATCH_SIZE, PATCH_SIZE)
        fan_in = in_channels * PATCH_SIZE * PATCH_SIZE  # torchvision's initialisation of conv_proj
        nn.init.trunc_normal_(model.conv_proj.weight, std=(1.0 / fan_in) ** 0.5)
        nn.init.zeros_(model.conv_proj.bias)
    return model
