"""``augcore repro``'s ``labelled`` runner: the influence paper's Tables 1-2 (labelled-fraction protocol).

The protocol's presets name a :meth:`LabelledFractionSettings.preset` (``mnist``, ``cifar10``,
``digits``). A protocol run loads the data once and pre-trains G once (for ``proposed`` with the
paper's augmenter), then trains one run per (method, labelled fraction, seed) as
:func:`augcore.apps.labelled_fraction.run_config` builds it. Everything lands in
``<out>/<protocol>_<digest>``, the digest of the settings, so a changed setting (G's steps
included) never reuses another's G.

``--set section.key=value`` changes every run's training config (``optim.weight_decay``,
``augment.policy_options.val_fraction``, ...); ``--set labelled.<field>=value`` changes a field of the
settings (``labelled.generator_steps=500``, ``labelled.augmenter=light``, ``labelled.heuristic=...``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import Dict, List, Tuple

import yaml

from augcore.config import ConfigError, apply_overrides, require
from augcore.apps.repro import ReproSettings, Run, Runner, register_runner

PREFIX = "labelled."
# settings the grid itself sets: the cells, the seeds and the folder
_GRID_FIELDS = ("methods", "fractions", "seeds", "out")
# ReproSettings field -> LabelledFractionSettings field
_FROM_REPRO = {"dataset": "dataset", "root": "root", "model": "model", "epochs": "epochs", "lr": "lr",
               "batch_size": "batch_size", "schedule": "schedule", "reselect_every": "reselect_every",
               "device": "device", "num_threads": "num_threads", "progress": "progress"}


def split_overrides(overrides) -> Tuple[Dict, List[str]]:
    """``--set`` items as (``labelled.<field>`` values, the training-config overrides)."""
    from augcore.apps.labelled_fraction import LabelledFractionSettings

    known = [f.name for f in dataclasses.fields(LabelledFractionSettings) if f.name not in _GRID_FIELDS]
    fields, training = {}, []
    for item in overrides:
        key, _, text = str(item).partition("=")
        key = key.strip()
        if not key.startswith(PREFIX):
            training.append(item)
            continue
        name = key[len(PREFIX):]
        require(name in known, f"--set {key}", f"is not a labelled-fraction setting; known: {', '.join(known)}"
                + ("; methods, fractions, seeds and the folder come from --methods, --budgets, --seeds, --out"
                   if name in _GRID_FIELDS else ""))
        try:
            fields[name] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise ConfigError(f"--set {key}: the value {text!r} is not valid YAML ({problem})") from None
    return fields, training


def labelled_settings(settings: ReproSettings):
    """The protocol's LabelledFractionSettings: the preset, the settings' own fields, ``labelled.*``
    overrides, the planned methods, fractions and seeds, and the folder; checked."""
    from augcore.apps.labelled_fraction import LabelledFractionSettings

    preset = dict(settings.spec.preset(settings.preset))
    fields = {k: v for k, v in preset.items() if k != "base"}
    fields.update({ours: getattr(settings, theirs) for theirs, ours in _FROM_REPRO.items()
                   if getattr(settings, theirs) is not None})
    fields.update(split_overrides(settings.overrides)[0])
    runs = settings.runner.plan(settings)
    fields.update(methods=tuple(dict.fromkeys(r.method for r in runs)),
                  fractions=tuple(dict.fromkeys(r.level for r in runs)), seeds=settings.seeds)
    try:
        chosen = LabelledFractionSettings.preset(preset["base"], **fields)
        chosen = chosen.check()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{settings.spec.name}: {exc}") from None
    digest_fields = {k: v for k, v in dataclasses.asdict(chosen).items()
                     if k not in ("out", "progress", "num_threads", "device", "seeds", "methods", "fractions")}
    digest = hashlib.sha256(json.dumps(digest_fields, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return dataclasses.replace(chosen, out=os.path.join(settings.out, f"{settings.spec.name}_{digest}"))


def training_config(settings: ReproSettings, chosen, run: Run) -> Dict:
    """One run's raw training config: the protocol's, then the training-config ``--set`` overrides."""
    from augcore.apps.labelled_fraction import run_config

    return apply_overrides(run_config(chosen, run.method, run.level, run.seed), split_overrides(settings.overrides)[1])


class LabelledFractions(Runner):
    """Loads the data and pre-trains G once, then one training run per (method, fraction, seed)."""
    unused_settings = ("strong",)
    grid_keys = ("augment.mode", "augment.fraction", "run.seed", "run.out")

    def check(self, settings):
        from augcore.train.config import config_from_dict

        budgets = settings.run_budgets()
        require(bool(budgets) and all(0 < b <= 1 for b in budgets), "budgets",
                f"are labelled fractions in (0, 1] for {settings.spec.name}, got {list(budgets)}")
        chosen = labelled_settings(settings)
        first = self.plan(settings)[0]
        try:
            config_from_dict(training_config(settings, chosen, first))
        except ConfigError as exc:
            raise ConfigError(f"{settings.spec.name} {first.method}@{first.level:g}: {exc}") from None

    def prepare(self, settings, echo):
        from augcore.data import load_dataset
        from augcore.apps.labelled_fraction import pretrain_protocol_generator

        chosen = labelled_settings(settings)
        train_set = load_dataset(chosen.dataset, chosen.root, train=True)
        test_set = load_dataset(chosen.dataset, chosen.root, train=False)
        if "proposed" in chosen.methods and chosen.augmenter == "paper":
            pretrain_protocol_generator(chosen, train_set, echo=echo)
        return chosen, train_set, test_set

    def run(self, settings, context, run: Run) -> List[Dict]:
        from augcore.apps.labelled_fraction import labelled_subset
        from augcore.train.config import config_from_dict
        from augcore.train.trainer import Trainer

        chosen, train_set, test_set = context
        labelled = train_set.subset(labelled_subset(train_set.targets, run.level, run.seed))
        raw = training_config(settings, chosen, run)
        started = time.perf_counter()
        result = Trainer(config_from_dict(raw), out_dir=raw["run"]["out"] if settings.keep_runs else None,
                         train_set=labelled, test_set=test_set).fit()
        return [{"protocol": settings.spec.name, "variant": run.variant, "method": run.method,
                 "fraction": run.level, "seed": run.seed, "labelled": len(labelled),
                 "last_top1": result.last_top1, "best_top1": result.best_top1,
                 "wall_time": time.perf_counter() - started, "train_time": result.train_time}]


register_runner("labelled", LabelledFractions())
