"""Training configuration: nested dataclasses loaded from YAML, validated on load.

A config file has the sections below (all optional; defaults are the coreset
paper's CIFAR-10 / ResNet-20 setup scaled to the embedded digits data where a data
set is needed). Unknown keys, wrong types and out-of-range values raise
``ConfigError`` naming the key. ``--set section.key=value`` overrides parse the
value as YAML (``--set optim.lr=0.05``, ``--set schedule.milestones=[100,150]``).
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import yaml

from augcore.train.schedules import REFINEMENT_MODES, SCHEDULES

AUGMENT_MODES = ("none", "full", "random", "coreset", "max_loss")
BATCH_AUGS = ("none", "mixup", "cutmix")
AMP_MODES = ("none", "bf16", "fp16")


class ConfigError(ValueError):
    """A configuration key is unknown, mistyped or out of range."""


@dataclass
class DataConfig:
    name: str = "digits"
    root: Optional[str] = None
    image_size: Optional[int] = None    # decode size of class-folder sets (Caltech-256, TinyImageNet)
    imbalance_factor: Optional[float] = None
    label_noise: float = 0.0
    num_workers: int = 0


@dataclass
class ModelConfig:
    name: str = "small_cnn"


@dataclass
class OptimConfig:
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    batch_size: int = 128
    grad_clip: Optional[float] = None   # max global grad norm; None = no clipping
    sam_rho: float = 0.0                # > 0 wraps SGD in SAM
    sam_adaptive: bool = False


@dataclass
class ScheduleConfig:
    name: str = "multistep"
    epochs: int = 200                   # N: epochs the LR schedule spans
    warmup_epochs: float = 0.0
    milestones: List[int] = field(default_factory=list)   # empty = 50% and 75% of epochs
    gamma: float = 0.1
    min_lr: float = 0.0                 # cosine floor


@dataclass
class AugmentConfig:
    mode: str = "coreset"               # none | full | random | coreset | max_loss
    strong: str = "autoaugment"         # strong transform applied to selected examples
    batch_aug: str = "none"             # none | mixup | cutmix (soft-label loss)
    mix_alpha: float = 1.0
    fraction: float = 0.1               # augmentation budget, fraction of the training set
    reselect_every: int = 20            # R epochs
    copies: int = 1
    weighting: str = "unit"             # unit (released code) | gamma (paper)
    placement: str = "append"           # append copies | replace originals in place
    train_on: str = "full"              # full | selection | random_subset
    random_subset_fraction: float = 0.5  # size of the random subset for train_on=random_subset
    selector: Dict[str, Any] = field(default_factory=dict)  # extra options for build_selector


@dataclass
class RefinementConfig:
    enabled: bool = False
    epochs: int = 50                    # M
    mode: str = "extra"                 # extra (M after N, the paper) | last (last M of N)
    lr: Optional[float] = None          # None: final-epoch LR (step schedules) / cosine_lr
    cosine_lr: float = 1e-4


@dataclass
class RunConfig:
    seed: int = 0
    device: str = "auto"                # auto | cpu | cuda | cuda:N
    amp: str = "none"                   # none | bf16 | fp16
    compile: bool = False
    eval_batch_size: int = 512
    out: str = "runs/train"
    progress: bool = True
    num_threads: Optional[int] = None   # torch CPU threads; None leaves torch's default


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    refinement: RefinementConfig = field(default_factory=RefinementConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> "TrainConfig":
        def require(ok: bool, key: str, message: str) -> None:
            if not ok:
                raise ConfigError(f"{key}: {message}")

        def choice(key: str, value: str, options: Sequence[str]) -> None:
            require(value in options, key, f"must be one of {tuple(options)}, got {value!r}")

        a, o, s, r = self.augment, self.optim, self.schedule, self.refinement
        choice("augment.mode", a.mode, AUGMENT_MODES)
        choice("augment.batch_aug", a.batch_aug, BATCH_AUGS)
        choice("augment.weighting", a.weighting, ("unit", "gamma"))
        choice("augment.placement", a.placement, ("append", "inplace"))
        choice("augment.train_on", a.train_on, ("full", "selection", "random_subset"))
        choice("schedule.name", s.name, SCHEDULES)
        choice("refinement.mode", r.mode, REFINEMENT_MODES)
        choice("run.amp", self.run.amp, AMP_MODES)
        require(0.0 < a.fraction <= 1.0, "augment.fraction", f"must lie in (0, 1], got {a.fraction}")
        require(0.0 < a.random_subset_fraction <= 1.0, "augment.random_subset_fraction",
                f"must lie in (0, 1], got {a.random_subset_fraction}")
        require(a.reselect_every >= 1, "augment.reselect_every", f"must be >= 1, got {a.reselect_every}")
        require(a.copies >= 1, "augment.copies", f"must be >= 1, got {a.copies}")
        require(a.mix_alpha > 0, "augment.mix_alpha", f"must be > 0, got {a.mix_alpha}")
        require(a.mode != "max_loss" or a.train_on == "full", "augment.train_on",
                "max_loss augments inside each batch and trains on the full data; use train_on: full")
        require(o.lr > 0, "optim.lr", f"must be > 0, got {o.lr}")
        require(o.batch_size >= 1, "optim.batch_size", f"must be >= 1, got {o.batch_size}")
        require(o.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {o.weight_decay}")
        require(0 <= o.momentum < 1, "optim.momentum", f"must lie in [0, 1), got {o.momentum}")
        require(not o.nesterov or o.momentum > 0, "optim.nesterov", "needs optim.momentum > 0")
        require(o.sam_rho >= 0, "optim.sam_rho", f"must be >= 0, got {o.sam_rho}")
        require(o.grad_clip is None or o.grad_clip > 0, "optim.grad_clip", f"must be > 0 or null, got {o.grad_clip}")
        require(s.epochs >= 1, "schedule.epochs", f"must be >= 1, got {s.epochs}")
        require(0 <= s.warmup_epochs < s.epochs, "schedule.warmup_epochs",
                f"must lie in [0, schedule.epochs={s.epochs}), got {s.warmup_epochs}")
        require(all(0 < m < s.epochs for m in s.milestones) and list(s.milestones) == sorted(s.milestones),
                "schedule.milestones", f"must be increasing epochs in (0, {s.epochs}), got {s.milestones}")
        require(not r.enabled or r.epochs >= 1, "refinement.epochs", f"must be >= 1, got {r.epochs}")
        require(not (r.enabled and r.mode == "last" and r.epochs >= s.epochs), "refinement.epochs",
                f"'last' mode needs refinement.epochs < schedule.epochs ({r.epochs} >= {s.epochs})")
        require(r.lr is None or r.lr > 0, "refinement.lr", f"must be > 0 or null, got {r.lr}")
        require(self.run.eval_batch_size >= 1, "run.eval_batch_size", "must be >= 1")
        require(self.data.num_workers >= 0, "data.num_workers", "must be >= 0")
        return self


def _field_types(cls) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Checks ``value`` against the field's type; ints are accepted for floats."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin in (list, List):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def config_from_dict(raw: Optional[Dict[str, Any]]) -> TrainConfig:
    """Builds and validates a TrainConfig; every unknown key is reported by name."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping of sections, got {type(raw).__name__}")
    sections = _field_types(TrainConfig)
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; known: {sorted(sections)}")
    built = {}
    for name, section_cls in sections.items():
        values = raw.get(name) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{name}: expected a mapping of keys, got {values!r}")
        types = _field_types(section_cls)
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise ConfigError(f"unknown key(s) {[f'{name}.{k}' for k in unknown]}; "
                              f"known keys of '{name}': {sorted(types)}")
        built[name] = section_cls(**{k: _coerce(v, types[k], f"{name}.{k}") for k, v in values.items()})
    return TrainConfig(**built).validate()


def apply_overrides(raw: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """Applies ``section.key=value`` strings (value parsed as YAML) to a raw config dict."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (raw or {}).items()}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected section.key=value")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"override {item!r}: the key must be section.key (e.g. optim.lr)")
        section, name = parts
        if raw.get(section) is None:
            raw[section] = {}
        if not isinstance(raw[section], dict):
            raise ConfigError(f"override {item!r}: section '{section}' is not a mapping in the config")
        raw[section][name] = yaml.safe_load(text)
    return raw


def load_config(path: Optional[Union[str, os.PathLike]] = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Reads a YAML config (or the defaults when ``path`` is None) and applies overrides."""
    raw: Dict[str, Any] = {}
    if path is not None:
        from augcore.configs import resolve_config
        path = resolve_config(path)
        with open(path) as fh:
            try:
                raw = yaml.safe_load(fh) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return config_from_dict(apply_overrides(raw, overrides))
