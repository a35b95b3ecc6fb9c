"""Any torchvision classification model by name (``torchvision:<arch>``), randomly initialised.

``build_torchvision(arch, num_classes, in_channels, image_size)`` calls
``torchvision.models.get_model(arch, weights=None, num_classes=...)``: torchvision's own
module, returning logits only, with torchvision's parameter names (so its published
state dicts load with ``model.weights``). ``weights=None`` always: nothing is downloaded.

Stem (``stem``):

- ``"cifar"``: the ImageNet stem's 7x7 stride-2 convolution becomes a 3x3 stride-1 one
  and its 3x3 stride-2 max-pool is removed (the BatchNorm + ReLU between them stay), the
  usual adaptation for small images (the stem of kuangliu/pytorch-cifar's ResNets and
  DenseNet121), so 32-px images are not reduced to 8x8 before the first block. Defined
  for the families with that stem: ResNet, ResNeXt, Wide ResNet (``conv1``,
  ``maxpool``) and DenseNet (``features.conv0``, ``features.pool0``).
- ``"imagenet"``: torchvision's model unchanged (what an ImageNet-pretrained state dict needs).
- ``"auto"`` (default): ``"cifar"`` for those families at ``image_size`` <= 64
  (CIFAR, SVHN, Tiny-ImageNet, digits), ``"imagenet"`` otherwise and for every other
  family (VGG has no strided stem; ConvNeXt, Swin and ViT have patch embeddings).

A different ``in_channels`` replaces the first convolution with one of that many inputs.
"""
from __future__ import annotations

import difflib
from typing import List, Optional

from torch import nn

from augcore.checks import check_choice, check_int, check_number
from augcore.models.base import check_model_args

PREFIX = "torchvision:"
STEMS = ("auto", "cifar", "imagenet")
SMALL_IMAGE_MAX = 64
# architectures whose builder asks for an explicit initialisation choice without pretrained weights
_EXTRA_KWARGS = {"googlenet": dict(aux_logits=False, init_weights=True),
                 "inception_v3": dict(aux_logits=False, init_weights=True)}


def torchvision_archs() -> List[str]:
    """torchvision's classification architectures (``torchvision.models.list_models``)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def check_arch(arch: str) -> str:
    archs = torchvision_archs()
    if arch not in archs:
        close = difflib.get_close_matches(str(arch), archs, n=5, cutoff=0.5)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(f"{PREFIX}{arch} is not a torchvision classification model{hint} "
                         f"(torchvision.models.list_models() lists the {len(archs)} there are)")
    return arch


def _stem_layers(model: nn.Module):
    """(parent, conv name, pool name, init) of a model with an ImageNet conv + max-pool stem, else None."""
    import torchvision

    if isinstance(model, torchvision.models.ResNet):  # also ResNeXt and Wide ResNet
        return model, "conv1", "maxpool", dict(mode="fan_out", nonlinearity="relu")
    if isinstance(model, torchvision.models.DenseNet):
        return model.features, "conv0", "pool0", {}
    return None


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """The first convolution, rebuilt for ``in_channels`` inputs (PyTorch's default initialisation)."""
    name, conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None, conv.padding_mode)
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)


def build_torchvision(arch: str, num_classes: int, in_channels: int = 3, image_size: int = 224, *,
                      stem: str = "auto", dropout: Optional[float] = None) -> nn.Module:
    """torchvision's ``arch`` with ``num_classes`` outputs, randomly initialised (see the module doc).

    ``dropout`` is passed to architectures whose constructor takes one (VGG, ViT, Swin,
    EfficientNet, MobileNet, ...); ``None`` keeps torchvision's default.
    """
    import torchvision

    check_arch(arch)
    num_classes, in_channels = check_model_args(num_classes, in_channels)
    image_size = check_int("image_size", image_size, min=4)
    check_choice("stem", stem, STEMS)
    kwargs = dict(_EXTRA_KWARGS.get(arch, {}))
    if dropout is not None:
        kwargs["dropout"] = check_number("dropout", dropout, min=0.0, max=1.0, max_inclusive=False)
    try:
        model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    except TypeError as exc:
        if "dropout" in kwargs and "dropout" in str(exc):
            raise ValueError(f"dropout: {PREFIX}{arch} takes no dropout argument") from exc
        raise
    layers = _stem_layers(model)
    if stem == "cifar" and layers is None:
        raise ValueError(f"stem='cifar': {PREFIX}{arch} has no convolution + max-pool stem to replace (defined for "
                         "ResNet, ResNeXt, Wide ResNet and DenseNet); use stem='imagenet' or 'auto'")
    cifar = layers is not None and (stem == "cifar" or (stem == "auto" and image_size <= SMALL_IMAGE_MAX))
    if cifar or (layers is not None and in_channels != 3):
        parent, conv_name, pool_name, init = layers
        old = getattr(parent, conv_name)
        kernel, stride, padding = (3, 1, 1) if cifar else (old.kernel_size, old.stride, old.padding)
        conv = nn.Conv2d(in_channels, old.out_channels, kernel, stride, padding, bias=False)
        nn.init.kaiming_normal_(conv.weight, **init)  # the family's own initialisation of its convolutions
        setattr(parent, conv_name, conv)
        if cifar:
            setattr(parent, pool_name, nn.Identity())
    elif in_channels != 3:
        _replace_first_conv(model, in_channels)
    return model
