"""``augcore repro``'s ``generate`` runner: the targeted-synthetic paper's Fig. 2 and Table 5.

A protocol run prepares once -- the separating run, the selection and the synthetic copies
(:func:`augcore.generate.pipeline.prepare`) -- in ``<out>/targeted_synthetic_<digest>``, the
digest of the pipeline config without its ``retrain`` section, so protocols and reruns with
the same config share the preparation (and the finished arms) and a changed config starts
afresh. Then each cell is one retrain per seed: the originals (``none``), Upsample at k, or
originals + synthetic copies at k, with SGD or SAM (the variant's ``retrain.sam_rho``). The
seed is the retrain's ``train.run.seed``; the preparation keeps the preset's.

The copies of amplification k come from the protocol's ``copy_steps[k]`` (denoising steps
out of 100), scaled to ``generate.total_steps`` (the CPU preset's tiny pipeline runs 10).
``--set`` takes the pipeline config's own keys (``train.optim.lr``, ``separate.epoch``,
``select.method``, ``generate.model``, ...); ``retrain.*`` and ``train.run.seed`` are the grid's.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import replace
from typing import Dict, List, Tuple

from augcore.config import ConfigError, apply_overrides, load_yaml, require
from augcore.apps.protocols import merge_sections
from augcore.apps.repro import ReproSettings, Run, Runner, register_runner, setting_changes

# pipeline settings that do not change what is computed: left out of the preparation's digest
_NOT_IN_DIGEST = (("train", "run", "progress"), ("train", "run", "num_threads"), ("generate", "progress"))


def pipeline_raw(settings: ReproSettings) -> Dict:
    """The pipeline config every arm shares: the preset's shipped config and sections, the settings'
    changes (under ``train``), ``extra``, the ``--set`` overrides, and the preparation folder as ``out``."""
    preset = settings.spec.preset(settings.preset)
    raw = merge_sections(load_yaml(preset["config"]), {k: v for k, v in preset.items() if k != "config"})
    run = {"device": settings.device, "num_threads": settings.num_threads, "progress": False}
    raw = merge_sections(raw, {"train": merge_sections(setting_changes(settings), {"run": run})},
                         {"generate": {"device": settings.device, "progress": settings.progress}}, settings.extra)
    if settings.epochs is not None and isinstance(raw.get("separate"), dict) and raw["separate"].get("epoch"):
        raw["separate"]["epoch"] = min(raw["separate"]["epoch"], settings.epochs)   # inside the shortened run
    raw = apply_overrides(raw, settings.overrides)
    raw["out"] = os.path.join(settings.out, f"targeted_synthetic_{_digest(raw)}")
    return raw


def _digest(raw: Dict) -> str:
    shared = copy.deepcopy({k: v for k, v in raw.items() if k not in ("retrain", "out")})
    for path in _NOT_IN_DIGEST:
        node = shared
        for part in path[:-1]:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return hashlib.sha256(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()[:12]


def copy_steps(settings: ReproSettings, k: int, total_steps: int) -> Tuple[int, ...]:
    """The stored steps whose copies give amplification ``k``: the protocol's steps of 100, scaled to
    ``total_steps``."""
    table = settings.spec.copy_steps
    require(k in table, "budgets", f"{settings.spec.name} has copies for k in {sorted(table)}, got k = {k}")
    steps = tuple(sorted({max(1, round(s * total_steps / 100)) for s in table[k]}))
    require(len(steps) == k - 1, "generate.total_steps",
            f"{total_steps} steps are too few to keep k - 1 = {k - 1} distinct steps for k = {k}")
    return steps


class GenerateArms(Runner):
    """Prepares the pipeline once, then retrains one arm per (variant, method, k, seed)."""
    unused_settings = ("strong", "reselect_every")
    grid_keys = ("retrain.method", "retrain.k", "retrain.sam_rho", "retrain.steps", "train.run.seed",
                 "train.run.out")

    def check(self, settings):
        from augcore.generate.pipeline import check_generate, pipeline_config

        for k in settings.run_budgets():
            require(float(k).is_integer() and k >= 1, "budgets", f"are amplification factors k (integers >= 1) "
                                                                f"for {settings.spec.name}, got {k}")
        raw = pipeline_raw(settings)
        config = pipeline_config(raw)
        for variant in settings.run_variants():
            sections = settings.spec.variant_config(variant, settings.preset)
            require(set(sections) <= {"train", "retrain"} and set(sections.get("retrain", {})) <= {"sam_rho"},
                    f"variants.{variant}", "may set train.* and retrain.sam_rho only")
            pipeline_config(merge_sections(raw, sections))
        if "synthetic" in settings.run_methods():
            generate = check_generate(config.generate)
            for run in self.plan(settings):
                if run.method == "synthetic":
                    missing = set(copy_steps(settings, int(run.level), generate.total_steps)) - set(generate.steps)
                    require(not missing, "generate.steps", f"k = {run.level:g} needs the copies at steps "
                                                           f"{sorted(missing)}, which {generate.steps} does not make")

    def prepare(self, settings, echo):
        from augcore.generate.pipeline import prepare

        started = time.perf_counter()
        prepared = prepare(pipeline_raw(settings), generate="synthetic" in settings.run_methods())
        echo(f"{settings.spec.name}: separated at epoch {prepared.config.separate.epoch}, selected "
             f"{len(prepared.selection)} of {len(prepared.base)} ({prepared.config.select.method}), "
             f"{prepared.generated} synthetic copies, in {time.perf_counter() - started:.1f} s "
             f"({prepared.config.out})")
        return prepared

    def notes(self, settings, prepared):
        from augcore.generate.tiny import TINY_MODEL

        made = "synthetic" in settings.run_methods() and prepared.config.generate.model == TINY_MODEL
        return ["the synthetic copies come from generate.model 'tiny', an untrained random diffusion pipeline: "
                "they are noise, so these numbers test the plumbing, not the paper's claim (--set "
                "generate.model=PATH names a local diffusers pipeline)"] if made else []

    def run(self, settings, prepared, run: Run) -> List[Dict]:
        sections = settings.spec.variant_config(run.variant, settings.preset)
        config = prepared.config
        train = merge_sections(config.train, sections.get("train", {}), {"run": {"seed": run.seed}})
        arm = replace(prepared, config=replace(config, train=train))
        sam_rho = sections.get("retrain", {}).get("sam_rho", config.retrain.sam_rho)
        k = None if run.level is None else int(run.level)
        steps = copy_steps(settings, k, config.generate.total_steps) if run.method == "synthetic" else None
        name = "_".join(p for p in (run.variant, run.method, "" if k is None else f"k{k}", f"seed{run.seed}") if p)
        started = time.perf_counter()
        try:
            result = arm.retrain(method=run.method, k=k, sam_rho=sam_rho, steps=list(steps) if steps else None,
                                 out_name=name)
        except ConfigError as exc:
            raise ConfigError(f"{settings.spec.name} {name}: {exc}") from None
        return [{"protocol": settings.spec.name, "variant": run.variant, "method": run.method, "k": k,
                 "seed": run.seed, "sam_rho": sam_rho, "steps": list(steps) if steps else None,
                 "last_top1": result.last_top1, "best_top1": result.best_top1,
                 "wall_time": time.perf_counter() - started, "train_time": result.train_time}]


register_runner("generate", GenerateArms())
