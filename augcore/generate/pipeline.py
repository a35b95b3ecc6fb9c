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
from dataclasses import dataclass
from typing import Any, Dict

import torch

from .datasets import SyntheticAugmentedDataset, UpsampledDataset
from .driver import PAPER_PROMPT, PAPER_STEPS, generate_copies
from .models import load_backend
from augcore.io import atomic_write_text

SECTIONS = ("train", "separate", "select", "generate", "retrain", "out")
GENERATE_DEFAULTS: Dict[str, Any] = {"model": None, "kind": "auto", "scheduler": None, "total_steps": 100,
                                     "guidance_scale": 3.0, "steps": list(PAPER_STEPS), "seed": 0, "batch_size": 16,
                                     "prompt_template": PAPER_PROMPT, "device": "auto", "dtype": "float32",
                                     "shard": None, "progress": True}
RETRAIN_METHODS = ("synthetic", "upsample", "none")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _section(raw: Dict[str, Any], name: str, defaults: Dict[str, Any]) -> Dict[str, Any]:
    values = raw.get(name) or {}
    if not isinstance(values, dict):
        raise ValueError(f"config section '{name}' must be a mapping, got {values!r}")
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ValueError(f"unknown key(s) {[f'{name}.{k}' for k in unknown]}; known: {sorted(defaults)}")
    return {**defaults, **values}


def generate_settings(raw: Dict[str, Any]) -> Dict[str, Any]:
    """The 'generate' section with defaults (the paper's: T = 100, guidance 3, steps 40/50/70/80)."""
    settings = _section(raw, "generate", GENERATE_DEFAULTS)
    if not settings["model"]:
        raise ValueError("generate.model: the path of a local diffusers pipeline is required")
    if settings["dtype"] not in DTYPES:
        raise ValueError(f"generate.dtype must be one of {sorted(DTYPES)}, got {settings['dtype']!r}")
    return settings


def backend_from_settings(settings: Dict[str, Any]):
    device = settings["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return load_backend(settings["model"], kind=settings["kind"], scheduler=settings["scheduler"],
                        total_steps=int(settings["total_steps"]), guidance_scale=float(settings["guidance_scale"]),
                        device=device, dtype=DTYPES[settings["dtype"]])


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
    from augcore.selection import SlowLearnableSelector, collect_stats
    from augcore.train.config import config_from_dict
    from augcore.train.trainer import Trainer

    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown config section(s) {unknown}; known: {list(SECTIONS)}")
    out = raw.get("out") or "runs/targeted_synthetic"
    separate = _section(raw, "separate", {"epoch": None})
    if not isinstance(separate["epoch"], int) or separate["epoch"] < 1:
        raise ValueError(f"separate.epoch must be a positive int (the separating epoch), got {separate['epoch']!r}")
    select = _section(raw, "select", {"features": "probs", "restarts": 10, "max_iter": 300})
    gen = generate_settings(raw)
    retrain = _section(raw, "retrain", {"method": "synthetic", "k": 5, "sam_rho": 0.0, "steps": None})
    if retrain["method"] not in RETRAIN_METHODS:
        raise ValueError(f"retrain.method must be one of {RETRAIN_METHODS}, got {retrain['method']!r}")

    train_raw = copy.deepcopy(raw.get("train") or {})
    train_raw.setdefault("augment", {})["mode"] = "none"   # the synthetic copies are the augmentation
    first = Trainer(config_from_dict(train_raw), out_dir=os.path.join(out, "separate"), train_set=train_set,
                    test_set=test_set)
    first.total_epochs = min(separate["epoch"], first.total_epochs)
    first.fit()

    stats = collect_stats(first.model, first.inference_set, batch_size=first.config.run.eval_batch_size,
                          device=first.device, progress=False)
    selection = SlowLearnableSelector(**select).select(stats, epoch=separate["epoch"], seed=first.config.run.seed)
    selection.save(os.path.join(out, "selection.pt"))
    base = first.train_base

    generated = 0
    if retrain["method"] == "synthetic":
        report = generate_copies(base, selection.indices, backend_from_settings(gen), os.path.join(out, "synthetic"),
                                 steps=gen["steps"], seed=int(gen["seed"]), batch_size=int(gen["batch_size"]),
                                 shard=gen["shard"], prompt_template=gen["prompt_template"], progress=gen["progress"])
        generated = report.generated + report.skipped
        if report.shard[1] > 1:
            raise RuntimeError(f"shard {report.shard[0]}/{report.shard[1]} done; retrain once every shard finished "
                               "(rerun without a shard: the finished images are skipped)")
        train_data = SyntheticAugmentedDataset(base, os.path.join(out, "synthetic"), steps=retrain["steps"],
                                               k=retrain["k"])
    elif retrain["method"] == "upsample":
        train_data = UpsampledDataset(base, selection.indices, k=int(retrain["k"]))
    else:
        train_data = base

    second_raw = copy.deepcopy(train_raw)
    second_raw.setdefault("optim", {})["sam_rho"] = float(retrain["sam_rho"])
    second = Trainer(config_from_dict(second_raw), out_dir=os.path.join(out, "retrain"), train_set=train_data,
                     test_set=test_set)
    result = second.fit()
    summary = PipelineResult(separate["epoch"], len(selection), len(selection) / len(base), generated, result, out)
    facts = {"separate_epoch": summary.separate_epoch, "selected": summary.selected,
             "selected_fraction": summary.selected_fraction, "generated": generated,
             "retrain_method": retrain["method"], "k": retrain["k"], "sam_rho": retrain["sam_rho"],
             "best_top1": result.best_top1, "last_top1": result.last_top1}
    atomic_write_text(os.path.join(out, "summary.json"), json.dumps(facts, indent=1))
    return summary
