"""Classification models by name, and loading local weights into them.

``build_model(name, num_classes, in_channels=3, image_size=32)`` builds one of
:data:`MODELS` or any torchvision classification model as ``"torchvision:<arch>"``
(``torchvision_models``), randomly initialised. augcore's own CIFAR models
(:class:`EmbeddingClassifier`) return ``(logits, embedding)``, with ``model.classifier``
the final linear layer; the torchvision-built ones (``resnet18``, ``resnet50``,
``vit_s``, ``torchvision:*``) return logits only, as torchvision defines them. The
trainer and every selection policy take either kind, and any other ``nn.Module`` that
returns logits: embeddings are then read from the input of the final ``nn.Linear``
(``augcore.models.outputs``: ``EmbeddingReader``, ``find_classifier``, ``logits_of``).

A builder in :data:`MODELS` is ``builder(num_classes, in_channels, image_size)``; one that
also takes ``dropout=`` or ``stem=`` keywords accepts ``model.dropout`` / ``model.stem``. A new
model is one decorated builder: ``@MODELS.register("name")``.
:func:`load_weights` loads a local state dict, verified (``weights``).
"""
from __future__ import annotations

import inspect
from typing import Callable, Optional

import torch
from torch import nn

from augcore.checks import check_choice, check_int, check_number
from augcore.models.all_conv import AllConvNet
from augcore.models.base import EmbeddingClassifier, check_model_args, mixing_points
from augcore.models.cifar_resnet import CifarResNet
from augcore.models.outputs import EmbeddingReader, find_classifier, logits_of
from augcore.models.preact_resnet import PreActResNet18
from augcore.models.shake_shake import ShakeShake
from augcore.models.small_cnn import SmallCNN
from augcore.models.torchvision_models import PREFIX as TORCHVISION_PREFIX
from augcore.models.torchvision_models import STEMS, build_torchvision, check_arch, torchvision_archs
from augcore.models.vit import vit_s
from augcore.models.weights import load_weights, read_state_dict
from augcore.models.wide_resnet import WideResNet
from augcore.registry import Registry

Builder = Callable[..., nn.Module]

# name -> builder(num_classes, in_channels, image_size[, dropout=][, stem=])
MODELS = Registry("model")


@MODELS.register("resnet20")
def _resnet20(c, ch, size):
    return CifarResNet(20, c, ch)


@MODELS.register("resnet32")
def _resnet32(c, ch, size):
    return CifarResNet(32, c, ch)


@MODELS.register("resnet56")
def _resnet56(c, ch, size):
    return CifarResNet(56, c, ch)


@MODELS.register("preact_resnet18")
def _preact_resnet18(c, ch, size):
    return PreActResNet18(c, ch)


@MODELS.register("wrn28_10")
def _wrn28_10(c, ch, size, dropout=0.0):
    return WideResNet(28, 10, c, ch, dropout)


@MODELS.register("small_cnn")
def _small_cnn(c, ch, size):
    return SmallCNN(c, ch)


@MODELS.register("allconv")
def _allconv(c, ch, size):
    return AllConvNet(c, ch)


@MODELS.register("resnet18")
def _resnet18(c, ch, size, stem="auto"):
    return build_torchvision("resnet18", c, ch, size, stem=stem)


@MODELS.register("resnet50")
def _resnet50(c, ch, size, stem="auto"):
    return build_torchvision("resnet50", c, ch, size, stem=stem)


@MODELS.register("shake_shake26_2x96d")
def _shake_shake26_2x96d(c, ch, size):
    return ShakeShake(26, 96, c, ch)


@MODELS.register("vit_s")
def _vit_s(c, ch, size, dropout=None):
    return vit_s(c, ch, size, dropout)


def _builder(name: str, label: str) -> Builder:
    if isinstance(name, str) and name.startswith(TORCHVISION_PREFIX):
        try:
            arch = check_arch(name[len(TORCHVISION_PREFIX):])
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
        return lambda c, ch, size, stem="auto", dropout=None: build_torchvision(arch, c, ch, size, stem=stem,
                                                                              dropout=dropout)
    check_choice(label, name, sorted(MODELS) + [TORCHVISION_PREFIX + "<arch>"])
    return MODELS[name]


def model_options(name: str, *, dropout: Optional[float] = None, stem: str = "auto", prefix: str = "") -> dict:
    """The keyword options of model ``name``'s builder for these settings, checked: a known name,
    ``dropout`` in [0, 1) and only for a model that has one, ``stem`` only for torchvision ResNets
    and DenseNets. ``prefix`` starts the parameter names in errors (``"model."`` in configs)."""
    builder = _builder(name, f"{prefix}name" if prefix else "model")
    accepted = inspect.signature(builder).parameters
    options = {}
    if dropout is not None:
        dropout = check_number(f"{prefix}dropout", dropout, min=0.0, max=1.0, max_inclusive=False)
        if "dropout" not in accepted:
            with_dropout = sorted(n for n, b in MODELS.items() if "dropout" in inspect.signature(b).parameters)
            raise ValueError(f"{prefix}dropout: {name} has no dropout (models with one: {with_dropout} and "
                             "torchvision models whose constructor takes `dropout`)")
        options["dropout"] = dropout
    check_choice(f"{prefix}stem", stem, STEMS)
    if stem != "auto":
        if "stem" not in accepted:
            raise ValueError(f"{prefix}stem: applies to torchvision models (resnet18, resnet50, "
                             f"{TORCHVISION_PREFIX}<arch>), not to {name}")
        options["stem"] = stem
    return options


def build_model(name: str, num_classes: int, *, in_channels: int = 3, image_size: int = 32,
                dropout: Optional[float] = None, stem: str = "auto") -> nn.Module:
    """A randomly initialised model ``name`` (one of :data:`MODELS` or ``"torchvision:<arch>"``).

    ``dropout`` (``None``: the model's default) applies to models that have one (``wrn28_10``,
    ``vit_s``, torchvision's VGG, ViT, Swin, ...); ``stem`` to torchvision ResNets and
    DenseNets (``torchvision_models``). The model is run once on a blank image of the given
    size, so an architecture that cannot take that size fails here, with its name.
    """
    options = model_options(name, dropout=dropout, stem=stem)
    num_classes, in_channels = check_model_args(num_classes, in_channels)
    image_size = check_int("image_size", image_size, min=4)
    model = _builder(name, "model")(num_classes, in_channels, image_size, **options)
    _probe(model, name, num_classes, in_channels, image_size)
    return model


def _probe(model: nn.Module, name: str, num_classes: int, in_channels: int, image_size: int) -> None:
    """One eval-mode forward of a blank image: the logits must be (1, num_classes)."""
    x = torch.zeros(1, in_channels, image_size, image_size)
    model.eval()
    try:
        with torch.no_grad():
            logits = logits_of(model(x))
    except (RuntimeError, ValueError, AssertionError, IndexError) as exc:
        raise ValueError(f"{name} cannot run on {in_channels}x{image_size}x{image_size} images: "
                         f"{type(exc).__name__}: {exc}") from exc
    finally:
        model.train()
    if tuple(logits.shape) != (1, num_classes):
        raise ValueError(f"{name} returned logits of shape {tuple(logits.shape)} for one image; expected "
                         f"(1, {num_classes})")


__all__ = ["AllConvNet", "CifarResNet", "EmbeddingClassifier", "EmbeddingReader", "MODELS", "PreActResNet18",
           "ShakeShake", "SmallCNN", "TORCHVISION_PREFIX", "WideResNet", "build_model", "build_torchvision",
           "find_classifier", "load_weights", "logits_of", "mixing_points", "model_options", "read_state_dict",
           "torchvision_archs", "vit_s"]
