"""The paper's pipeline end to end (Nguyen et al., "Do We Need All the Synthetic Data?"):
train to the separating epoch, select the slow-learnable examples (per-class 2-means,
higher-loss cluster), make faithful synthetic copies of them, and retrain from scratch
on originals + copies (or the Upsample baseline, or the originals alone) with SGD or SAM.

The config is one YAML mapping::

    train:    sections of augcore.train's TrainConfig (data, model, optim, schedule, augment, run);
              train.augment is the retrain's augmentation (default: none, weak only)
    separate: {epoch: E}             # the paper takes E from USEFUL and gives no number
    select:   {method: slow_learnable | high_loss | misclassified | random | all,
               features: probs, restarts: 10, fraction: null}
    generate: {model: PATH, kind: auto, scheduler: null, total_steps: 100, guidance_scale: 3.0,
               steps: [40, 50, 70, 80], init: image, seed: 0, batch_size: 16, device: auto, dtype: float32}
    retrain:  {method: synthetic | upsample | none, k: 5, sam_rho: 0.1}
    out:      runs/targeted_synthetic

From Python, :func:`prepare` runs (or, from their files, reuses) the first three stages and
returns a :class:`PreparedRun` whose ``retrain`` trains any number of variants on the same
selection and copies: the originals, Upsample and the synthetic copies, SGD and SAM, any k.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

import torch

from .datasets import SyntheticAugmentedDataset, UpsampledDataset
from .driver import PAPER_PROMPT, PAPER_STEPS, generate_copies, parse_shard
from .models import INITS, KINDS, load_backend
from .store import SyntheticStore
from .tiny import TINY_MODEL, UNTRAINED_NOTICE
from augcore.config import ConfigError, build, require, require_choice
from augcore.io import atomic_write_text
from augcore.selection.slow_learnable import FEATURES

RETRAIN_METHODS = ("synthetic", "upsample", "none")
# "random" is the paper's Syn-rand, "all" its Syn-all (Fig. 4); high_loss and misclassified its Table 7
SELECT_METHODS = ("slow_learnable", "high_loss", "misclassified", "random", "all")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class SeparateConfig:
    epoch: Optional[int] = None          # the separating epoch E (the paper takes it from USEFUL, no number)


@dataclass
class SelectConfig:
    method: str = "slow_learnable"
    features: str = "probs"              # slow_learnable's clustering features
    restarts: int = 10
    max_iter: int = 300
    # high_loss and random: the fraction of the training set; null = as many as slow_learnable
    # selects at the same checkpoint (the paper compares its selections at equal cost)
    fraction: Optional[float] = None


@dataclass
class GenerateConfig:
    model: Optional[str] = None          # a local diffusers pipeline folder, or "tiny"
    kind: str = "auto"
    scheduler: Optional[str] = None
    total_steps: int = 100
    guidance_scale: float = 3.0
    steps: List[int] = field(default_factory=lambda: list(PAPER_STEPS))
    init: str = "image"                  # image (the paper) | noise (its Fig. 5b ablation)
    seed: int = 0
    batch_size: int = 16
    prompt_template: str = PAPER_PROMPT
    device: str = "auto"
    dtype: str = "float32"
    shard: Optional[Union[str, List[int]]] = None
    progress: bool = True


@dataclass
class RetrainConfig:
    method: str = "synthetic"
    k: int = 5
    sam_rho: float = 0.0
    steps: Optional[List[int]] = None


@dataclass
class PipelineConfig:
    """``augcore generate``'s config: the sections of the module docstring, typed."""
    train: Dict[str, Any] = field(default_factory=dict)   # a TrainConfig mapping (checked by augcore.train)
    separate: SeparateConfig = field(default_factory=SeparateConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    out: str = "runs/targeted_synthetic"

    def train_config(self):
        """The ``train`` section as a validated TrainConfig; errors name ``train.<key>``."""
        from augcore.train.config import config_from_dict
        try:
            return config_from_dict(self.train)
        except ConfigError as exc:
            raise ConfigError(f"train.{exc}" if not str(exc).startswith("unknown") else f"train: {exc}") from None


def check_generate(g: GenerateConfig) -> GenerateConfig:
    require(bool(g.model), "generate.model", "the path of a local diffusers pipeline (or 'tiny') is required")
    require_choice("generate.dtype", g.dtype, tuple(DTYPES))
    require_choice("generate.kind", g.kind, ("auto",) + KINDS)
    require_choice("generate.init", g.init, INITS)
    require(g.total_steps >= 1, "generate.total_steps", f"must be >= 1, got {g.total_steps}")
    require(g.batch_size >= 1, "generate.batch_size", f"must be >= 1, got {g.batch_size}")
    require(g.guidance_scale >= 0, "generate.guidance_scale", f"must be >= 0, got {g.guidance_scale}")
    require(bool(g.steps) and all(0 < s <= g.total_steps for s in g.steps), "generate.steps",
            f"must be a non-empty list of steps in [1, total_steps={g.total_steps}], got {g.steps}")
    try:
        parse_shard(g.shard)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"generate.shard: {exc}") from None
    return g


def check_retrain(method: str, k: int, sam_rho: float) -> None:
    require_choice("retrain.method", method, RETRAIN_METHODS)
    require(isinstance(k, int) and not isinstance(k, bool) and k >= 1, "retrain.k", f"must be an int >= 1, got {k!r}")
    require(isinstance(sam_rho, (int, float)) and sam_rho >= 0, "retrain.sam_rho", f"must be >= 0, got {sam_rho!r}")


def pipeline_config(raw: Optional[Dict[str, Any]]) -> PipelineConfig:
    """Builds and checks the whole pipeline config (not ``generate.model``, which only
    the generation stages need)."""
    config = build(PipelineConfig, raw, "config")
    sep, sel, ret = config.separate, config.select, config.retrain
    require(sep.epoch is not None and sep.epoch >= 1, "separate.epoch",
            f"must be a positive int (the separating epoch), got {sep.epoch!r}")
    require_choice("select.method", sel.method, SELECT_METHODS)
    require_choice("select.features", sel.features, FEATURES)
    require(sel.restarts >= 1, "select.restarts", f"must be >= 1, got {sel.restarts}")
    require(sel.max_iter >= 1, "select.max_iter", f"must be >= 1, got {sel.max_iter}")
    require(sel.fraction is None or 0 < sel.fraction <= 1, "select.fraction",
            f"must lie in (0, 1] or be null, got {sel.fraction}")
    require(sel.fraction is None or sel.method in ("high_loss", "random"), "select.fraction",
            f"sets the size of high_loss and random selections only; {sel.method!r} decides its own size")
    require_choice("generate.init", config.generate.init, INITS)
    check_retrain(ret.method, ret.k, ret.sam_rho)
    config.train_config()
    return config


def generate_settings(raw: Dict[str, Any]) -> GenerateConfig:
    """The checked 'generate' section (the paper's defaults: T = 100, guidance 3, steps 40/50/70/80)."""
    return check_generate(build(GenerateConfig, (raw or {}).get("generate"), "generate"))


def backend_from_settings(settings: GenerateConfig):
    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return load_backend(settings.model, kind=settings.kind, scheduler=settings.scheduler,
                        total_steps=settings.total_steps, guidance_scale=settings.guidance_scale,
                        device=device, dtype=DTYPES[settings.dtype])


def select_examples(select: SelectConfig, stats, *, epoch: int, seed: int):
    """The examples to copy, by ``select.method``, from one inference pass (``InferenceStats``).

    high_loss and random take ``select.fraction`` of the training set, or (null) as many
    examples as slow_learnable selects from the same statistics.
    """
    from augcore.selection import HighLossSelector, MisclassifiedSelector, RandomSelector, SlowLearnableSelector
    from augcore.selection import unit_selection

    method = select.method
    if method == "all":   # Syn-all
        return unit_selection(stats, torch.arange(len(stats), device=stats.labels.device), "all", epoch=epoch)
    if method == "misclassified":
        return MisclassifiedSelector().select(stats, epoch=epoch, seed=seed)
    slow = SlowLearnableSelector(features=select.features, restarts=select.restarts, max_iter=select.max_iter)
    if method == "slow_learnable":
        return slow.select(stats, epoch=epoch, seed=seed)
    fraction = select.fraction
    if fraction is None:
        fraction = len(slow.select(stats, epoch=epoch, seed=seed)) / len(stats)
        if fraction == 0:
            raise ValueError(f"select.method {method!r}: the slow-learnable selection it takes its size from is "
                             "empty (no class splits); set select.fraction")
    selector = HighLossSelector(fraction) if method == "high_loss" else RandomSelector(fraction)
    selection = selector.select(stats, epoch=epoch, seed=seed)
    selection.info["size_from"] = "select.fraction" if select.fraction is not None else "slow_learnable"
    return selection


@dataclass
class PipelineResult:
    separate_epoch: int
    selected: int
    selected_fraction: float
    generated: int
    retrain: Any            # augcore.train.TrainResult
    out_dir: str


@dataclass
class PreparedRun:
    """The separated model's selection and (when made) its synthetic copies, ready to retrain."""
    config: PipelineConfig
    base: Any                         # the training set (originals)
    test_set: Any
    selection: Any                    # augcore.selection.Selection
    store: Optional[str]              # the synthetic store's folder, None when nothing was generated
    generated: int = 0

    def retrain(self, *, method: Optional[str] = None, k: Optional[int] = None, sam_rho: Optional[float] = None,
                steps: Optional[List[int]] = None, out_name: Optional[str] = None, resume: bool = True):
        """Trains from scratch on the originals (``method="none"``), the Upsample baseline or
        originals + copies, each selected image appearing ``k`` times (original included), with
        SGD (``sam_rho=0``) or SAM. Unset arguments take the config's ``retrain`` values;
        ``steps`` picks the stored copies (default: by k, see ``resolve_steps``). Output goes
        to ``<out>/<out_name>`` (default ``retrain_<method>_k<k>_rho<rho>``, ``retrain_none_rho<rho>``
        for the originals, where k plays no part); a run whose
        checkpoint is there resumes (and a finished one returns its result). Returns a TrainResult.
        """
        from augcore.train.config import config_from_dict
        from augcore.train.trainer import Trainer

        ret = self.config.retrain
        method = ret.method if method is None else method
        k = ret.k if k is None else k
        sam_rho = ret.sam_rho if sam_rho is None else sam_rho
        steps = ret.steps if steps is None else steps
        check_retrain(method, k, sam_rho)
        if method == "synthetic":
            if self.store is None:
                raise ValueError("retrain method 'synthetic' needs the synthetic copies: prepare(..., generate=True)")
            train_data = SyntheticAugmentedDataset(self.base, self.store, steps=steps, k=k)
        elif method == "upsample":
            train_data = UpsampledDataset(self.base, self.selection.indices, k=k)
        else:
            train_data = self.base
        raw = retrain_train_config(self.config.train, sam_rho)
        default_name = f"retrain_none_rho{sam_rho:g}" if method == "none" else f"retrain_{method}_k{k}_rho{sam_rho:g}"
        if method == "synthetic" and steps is not None:
            default_name += "_s" + "-".join(str(s) for s in train_data.steps)
        out_dir = os.path.join(self.config.out, out_name or default_name)
        trainer = Trainer(config_from_dict(raw), out_dir=out_dir, train_set=train_data, test_set=self.test_set)
        resuming = resume and os.path.isfile(trainer.checkpoint_path)
        self._check_training_data(out_dir, method, train_data, resuming)
        return trainer.fit(resume=resuming)

    def _check_training_data(self, out_dir: str, method: str, train_data, resuming: bool) -> None:
        """Writes what the retraining trains on to ``<out_dir>/training_data.json``; a resumed run must
        train on the same (the checkpoint's config does not hold the selection or the copies)."""
        selection = sorted(int(i) for i in self.selection.indices.tolist())
        facts = {"method": method, "examples": len(train_data),
                 "select_method": self.config.select.method if method != "none" else None,
                 "selection_sha256": hashlib.sha256(json.dumps(selection).encode()).hexdigest()
                 if method != "none" else None,
                 "k": getattr(train_data, "k", None), "steps": list(getattr(train_data, "steps", ())) or None,
                 "store": SyntheticStore(self.store).settings() if method == "synthetic" else None}
        path = os.path.join(out_dir, "training_data.json")
        if resuming and os.path.isfile(path):
            with open(path) as fh:
                saved = json.load(fh)
            differ = sorted(key for key in facts if saved.get(key) != facts[key])
            if differ:
                raise ValueError(f"{out_dir} holds a retraining on other data ({', '.join(differ)} differ); "
                                 "pass another out_name (or remove the folder)")
        os.makedirs(out_dir, exist_ok=True)
        atomic_write_text(path, json.dumps(facts, indent=1))


def retrain_train_config(train: Dict[str, Any], sam_rho: float) -> Dict[str, Any]:
    """The retrain's TrainConfig mapping: the user's ``train`` section (its augmentation
    included; ``augment.mode`` defaults to none, weak augmentation only) with SAM's rho."""
    raw = copy.deepcopy(train)
    raw.setdefault("augment", {}).setdefault("mode", "none")
    raw.setdefault("optim", {})["sam_rho"] = float(sam_rho)
    return raw


def _separate(config: PipelineConfig, train_set, test_set):
    """Stage 1: trains to ``separate.epoch`` (or reloads that checkpoint) with weak augmentation only."""
    from augcore.train.config import config_from_dict
    from augcore.train.trainer import Trainer

    raw = copy.deepcopy(config.train)
    raw.setdefault("augment", {})["mode"] = "none"   # the slow-learnable examples of plain training
    trainer = Trainer(config_from_dict(raw), out_dir=os.path.join(config.out, "separate"), train_set=train_set,
                      test_set=test_set)
    resume = os.path.isfile(trainer.checkpoint_path)
    trainer.fit(resume=resume, stop_after=config.separate.epoch)
    if trainer.start_epoch > config.separate.epoch:
        raise ValueError(f"{trainer.checkpoint_path} is at epoch {trainer.start_epoch}, past separate.epoch = "
                         f"{config.separate.epoch}; use a new output folder")
    return trainer


def prepare(raw: Dict[str, Any], *, train_set=None, test_set=None, generate: Optional[bool] = None) -> PreparedRun:
    """Stages 1-3: separate, select (``<out>/selection.pt``) and, when ``generate`` (default:
    ``retrain.method == "synthetic"``), make the copies (``<out>/synthetic``, resumable).

    A rerun into the same ``out`` resumes the separating run from its checkpoint and skips
    the copies already made. ``train_set``/``test_set`` override the configured data.
    """
    config = pipeline_config(raw)
    generate = config.retrain.method == "synthetic" if generate is None else bool(generate)
    gen = check_generate(config.generate) if generate else config.generate
    first = _separate(config, train_set, test_set)
    selection = select_examples(config.select, first.stats.model_stats(), epoch=config.separate.epoch,
                                seed=first.config.run.seed)
    selection.save(os.path.join(config.out, "selection.pt"))
    base = first.train_base
    store, generated = None, 0
    if generate:
        store = os.path.join(config.out, "synthetic")
        report = generate_copies(base, selection.indices, backend_from_settings(gen), store, steps=gen.steps,
                                 seed=gen.seed, batch_size=gen.batch_size, shard=gen.shard,
                                 prompt_template=gen.prompt_template, progress=gen.progress, init=gen.init)
        generated = report.generated + report.skipped
        if report.shard[1] > 1:
            raise RuntimeError(f"shard {report.shard[0]}/{report.shard[1]} done; retrain once every shard finished "
                               "(rerun without a shard: the finished images are skipped)")
    return PreparedRun(config, base, first.test_set, selection, store, generated)


def run_pipeline(raw: Dict[str, Any], *, train_set=None, test_set=None) -> PipelineResult:
    """Runs the four stages; every stage's output lands under ``raw['out']`` (the retrain in
    ``<out>/retrain``, with ``summary.json`` beside it).

    Stage 1 uses the full training schedule's learning rates but stops after
    ``separate.epoch`` epochs. ``train_set``/``test_set`` override the configured data.
    """
    run = prepare(raw, train_set=train_set, test_set=test_set)
    config, ret = run.config, run.config.retrain
    result = run.retrain(out_name="retrain")
    summary = PipelineResult(config.separate.epoch, len(run.selection), len(run.selection) / len(run.base),
                             run.generated, result, config.out)
    facts = {"separate_epoch": summary.separate_epoch, "select_method": config.select.method,
             "selected": summary.selected, "selected_fraction": summary.selected_fraction,
             "generated": run.generated, "init": config.generate.init, "retrain_method": ret.method, "k": ret.k,
             "sam_rho": ret.sam_rho, "best_top1": result.best_top1, "last_top1": result.last_top1}
    if ret.method == "synthetic" and config.generate.model == TINY_MODEL:
        facts["note"] = UNTRAINED_NOTICE   # said in the results too, not only as a warning
    atomic_write_text(os.path.join(config.out, "summary.json"), json.dumps(facts, indent=1))
    return summary
