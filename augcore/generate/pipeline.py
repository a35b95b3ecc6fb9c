"""The paper's pipeline end to end (Nguyen et al., seed 004): train to the separating
epoch, select the slow-learnable examples (per-class 2-means, higher-loss cluster),
make faithful synthetic copies of them, and retrain from scratch on originals + copies
(or the Upsample baseline) with SGD or SAM.

The config is one YAML mapping::

    train:    sections of augcore.train's TrainConfig (data, model, optim, schedule, run)
    separate: {epoch: E}             # the paper takes E from USEFUL and gives no number
    select:   {features: probs, restarts: 10}
    generate: {model: PATH, kind: auto, scheduler: null, total_steps: 100, guidance_scale: 3.0,
               steps: [40, 50, 70, 80], seed: 0, batch_size: 16, device: auto, dtype: float32}
    retrain:  {method: synthetic | upsample | none, k: 5, sam_rho: 0.1}
    out:      runs/targeted_synthetic
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

import torch

from .datasets import SyntheticAugmentedDataset, UpsampledDataset
from .driver import PAPER_PROMPT, PAPER_STEPS, generate_copies, parse_shard
from .models import load_backend
from augcore.config import ConfigError, build, require, require_choice
from augcore.io import atomic_write_text
from augcore.selection.slow_learnable import FEATURES

RETRAIN_METHODS = ("synthetic", "upsample", "none")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class SeparateConfig:
    epoch: Optional[int] = None          # the separating epoch E (the paper takes it from USEFUL, no number)


@dataclass
class SelectConfig:
    features: str = "probs"
    restarts: int = 10
    max_iter: int = 300


@dataclass
class GenerateConfig:
    model: Optional[str] = None          # a local diffusers pipeline folder, or "tiny"
    kind: str = "auto"
    scheduler: Optional[str] = None
    total_steps: int = 100
    guidance_scale: float = 3.0
    steps: List[int] = field(default_factory=lambda: list(PAPER_STEPS))
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
    require_choice("generate.kind", g.kind, ("auto", "img2img", "unconditional"))
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


def pipeline_config(raw: Optional[Dict[str, Any]]) -> PipelineConfig:
    """Builds and checks the whole pipeline config (not ``generate.model``, which only
    the generation stages need)."""
    config = build(PipelineConfig, raw, "config")
    sep, sel, ret = config.separate, config.select, config.retrain
    require(sep.epoch is not None and sep.epoch >= 1, "separate.epoch",
            f"must be a positive int (the separating epoch), got {sep.epoch!r}")
    require_choice("select.features", sel.features, FEATURES)
    require(sel.restarts >= 1, "select.restarts", f"must be >= 1, got {sel.restarts}")
    require(sel.max_iter >= 1, "select.max_iter", f"must be >= 1, got {sel.max_iter}")
    require_choice("retrain.method", ret.method, RETRAIN_METHODS)
    require(ret.k >= 1, "retrain.k", f"must be >= 1, got {ret.k}")
    require(ret.sam_rho >= 0, "retrain.sam_rho", f"must be >= 0, got {ret.sam_rho}")
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


@dataclass
class PipelineResult:
    separate_epoch: int
    selected: int
    selected_fraction: float
    generated: int
    retrain: Any            # augcore.train.TrainResult
    out_dir: str


def run_pipeline(raw: Dict[str, Any], *, train_set=None, test_set=None) -> PipelineResult:
    """Runs the four stages; every stage's output lands under ``raw['out']``.

    Stage 1 uses the full training schedule's learning rates but stops after
    ``separate.epoch`` epochs. ``train_set``/``test_set`` override the configured data.
    """
    from augcore.selection import SlowLearnableSelector
    from augcore.train.config import config_from_dict
    from augcore.train.trainer import Trainer

    config = pipeline_config(raw)
    gen = check_generate(config.generate) if config.retrain.method == "synthetic" else config.generate
    out, separate, retrain = config.out, config.separate, config.retrain

    train_raw = copy.deepcopy(config.train)
    train_raw.setdefault("augment", {})["mode"] = "none"   # the synthetic copies are the augmentation
    first = Trainer(config_from_dict(train_raw), out_dir=os.path.join(out, "separate"), train_set=train_set,
                    test_set=test_set)
    first.fit(stop_after=separate.epoch)

    stats = first.stats.model_stats()
    selection = SlowLearnableSelector(features=config.select.features, restarts=config.select.restarts,
                                      max_iter=config.select.max_iter).select(stats, epoch=separate.epoch,
                                                                              seed=first.config.run.seed)
    selection.save(os.path.join(out, "selection.pt"))
    base = first.train_base

    generated = 0
    if retrain.method == "synthetic":
        report = generate_copies(base, selection.indices, backend_from_settings(gen), os.path.join(out, "synthetic"),
                                 steps=gen.steps, seed=gen.seed, batch_size=gen.batch_size, shard=gen.shard,
                                 prompt_template=gen.prompt_template, progress=gen.progress)
        generated = report.generated + report.skipped
        if report.shard[1] > 1:
            raise RuntimeError(f"shard {report.shard[0]}/{report.shard[1]} done; retrain once every shard finished "
                               "(rerun without a shard: the finished images are skipped)")
        train_data = SyntheticAugmentedDataset(base, os.path.join(out, "synthetic"), steps=retrain.steps,
                                               k=retrain.k)
    elif retrain.method == "upsample":
        train_data = UpsampledDataset(base, selection.indices, k=retrain.k)
    else:
        train_data = base

    second_raw = copy.deepcopy(train_raw)
    second_raw.setdefault("optim", {})["sam_rho"] = float(retrain.sam_rho)
    second = Trainer(config_from_dict(second_raw), out_dir=os.path.join(out, "retrain"), train_set=train_data,
                     test_set=test_set)
    result = second.fit()
    summary = PipelineResult(separate.epoch, len(selection), len(selection) / len(base), generated, result, out)
    facts = {"separate_epoch": summary.separate_epoch, "selected": summary.selected,
             "selected_fraction": summary.selected_fraction, "generated": generated,
             "retrain_method": retrain.method, "k": retrain.k, "sam_rho": retrain.sam_rho,
             "best_top1": result.best_top1, "last_top1": result.last_top1}
    atomic_write_text(os.path.join(out, "summary.json"), json.dumps(facts, indent=1))
    return summary
