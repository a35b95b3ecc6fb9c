"""Training configuration: nested dataclasses loaded from YAML, validated on load.

A config file has the sections below (all optional; the defaults train a small CNN
on the embedded digits data with the coreset paper's optimiser and schedule shape:
SGD, momentum 0.9, LR 0.1, x0.1 at 50% and 75% of the epochs; docs/paper_settings.md
compares the shipped configs with the papers). Unknown keys, wrong types and out-of-range values raise
``ConfigError`` naming the key; the selector options under ``augment.selector`` are
typed by the chosen policy (``augment.selector.eps``). ``--set a.b=value`` overrides
parse the value as YAML (``--set optim.lr=0.05``, ``--set schedule.milestones=[100,150]``,
``--set augment.selector.method=lazy``). The typed-config machinery is
``augcore.config``, shared with ``augcore generate``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

from augcore.config import ConfigError, apply_overrides, build, load_yaml, require, require_choice, to_dict
from augcore.train.schedules import REFINEMENT_MODES, SCHEDULES

BATCH_AUGS = ("none", "mixup", "cutmix")
AMP_MODES = ("none", "bf16", "fp16")
OPTIMIZERS = ("sgd", "adam")
STATS_SOURCES = ("eval", "in_epoch")
TRAIN_ON = ("full", "selection", "random_subset")
SELECT_FROM = ("all", "subset")

__all__ = ["AMP_MODES", "AugmentConfig", "BATCH_AUGS", "ConfigError", "DataConfig", "ModelConfig", "OptimConfig",
           "OPTIMIZERS", "RefinementConfig", "RunConfig", "ScheduleConfig", "TrainConfig", "apply_overrides",
           "config_from_dict", "load_config"]


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
    name: str = "small_cnn"             # one of augcore.models.MODELS, or torchvision:<arch>
    dropout: Optional[float] = None     # models that have dropout (WRN, vit_s, torchvision's); null: the model's own
    stem: str = "auto"                  # torchvision ResNets/DenseNets: auto | cifar | imagenet (docs/models.md)
    weights: Optional[str] = None       # a local state dict file (safetensors or torch.save), loaded verified
    weights_skip: List[str] = field(default_factory=list)   # key prefixes left at initialisation: [fc]
    weights_sha256: Optional[str] = None   # the file's SHA-256, or a prefix of >= 8 hex digits


@dataclass
class OptimConfig:
    name: str = "sgd"                   # sgd | adam (the influence paper's MNIST classifier: Adam)
    lr: float = 0.1
    momentum: float = 0.9               # sgd only
    nesterov: bool = False              # sgd only
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])   # adam only
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
    mode: str = "coreset"               # a selection policy: augcore.train.policies.POLICIES
    strong: str = "autoaugment"         # strong transform applied to selected examples
    batch_aug: str = "none"             # none | mixup | cutmix (soft-label loss)
    mix_alpha: float = 1.0
    fraction: float = 0.1               # augmentation budget, fraction of the training set
    reselect_every: int = 20            # R epochs
    copies: int = 1
    weighting: str = "unit"             # unit (released code) | gamma (paper)
    placement: str = "append"           # append copies | replace originals in place
    train_on: str = "full"              # full | selection | random_subset
    # size of the random training subset for train_on=random_subset; null: the same size as the
    # selection (augment.fraction), as the released code's random-subset setting
    random_subset_fraction: Optional[float] = None
    # train_on=random_subset: redraw the training subset every R epochs and select the copies
    # from all data (the released code's protocol), or keep one subset and select inside it
    random_subset_redraw: bool = True
    select_from: str = "all"            # all | subset (train_on=random_subset only)
    stats: str = "eval"                 # eval: an inference pass per selection | in_epoch: the last epoch's outputs
    # strong: wu2020 (Wu et al. 2020, dauphin's defaults): L candidates per copy, scored in one eval-mode
    # pass; one kept, sampled in proportion to its loss (sample) or the highest (max); ops composed per candidate
    candidates: int = 4
    candidate_choice: str = "sample"
    wu2020_ops: int = 2
    # mode: fixed trains on this saved Selection (augcore select --out FILE) for the whole run
    selection_file: Optional[str] = None
    selector: Dict[str, Any] = field(default_factory=dict)  # the policy's options, typed by the policy


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
    grad_variance: bool = False         # log E||g_B - g||^2 each epoch (metrics.minibatch_gradient_variance; one extra pass)


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
        return to_dict(self)

    def validate(self) -> "TrainConfig":
        from augcore.data.datasets import DATASETS
        from augcore.data.transforms import STRONG_AUGMENTATIONS
        from augcore.models import model_options
        from augcore.train.policies import POLICIES, policy_options

        choice = require_choice
        choice("data.name", self.data.name, sorted(DATASETS))
        m = self.model
        try:
            model_options(m.name, dropout=m.dropout, stem=m.stem, prefix="model.")
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        for key in ("weights_skip", "weights_sha256"):
            require(m.weights is not None or not getattr(m, key), f"model.{key}",
                    "needs model.weights (a file to load)")
        choice("augment.strong", self.augment.strong, STRONG_AUGMENTATIONS)
        a, o, s, r = self.augment, self.optim, self.schedule, self.refinement
        choice("augment.mode", a.mode, tuple(POLICIES))
        policy_options(a.mode, a.selector)  # types and ranges of augment.selector.*, by the policy
        choice("augment.stats", a.stats, STATS_SOURCES)
        choice("augment.select_from", a.select_from, SELECT_FROM)
        choice("augment.batch_aug", a.batch_aug, BATCH_AUGS)
        choice("augment.weighting", a.weighting, ("unit", "gamma"))
        choice("augment.placement", a.placement, ("append", "inplace"))
        choice("augment.train_on", a.train_on, TRAIN_ON)
        choice("augment.candidate_choice", a.candidate_choice, ("sample", "max"))
        require(a.candidates >= 1, "augment.candidates", f"must be >= 1, got {a.candidates}")
        require(a.wu2020_ops >= 1, "augment.wu2020_ops", f"must be >= 1, got {a.wu2020_ops}")
        require(a.strong != "wu2020" or a.mode != "influence" or a.selector.get("augmenter", "none") == "none",
                "augment.strong", "wu2020 copies cannot be combined with the influence policy's learned "
                "augmentation (augment.selector.augmenter)")
        require((a.mode == "fixed") == (a.selection_file is not None), "augment.selection_file",
                "must be set exactly when augment.mode is 'fixed' (the Selection file to train with), "
                f"got mode {a.mode!r} and selection_file {a.selection_file!r}")
        choice("schedule.name", s.name, SCHEDULES)
        choice("refinement.mode", r.mode, REFINEMENT_MODES)
        choice("run.amp", self.run.amp, AMP_MODES)
        require(0.0 < a.fraction <= 1.0, "augment.fraction", f"must lie in (0, 1], got {a.fraction}")
        require(a.random_subset_fraction is None or 0.0 < a.random_subset_fraction <= 1.0,
                "augment.random_subset_fraction",
                f"must lie in (0, 1], got {a.random_subset_fraction}")
        require(a.reselect_every >= 1, "augment.reselect_every", f"must be >= 1, got {a.reselect_every}")
        require(a.copies >= 1, "augment.copies", f"must be >= 1, got {a.copies}")
        require(a.mix_alpha > 0, "augment.mix_alpha", f"must be > 0, got {a.mix_alpha}")
        require(a.mode != "max_loss_batch" or a.train_on == "full", "augment.train_on",
                "max_loss_batch augments inside each batch and trains on the full data; use train_on: full")
        require(a.stats == "eval" or (a.train_on == "full" and a.placement == "append" and a.batch_aug == "none"),
                "augment.stats", "in_epoch statistics need every original, unmixed, in every epoch "
                "(train_on: full, placement: append, batch_aug: none)")
        require(o.lr > 0, "optim.lr", f"must be > 0, got {o.lr}")
        require(o.batch_size >= 1, "optim.batch_size", f"must be >= 1, got {o.batch_size}")
        require(o.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {o.weight_decay}")
        require(0 <= o.momentum < 1, "optim.momentum", f"must lie in [0, 1), got {o.momentum}")
        require(not o.nesterov or o.momentum > 0, "optim.nesterov", "needs optim.momentum > 0")
        choice("optim.name", o.name, OPTIMIZERS)
        require(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas",
                f"must be two numbers in [0, 1) (Adam's beta1, beta2), got {o.betas}")
        require(o.name == "sgd" or not o.nesterov, "optim.nesterov", f"applies to sgd only, got optim.name {o.name!r}")
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
        require(s.gamma > 0, "schedule.gamma", f"must be > 0, got {s.gamma}")
        require(s.min_lr >= 0, "schedule.min_lr", f"must be >= 0, got {s.min_lr}")
        require(r.cosine_lr > 0, "refinement.cosine_lr", f"must be > 0, got {r.cosine_lr}")
        require(self.run.eval_batch_size >= 1, "run.eval_batch_size", f"must be >= 1, got {self.run.eval_batch_size}")
        require(self.run.seed >= 0, "run.seed", f"must be >= 0, got {self.run.seed}")
        require(self.run.num_threads is None or self.run.num_threads >= 1, "run.num_threads",
                f"must be >= 1 or null, got {self.run.num_threads}")
        require(self.data.num_workers >= 0, "data.num_workers", f"must be >= 0, got {self.data.num_workers}")
        require(self.data.image_size is None or self.data.image_size >= 1, "data.image_size",
                f"must be a positive number of pixels or null, got {self.data.image_size}")
        require(self.data.imbalance_factor is None or 1 <= self.data.imbalance_factor < float("inf"),
                "data.imbalance_factor", f"must be a finite number >= 1 or null, got {self.data.imbalance_factor}")
        require(0 <= self.data.label_noise <= 1, "data.label_noise", f"must lie in [0, 1], got {self.data.label_noise}")
        require(self.optim.batch_size >= 1, "optim.batch_size", f"must be >= 1, got {self.optim.batch_size}")
        require(self.run.device == "auto" or self.run.device == "cpu" or self.run.device.startswith("cuda"),
                "run.device", f"must be auto, cpu, cuda or cuda:N, got {self.run.device!r}")
        return self


def config_from_dict(raw: Optional[Dict[str, Any]]) -> TrainConfig:
    """Builds and validates a TrainConfig; every unknown key is reported by name."""
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping of sections, got {type(raw).__name__}")
    # sections name themselves in errors ("optim.lr", not "config.optim.lr")
    sections = {name: build(cls, (raw or {}).get(name), name)
                for name, cls in (("data", DataConfig), ("model", ModelConfig), ("optim", OptimConfig),
                                  ("schedule", ScheduleConfig), ("augment", AugmentConfig),
                                  ("refinement", RefinementConfig), ("run", RunConfig))}
    unknown = sorted(set(raw or {}) - set(sections))
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; known: {sorted(sections)}")
    return TrainConfig(**sections).validate()


def load_config(path: Optional[Union[str, os.PathLike]] = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Reads a YAML config (a path or a shipped config's name; the defaults when ``path`` is None)
    and applies ``--set`` overrides."""
    return config_from_dict(apply_overrides(load_yaml(path), overrides))
