"""A run's parts from its config: data, transforms, model and the view factory.

``build_run`` does the I/O and construction the loop should not know about; the loop,
``augcore select`` and the generation pipeline all start from its ``RunParts``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import torch
from torch import nn

from augcore.train.config import TrainConfig


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"run.device: {name!r} needs CUDA, which is not available here; use 'auto' or 'cpu'")
    return device


@dataclass
class RunParts:
    config: TrainConfig
    train_base: Any            # ImageDataset, raw training data
    test_set: Any              # test data under the eval transform
    inference_set: Any         # training data under the eval transform (selection passes)
    strong_view: Any           # training data under the strong transform
    weak: Any                  # the weak transform
    make_view: Callable        # (selection, originals rows or None) -> AugmentedSubsetDataset
    refine_view: Any           # weak-only view of the whole data (refinement epochs)
    model: nn.Module
    device: torch.device
    num_classes: int
    strong: Any = None         # the strong transform (a StrongOrWeak when refinement.weaken_epochs > 0)


def build_data(config: TrainConfig, train_set=None, test_set=None):
    """(training ImageDataset, test ImageDataset) as the config's data section says, unless given."""
    from augcore.data import load_dataset

    d, seed = config.data, config.run.seed
    kw = dict(root=d.root, seed=seed)
    if d.image_size is not None:
        kw["image_size"] = d.image_size
    train = train_set if train_set is not None else load_dataset(
        d.name, train=True, imbalance_factor=d.imbalance_factor, label_noise=d.label_noise, **kw)
    test = test_set if test_set is not None else load_dataset(d.name, train=False, **kw)
    return train, test


def build_model(config: TrainConfig, train_base, device: torch.device) -> nn.Module:
    """The config's model for ``train_base``'s classes, channels and image size, with
    ``model.weights`` loaded when set (a ``ConfigError`` names the key and what does not fit)."""
    from augcore.config import ConfigError
    from augcore.models import build_model as build_named_model
    from augcore.models import load_weights

    m = config.model
    try:
        model = build_named_model(m.name, train_base.num_classes, in_channels=train_base.channels,
                                  image_size=train_base.image_size[0], dropout=m.dropout, stem=m.stem)
    except ValueError as exc:
        raise ConfigError(f"model.name: {exc}") from exc
    if m.weights is not None:
        try:
            load_weights(model, m.weights, skip=m.weights_skip, sha256=m.weights_sha256)
        except (OSError, TypeError, ValueError) as exc:
            raise ConfigError(f"model.weights: {exc}") from exc
    return model.to(device)


def build_run(config: TrainConfig, *, model: Optional[nn.Module] = None, train_set=None, test_set=None,
              transforms: Optional[Tuple[Any, Any]] = None) -> RunParts:
    """The run's parts; ``model``, ``train_set``, ``test_set`` and ``transforms`` (weak, strong)
    replace what the config would build."""
    from augcore.data import AugmentedSubsetDataset
    from augcore.data.transforms import StrongOrWeak, eval_transform, strong_transform_for, weak_transform
    from augcore.train.checkpoint import seed_everything

    config = config.validate()
    if config.run.num_threads:
        torch.set_num_threads(config.run.num_threads)
    device = resolve_device(config.run.device)
    seed_everything(config.run.seed)
    train_base, test_base = build_data(config, train_set, test_set)
    if transforms is not None:
        weak, strong = transforms
    else:
        weak, strong = weak_transform(train_base), strong_transform_for(config.augment.transforms, train_base)
    if config.refinement.weaken_epochs:
        strong = StrongOrWeak(strong, weak)  # the trainer lowers its strength before refinement
    policy, view = config.augment.policy, config.augment.view

    def make_view(selection, originals: Optional[torch.Tensor], strong_override=None):
        train_on = policy.train_on if originals is None or policy.train_on != "full" else "random_subset"
        return AugmentedSubsetDataset(train_base, selection, weak=weak, strong=strong_override or strong,
                                      copies=view.copies, weighting=view.weighting, placement=view.placement,
                                      train_on=train_on,
                                      random_subset_indices=originals if train_on == "random_subset" else None)

    if model is None:
        model = build_model(config, train_base, device)
    return RunParts(config=config, train_base=train_base, test_set=test_base.with_transform(eval_transform(test_base)),
                    inference_set=train_base.with_transform(eval_transform(train_base)),
                    strong_view=train_base.with_transform(strong), weak=weak, make_view=make_view,
                    refine_view=AugmentedSubsetDataset(train_base, None, weak=weak, strong=strong),
                    model=model.to(device), device=device, num_classes=train_base.num_classes, strong=strong)
