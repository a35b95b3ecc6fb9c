"""Training configuration: nested dataclasses loaded from YAML, validated on load.

A config file has the sections below (all optional; the defaults train a small CNN
on the embedded digits data with the coreset paper's optimiser and schedule shape:
SGD, momentum 0.9, LR 0.1, x0.1 at 50% and 75% of the epochs; docs/paper_settings.md
compares the shipped configs with the papers). Unknown keys, wrong types and out-of-range values raise
``ConfigError`` naming the key; the policy's options under ``augment.policy_options`` (older
name: ``augment.selector``, still accepted) are typed by the chosen policy
(``augment.policy_options.eps``). ``--set a.b=value`` overrides parse the value as YAML
(``--set optim.lr=0.05``, ``--set schedule.milestones=[100,150]``,
``--set augment.policy_options.method=lazy``). The typed-config machinery is
``augcore.config``, shared with ``augcore generate``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

from augcore.config import ConfigError, apply_overrides, build, load_yaml, require, require_choice, to_dict
from augcore.train.schedules import REFINEMENT_MODES, SCHEDULES

BATCH_AUGS = ("none", "mixup", "cutmix", "manifold_mixup")
AMP_MODES = ("none", "bf16", "fp16")
OPTIMIZERS = ("sgd", "adam")
STATS_SOURCES = ("eval", "in_epoch")
TRAIN_ON = ("full", "selection", "random_subset")
SELECT_FROM = ("all", "subset")

__all__ = ["AMP_MODES", "AugmentConfig", "BATCH_AUGS", "ConfigError", "DataConfig", "ModelConfig", "OptimConfig",
           "OPTIMIZERS", "RefinementConfig", "RunConfig", "ScheduleConfig", "TrainConfig", "apply_overrides",
           "config_from_dict", "load_config", "resolve_augment_aliases"]


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
    batch_aug: str = "none"             # none | mixup | cutmix | manifold_mixup (soft-label loss)
    mix_alpha: float = 1.0              # lam ~ Beta(mix_alpha, mix_alpha)
    # probability a batch is mixed; null: the paper's, 0.5 for cutmix (Yun et al.; the refinement paper), else 1
    batch_aug_prob: Optional[float] = None
    # manifold_mixup: mixing points drawn from (0: the input, k: the model's k-th residual stage); null:
    # Verma et al.'s released [0, 1, 2]
    manifold_mixup_layers: Optional[List[int]] = None
    # the strong augmentation's settings (docs/training.md, "Augmentation settings"); null: the data set's
    autoaugment_policy: Optional[str] = None      # cifar10 | imagenet | svhn
    cutout_size: Optional[int] = None             # pixels; null: 16 CIFAR, 20 SVHN, 32 Tiny-ImageNet and 224-px folders
    augmix_severity: int = 1            # AugMix: the coreset paper's released code (augmix/imagenet.py: aug)
    augmix_width: int = 3
    augmix_depth: int = -1              # -1: a random depth in [1, 3]
    augmix_alpha: float = 1.0
    augmix_all_ops: bool = False
    perturb_brightness: float = 0.2     # perturb: the released main.py --noise_only (ColorJitter + GaussianBlur(5))
    perturb_blur_kernel: int = 5
    perturb_blur_sigma: List[float] = field(default_factory=lambda: [0.1, 2.0])
    noise_sigma: float = 0.05           # noise: Gaussian pixel noise std on the [0, 1] image
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
    # the policy's options, typed by the policy (the selector's keyword arguments for selector policies);
    # ``augment.selector`` is the older name of this key and still works in files and --set
    policy_options: Dict[str, Any] = field(default_factory=dict)

    @property
    def selector(self) -> Dict[str, Any]:
        """The older name of ``policy_options``."""
        return self.policy_options


@dataclass
class RefinementConfig:
    enabled: bool = False
    epochs: int = 50                    # M
    mode: str = "extra"                 # extra (M after N, the paper) | last (last M of N)
    lr: Optional[float] = None          # start LR; None: final-epoch LR (step schedules) / cosine_lr
    cosine_lr: float = 1e-4
    # the LR over the M refinement epochs, from refinement.lr: constant (the paper) | cosine (to min_lr) |
    # multistep (x gamma at milestones, refinement epochs counted from 0; default 50% and 75% of M)
    schedule: str = "constant"
    milestones: List[int] = field(default_factory=list)
    gamma: float = 0.1
    min_lr: float = 0.0
    # the last weaken_epochs epochs before refinement take the strong augmentation linearly to 0
    # (docs/training.md, "Refinement": the strength of each kind)
    weaken_epochs: int = 0


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
    clean_loss: bool = False            # log train_loss_clean: un-augmented training data, eval mode, each epoch


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
        from augcore.data.transforms import strong_parts
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
        try:
            strong_parts(self.augment.strong)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"augment.strong: {exc}") from None
        a, o, s, r = self.augment, self.optim, self.schedule, self.refinement
        choice("augment.mode", a.mode, tuple(POLICIES))
        policy_options(a.mode, a.policy_options)  # types and ranges of augment.policy_options.*, by the policy
        choice("augment.stats", a.stats, STATS_SOURCES)
        choice("augment.select_from", a.select_from, SELECT_FROM)
        choice("augment.batch_aug", a.batch_aug, BATCH_AUGS)
        choice("augment.weighting", a.weighting, ("unit", "gamma"))
        choice("augment.placement", a.placement, ("append", "inplace"))
        choice("augment.train_on", a.train_on, TRAIN_ON)
        choice("augment.candidate_choice", a.candidate_choice, ("sample", "max"))
        require(a.candidates >= 1, "augment.candidates", f"must be >= 1, got {a.candidates}")
        require(a.wu2020_ops >= 1, "augment.wu2020_ops", f"must be >= 1, got {a.wu2020_ops}")
        require(a.strong != "wu2020" or a.mode != "influence" or a.policy_options.get("augmenter", "none") == "none",
                "augment.strong", "wu2020 copies cannot be combined with the influence policy's learned "
                "augmentation (augment.policy_options.augmenter)")
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
        self._validate_augment_settings()
        self._validate_refinement_variants()
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


    def _validate_augment_settings(self) -> None:
        from augcore.data.transforms import AUTOAUGMENT_POLICIES

        a = self.augment
        require(a.batch_aug_prob is None or 0 <= a.batch_aug_prob <= 1, "augment.batch_aug_prob",
                f"must lie in [0, 1] or be null, got {a.batch_aug_prob}")
        require(a.batch_aug_prob is None or a.batch_aug != "none", "augment.batch_aug_prob",
                "applies to a batch augmentation; set augment.batch_aug (mixup, cutmix, manifold_mixup)")
        if a.manifold_mixup_layers is not None:
            require(a.batch_aug == "manifold_mixup", "augment.manifold_mixup_layers",
                    f"applies to augment.batch_aug: manifold_mixup, got batch_aug {a.batch_aug!r}")
            require(len(a.manifold_mixup_layers) > 0 and min(a.manifold_mixup_layers) >= 0,
                    "augment.manifold_mixup_layers",
                    f"must list mixing points >= 0 (0: the input), got {a.manifold_mixup_layers}")
        if a.autoaugment_policy is not None:
            require_choice("augment.autoaugment_policy", a.autoaugment_policy, AUTOAUGMENT_POLICIES)
        require(a.cutout_size is None or a.cutout_size >= 1, "augment.cutout_size",
                f"must be >= 1 pixel or null, got {a.cutout_size}")
        require(1 <= a.augmix_severity <= 10, "augment.augmix_severity",
                f"must lie in [1, 10], got {a.augmix_severity}")
        require(a.augmix_width >= 1, "augment.augmix_width", f"must be >= 1, got {a.augmix_width}")
        require(a.augmix_depth == -1 or a.augmix_depth >= 1, "augment.augmix_depth",
                f"must be >= 1, or -1 for a random depth in [1, 3]; got {a.augmix_depth}")
        require(a.augmix_alpha > 0, "augment.augmix_alpha", f"must be > 0, got {a.augmix_alpha}")
        require(a.perturb_brightness >= 0, "augment.perturb_brightness", f"must be >= 0, got {a.perturb_brightness}")
        require(a.perturb_blur_kernel >= 1 and a.perturb_blur_kernel % 2 == 1, "augment.perturb_blur_kernel",
                f"must be an odd number of pixels, got {a.perturb_blur_kernel}")
        sigma = a.perturb_blur_sigma
        require(len(sigma) == 2 and 0 < sigma[0] <= sigma[1], "augment.perturb_blur_sigma",
                f"must be [min, max] with 0 < min <= max, got {sigma}")
        require(a.noise_sigma >= 0, "augment.noise_sigma", f"must be >= 0, got {a.noise_sigma}")

    def _validate_refinement_variants(self) -> None:
        a, r, s = self.augment, self.refinement, self.schedule
        require_choice("refinement.schedule", r.schedule, SCHEDULES)
        if r.enabled:
            require(all(0 < m < r.epochs for m in r.milestones) and list(r.milestones) == sorted(r.milestones),
                    "refinement.milestones",
                    f"must be increasing refinement epochs in (0, refinement.epochs={r.epochs}), got {r.milestones}")
        require(not r.milestones or r.schedule == "multistep", "refinement.milestones",
                f"apply to refinement.schedule: multistep, got schedule {r.schedule!r}")
        require(0 < r.gamma <= 1, "refinement.gamma", f"must lie in (0, 1], got {r.gamma}")
        require(r.min_lr >= 0, "refinement.min_lr", f"must be >= 0, got {r.min_lr}")
        require(r.lr is None or r.min_lr <= r.lr, "refinement.min_lr",
                f"must not exceed refinement.lr={r.lr}, got {r.min_lr}")
        intensive = s.epochs - (r.epochs if r.enabled and r.mode == "last" else 0)
        require(0 <= r.weaken_epochs < intensive, "refinement.weaken_epochs",
                f"must lie in [0, {intensive}) (the epochs of strong augmentation before refinement), "
                f"got {r.weaken_epochs}")
        if r.weaken_epochs:
            require(a.strong != "wu2020", "refinement.weaken_epochs",
                    "cannot weaken augment.strong: wu2020 (its copies are made by the policy, not the data loader)")
            require(a.policy_options.get("augmenter", "none") == "none", "refinement.weaken_epochs",
                    "cannot weaken the influence policy's learned augmentation (augment.policy_options.augmenter)")


# older key -> its current name, in the augment section
AUGMENT_ALIASES = {"selector": "policy_options"}


def resolve_augment_aliases(augment: Any) -> Any:
    """The raw ``augment`` section with each older key under its current name (``selector`` ->
    ``policy_options``). Given both, their options are merged; one option given twice with two
    values raises ``ConfigError``."""
    if not isinstance(augment, dict) or not set(AUGMENT_ALIASES) & set(augment):
        return augment
    augment = dict(augment)
    for old, new in AUGMENT_ALIASES.items():
        if old not in augment:
            continue
        value = augment.pop(old)
        if new not in augment:
            augment[new] = value
            continue
        if not isinstance(value, dict) or not isinstance(augment[new], dict):
            raise ConfigError(f"augment.{old}: the older name of augment.{new}; give one of the two")
        clashes = sorted(k for k in set(value) & set(augment[new]) if value[k] != augment[new][k])
        if clashes:
            raise ConfigError(f"augment.{old}.{clashes[0]}: given as {value[clashes[0]]!r} and as "
                              f"augment.{new}.{clashes[0]}={augment[new][clashes[0]]!r}")
        augment[new] = {**augment[new], **value}
    return augment


def config_from_dict(raw: Optional[Dict[str, Any]]) -> TrainConfig:
    """Builds and validates a TrainConfig; every unknown key is reported by name, and a key
    written under its older name (``augment.selector``) is named so in errors."""
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping of sections, got {type(raw).__name__}")
    augment = (raw or {}).get("augment")
    written = [old for old in AUGMENT_ALIASES if isinstance(augment, dict) and old in augment]
    if written:
        raw = {**raw, "augment": resolve_augment_aliases(augment)}
    try:
        return _build_config(raw)
    except ConfigError as exc:
        message = str(exc)
        for old in written:
            message = message.replace(f"augment.{AUGMENT_ALIASES[old]}", f"augment.{old}")
        if message == str(exc):
            raise
        raise ConfigError(message) from None


def _build_config(raw: Optional[Dict[str, Any]]) -> TrainConfig:
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
