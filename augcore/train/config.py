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

Each section validates its own keys (``OptimConfig.validate``, ...); the rules that join two
sections, or two parts of the augment section, live in one place,
``TrainConfig._validate_across_sections``, which ``TrainConfig.validate`` runs after the sections.
The augment section stays one flat level of keys in files, ``--set`` and checkpoints
(``augment.strong``, ``augment.cutout_size``); the code reads it through typed, read-only
parts: ``augment.policy``, ``.view``, ``.transforms`` and ``.mixing``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Sequence, Union

from augcore.config import ConfigError, apply_overrides, build, load_yaml, require, require_choice, to_dict
from augcore.train.schedules import REFINEMENT_MODES, SCHEDULES

BATCH_AUGS = ("none", "mixup", "cutmix", "manifold_mixup")
AMP_MODES = ("none", "bf16", "fp16")
OPTIMIZERS = ("sgd", "adam")
STATS_SOURCES = ("eval", "in_epoch")
TRAIN_ON = ("full", "selection", "random_subset")
SELECT_FROM = ("all", "subset")

__all__ = ["AMP_MODES", "AUGMENT_PARTS", "AugmentConfig", "BATCH_AUGS", "ConfigError", "DataConfig", "MixingSettings",
           "ModelConfig", "OptimConfig", "OPTIMIZERS", "PolicySettings", "RefinementConfig", "RunConfig",
           "ScheduleConfig", "TrainConfig", "TransformSettings", "ViewSettings", "apply_overrides",
           "config_from_dict", "load_config", "resolve_augment_aliases"]


@dataclass
class DataConfig:
    name: str = "digits"
    root: Optional[str] = None
    image_size: Optional[int] = None    # decode size of class-folder sets (Caltech-256, TinyImageNet)
    imbalance_factor: Optional[float] = None
    label_noise: float = 0.0
    num_workers: int = 0

    def validate(self) -> "DataConfig":
        from augcore.data.datasets import DATASETS

        require_choice("data.name", self.name, sorted(DATASETS))
        require(self.num_workers >= 0, "data.num_workers", f"must be >= 0, got {self.num_workers}")
        require(self.image_size is None or self.image_size >= 1, "data.image_size",
                f"must be a positive number of pixels or null, got {self.image_size}")
        require(self.imbalance_factor is None or 1 <= self.imbalance_factor < float("inf"),
                "data.imbalance_factor", f"must be a finite number >= 1 or null, got {self.imbalance_factor}")
        require(0 <= self.label_noise <= 1, "data.label_noise", f"must lie in [0, 1], got {self.label_noise}")
        return self


@dataclass
class ModelConfig:
    name: str = "small_cnn"             # one of augcore.models.MODELS, or torchvision:<arch>
    dropout: Optional[float] = None     # models that have dropout (WRN, vit_s, torchvision's); null: the model's own
    stem: str = "auto"                  # torchvision ResNets/DenseNets: auto | cifar | imagenet (docs/models.md)
    weights: Optional[str] = None       # a local state dict file (safetensors or torch.save), loaded verified
    weights_skip: List[str] = field(default_factory=list)   # key prefixes left at initialisation: [fc]
    weights_sha256: Optional[str] = None   # the file's SHA-256, or a prefix of >= 8 hex digits

    def validate(self) -> "ModelConfig":
        from augcore.models import model_options

        try:
            model_options(self.name, dropout=self.dropout, stem=self.stem, prefix="model.")
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        for key in ("weights_skip", "weights_sha256"):
            require(self.weights is not None or not getattr(self, key), f"model.{key}",
                    "needs model.weights (a file to load)")
        return self


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

    def validate(self) -> "OptimConfig":
        require(self.lr > 0, "optim.lr", f"must be > 0, got {self.lr}")
        require(self.batch_size >= 1, "optim.batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {self.weight_decay}")
        require(0 <= self.momentum < 1, "optim.momentum", f"must lie in [0, 1), got {self.momentum}")
        require(not self.nesterov or self.momentum > 0, "optim.nesterov", "needs optim.momentum > 0")
        require_choice("optim.name", self.name, OPTIMIZERS)
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optim.betas",
                f"must be two numbers in [0, 1) (Adam's beta1, beta2), got {self.betas}")
        require(self.name == "sgd" or not self.nesterov, "optim.nesterov",
                f"applies to sgd only, got optim.name {self.name!r}")
        require(self.sam_rho >= 0, "optim.sam_rho", f"must be >= 0, got {self.sam_rho}")
        require(self.grad_clip is None or self.grad_clip > 0, "optim.grad_clip",
                f"must be > 0 or null, got {self.grad_clip}")
        return self


@dataclass
class ScheduleConfig:
    name: str = "multistep"
    epochs: int = 200                   # N: epochs the LR schedule spans
    warmup_epochs: float = 0.0
    milestones: List[int] = field(default_factory=list)   # empty = 50% and 75% of epochs
    gamma: float = 0.1
    min_lr: float = 0.0                 # cosine floor

    def validate(self) -> "ScheduleConfig":
        require_choice("schedule.name", self.name, SCHEDULES)
        require(self.epochs >= 1, "schedule.epochs", f"must be >= 1, got {self.epochs}")
        require(0 <= self.warmup_epochs < self.epochs, "schedule.warmup_epochs",
                f"must lie in [0, schedule.epochs={self.epochs}), got {self.warmup_epochs}")
        require(all(0 < m < self.epochs for m in self.milestones) and list(self.milestones) == sorted(self.milestones),
                "schedule.milestones", f"must be increasing epochs in (0, {self.epochs}), got {self.milestones}")
        require(self.gamma > 0, "schedule.gamma", f"must be > 0, got {self.gamma}")
        require(self.min_lr >= 0, "schedule.min_lr", f"must be >= 0, got {self.min_lr}")
        return self


# The augment section's parts. Users write the section flat (augment.strong, augment.cutout_size, ...:
# the keys of AugmentConfig, which is also what checkpoints store); each part is a typed, read-only
# snapshot of its keys (AugmentConfig.policy, .view, .transforms, .mixing) for the code that consumes
# them, and validates those keys. A rule joining two parts lives in TrainConfig._validate_across_sections.

@dataclass(frozen=True)
class PolicySettings:
    """What is selected, when, and what is trained on: ``augment.mode`` and the keys that steer it."""
    mode: str
    fraction: float
    reselect_every: int
    stats: str
    policy_options: Dict[str, Any]
    selection_file: Optional[str]
    train_on: str
    random_subset_fraction: Optional[float]
    random_subset_redraw: bool
    select_from: str

    def validate(self) -> None:
        from augcore.train.policies import POLICIES, policy_options

        require_choice("augment.mode", self.mode, tuple(POLICIES))
        policy_options(self.mode, self.policy_options)  # types and ranges of augment.policy_options.*, by the policy
        require_choice("augment.stats", self.stats, STATS_SOURCES)
        require_choice("augment.select_from", self.select_from, SELECT_FROM)
        require_choice("augment.train_on", self.train_on, TRAIN_ON)
        require((self.mode == "fixed") == (self.selection_file is not None), "augment.selection_file",
                "must be set exactly when augment.mode is 'fixed' (the Selection file to train with), "
                f"got mode {self.mode!r} and selection_file {self.selection_file!r}")
        require(0.0 < self.fraction <= 1.0, "augment.fraction", f"must lie in (0, 1], got {self.fraction}")
        require(self.random_subset_fraction is None or 0.0 < self.random_subset_fraction <= 1.0,
                "augment.random_subset_fraction", f"must lie in (0, 1], got {self.random_subset_fraction}")
        require(self.reselect_every >= 1, "augment.reselect_every", f"must be >= 1, got {self.reselect_every}")
        require(self.mode != "max_loss_batch" or self.train_on == "full", "augment.train_on",
                "max_loss_batch augments inside each batch and trains on the full data; use train_on: full")


@dataclass(frozen=True)
class ViewSettings:
    """How the selected examples' copies join the training data."""
    copies: int
    weighting: str
    placement: str

    def validate(self) -> None:
        require_choice("augment.weighting", self.weighting, ("unit", "gamma"))
        require_choice("augment.placement", self.placement, ("append", "inplace"))
        require(self.copies >= 1, "augment.copies", f"must be >= 1, got {self.copies}")


@dataclass(frozen=True)
class TransformSettings:
    """The strong augmentation ``augment.strong`` and its settings: ``strong_transform``'s keywords
    (``augcore.data.transforms.STRONG_OPTION_KEYS``) and wu2020's candidate scoring."""
    strong: str
    autoaugment_policy: Optional[str]
    cutout_size: Optional[int]
    augmix_severity: int
    augmix_width: int
    augmix_depth: int
    augmix_alpha: float
    augmix_all_ops: bool
    perturb_brightness: float
    perturb_blur_kernel: int
    perturb_blur_sigma: List[float]
    noise_sigma: float
    candidates: int
    candidate_choice: str
    wu2020_ops: int

    def validate(self) -> None:
        from augcore.data.transforms import AUTOAUGMENT_POLICIES, strong_parts

        try:
            strong_parts(self.strong)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"augment.strong: {exc}") from None
        require_choice("augment.candidate_choice", self.candidate_choice, ("sample", "max"))
        require(self.candidates >= 1, "augment.candidates", f"must be >= 1, got {self.candidates}")
        require(self.wu2020_ops >= 1, "augment.wu2020_ops", f"must be >= 1, got {self.wu2020_ops}")
        if self.autoaugment_policy is not None:
            require_choice("augment.autoaugment_policy", self.autoaugment_policy, AUTOAUGMENT_POLICIES)
        require(self.cutout_size is None or self.cutout_size >= 1, "augment.cutout_size",
                f"must be >= 1 pixel or null, got {self.cutout_size}")
        require(1 <= self.augmix_severity <= 10, "augment.augmix_severity",
                f"must lie in [1, 10], got {self.augmix_severity}")
        require(self.augmix_width >= 1, "augment.augmix_width", f"must be >= 1, got {self.augmix_width}")
        require(self.augmix_depth == -1 or self.augmix_depth >= 1, "augment.augmix_depth",
                f"must be >= 1, or -1 for a random depth in [1, 3]; got {self.augmix_depth}")
        require(self.augmix_alpha > 0, "augment.augmix_alpha", f"must be > 0, got {self.augmix_alpha}")
        require(self.perturb_brightness >= 0, "augment.perturb_brightness",
                f"must be >= 0, got {self.perturb_brightness}")
        require(self.perturb_blur_kernel >= 1 and self.perturb_blur_kernel % 2 == 1, "augment.perturb_blur_kernel",
                f"must be an odd number of pixels, got {self.perturb_blur_kernel}")
        sigma = self.perturb_blur_sigma
        require(len(sigma) == 2 and 0 < sigma[0] <= sigma[1], "augment.perturb_blur_sigma",
                f"must be [min, max] with 0 < min <= max, got {sigma}")
        require(self.noise_sigma >= 0, "augment.noise_sigma", f"must be >= 0, got {self.noise_sigma}")


@dataclass(frozen=True)
class MixingSettings:
    """The batch augmentation (Mixup, CutMix, Manifold Mixup) applied to whole training batches."""
    batch_aug: str
    batch_aug_prob: Optional[float]
    mix_alpha: float
    manifold_mixup_layers: Optional[List[int]]

    @property
    def mix_prob(self) -> float:
        """The probability a batch is mixed: ``batch_aug_prob``, or the paper's, 0.5 for CutMix
        (Yun et al.; the refinement paper) and 1 for the others."""
        if self.batch_aug_prob is not None:
            return self.batch_aug_prob
        return 0.5 if self.batch_aug == "cutmix" else 1.0

    def validate(self) -> None:
        require_choice("augment.batch_aug", self.batch_aug, BATCH_AUGS)
        require(self.mix_alpha > 0, "augment.mix_alpha", f"must be > 0, got {self.mix_alpha}")
        require(self.batch_aug_prob is None or 0 <= self.batch_aug_prob <= 1, "augment.batch_aug_prob",
                f"must lie in [0, 1] or be null, got {self.batch_aug_prob}")
        require(self.batch_aug_prob is None or self.batch_aug != "none", "augment.batch_aug_prob",
                "applies to a batch augmentation; set augment.batch_aug (mixup, cutmix, manifold_mixup)")
        if self.manifold_mixup_layers is not None:
            require(self.batch_aug == "manifold_mixup", "augment.manifold_mixup_layers",
                    f"applies to augment.batch_aug: manifold_mixup, got batch_aug {self.batch_aug!r}")
            require(len(self.manifold_mixup_layers) > 0 and min(self.manifold_mixup_layers) >= 0,
                    "augment.manifold_mixup_layers",
                    f"must list mixing points >= 0 (0: the input), got {self.manifold_mixup_layers}")


AUGMENT_PARTS = (PolicySettings, ViewSettings, TransformSettings, MixingSettings)


@dataclass
class AugmentConfig:
    """The augment section as written in files, ``--set`` and checkpoints: one flat level of keys.
    The code reads it by part: :attr:`policy`, :attr:`view`, :attr:`transforms`, :attr:`mixing`."""
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

    def _part(self, cls: type) -> Any:
        return cls(**{f.name: getattr(self, f.name) for f in fields(cls)})

    @property
    def policy(self) -> PolicySettings:
        return self._part(PolicySettings)

    @property
    def view(self) -> ViewSettings:
        return self._part(ViewSettings)

    @property
    def transforms(self) -> TransformSettings:
        return self._part(TransformSettings)

    @property
    def mixing(self) -> MixingSettings:
        return self._part(MixingSettings)

    @property
    def selector(self) -> Dict[str, Any]:
        """The older name of ``policy_options``."""
        return self.policy_options

    def validate(self) -> "AugmentConfig":
        for part in (self.transforms, self.policy, self.view, self.mixing):
            part.validate()
        return self


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

    def validate(self) -> "RefinementConfig":
        require_choice("refinement.mode", self.mode, REFINEMENT_MODES)
        require(not self.enabled or self.epochs >= 1, "refinement.epochs", f"must be >= 1, got {self.epochs}")
        require(self.lr is None or self.lr > 0, "refinement.lr", f"must be > 0 or null, got {self.lr}")
        require(self.cosine_lr > 0, "refinement.cosine_lr", f"must be > 0, got {self.cosine_lr}")
        require_choice("refinement.schedule", self.schedule, SCHEDULES)
        if self.enabled:
            milestones = list(self.milestones)
            require(all(0 < m < self.epochs for m in milestones) and milestones == sorted(milestones),
                    "refinement.milestones",
                    f"must be increasing refinement epochs in (0, refinement.epochs={self.epochs}), "
                    f"got {self.milestones}")
        require(not self.milestones or self.schedule == "multistep", "refinement.milestones",
                f"apply to refinement.schedule: multistep, got schedule {self.schedule!r}")
        require(0 < self.gamma <= 1, "refinement.gamma", f"must lie in (0, 1], got {self.gamma}")
        require(self.min_lr >= 0, "refinement.min_lr", f"must be >= 0, got {self.min_lr}")
        require(self.lr is None or self.min_lr <= self.lr, "refinement.min_lr",
                f"must not exceed refinement.lr={self.lr}, got {self.min_lr}")
        return self


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
    # log E||g_B - g||^2 each epoch (metrics.minibatch_gradient_variance; one extra pass)
    grad_variance: bool = False
    clean_loss: bool = False            # log train_loss_clean: un-augmented training data, eval mode, each epoch

    def validate(self) -> "RunConfig":
        require_choice("run.amp", self.amp, AMP_MODES)
        require(self.eval_batch_size >= 1, "run.eval_batch_size", f"must be >= 1, got {self.eval_batch_size}")
        require(self.seed >= 0, "run.seed", f"must be >= 0, got {self.seed}")
        require(self.num_threads is None or self.num_threads >= 1, "run.num_threads",
                f"must be >= 1 or null, got {self.num_threads}")
        require(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
                "run.device", f"must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        return self


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
        """Each section's own keys (its ``validate``), then the rules that join sections."""
        for section in fields(self):
            getattr(self, section.name).validate()
        self._validate_across_sections()
        return self

    def _validate_across_sections(self) -> None:
        """Every rule that joins two sections, or two parts of the augment section."""
        a, r, s = self.augment, self.refinement, self.schedule
        learned_augmenter = a.mode == "influence" and a.policy_options.get("augmenter", "none") != "none"
        require(a.strong != "wu2020" or not learned_augmenter,
                "augment.strong", "wu2020 copies cannot be combined with the influence policy's learned "
                "augmentation (augment.policy_options.augmenter)")
        require(a.stats == "eval" or (a.train_on == "full" and a.placement == "append" and a.batch_aug == "none"),
                "augment.stats", "in_epoch statistics need every original, unmixed, in every epoch "
                "(train_on: full, placement: append, batch_aug: none)")
        require(not (r.enabled and r.mode == "last" and r.epochs >= s.epochs), "refinement.epochs",
                f"'last' mode needs refinement.epochs < schedule.epochs ({r.epochs} >= {s.epochs})")
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
