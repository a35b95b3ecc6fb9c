"""The reproduction harness: runs a paper protocol (``augcore repro``; the demo uses it).

A protocol (:mod:`augcore.train.protocols`, ``augcore repro --list``) is one table of a
paper: its runs (variants x methods x budgets, per seed), a paper-exact preset and a
CPU-scale preset on the embedded digits data, and the paper's numbers. Each run is one
training run; results are its final-epoch test top-1, summarised as mean +- std over
seeds, printed beside the paper's numbers; where the paper reports gains as a share of
the full-augmentation gain (the coreset paper's Table 4), that share is computed from the
weak-only (``none``) and full-augmentation (``full``) runs and printed beside it.

Every key of a run's config can be changed with ``--set`` (``overrides``), except the ones
the grid itself sets per run (the policy, the budget, the seed and the run folder).
"""
from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from augcore.config import ConfigError, apply_overrides, require, require_choice
from augcore.io import atomic_write_text
from augcore.train.protocols import PROTOCOLS, Protocol, cell_key, get_protocol, merge_sections

METHODS = ("none", "full", "random", "max_loss", "coreset")
# the coreset paper's two protocols under their earlier short names
ALIASES = {"table1": "coreset-t1-c10-r20", "table4": "coreset-t4-c10"}
PRESETS = ("cpu", "paper")
# keys the grid sets per run: changing them with --set would mislabel every row
_GRID_KEYS = ("augment.mode", "augment.fraction", "augment.train_on", "run.seed", "run.out")


@dataclass
class ReproSettings:
    """What to run: a protocol at a preset, narrowed or changed by the fields below
    (None: the protocol's or the preset's value)."""
    protocol: str = "table1"
    preset: str = "cpu"
    methods: Optional[Sequence[str]] = None
    budgets: Optional[Sequence[float]] = None
    variants: Optional[Sequence[str]] = None
    seeds: int = 3
    epochs: Optional[int] = None                # schedule.epochs
    reselect_every: Optional[int] = None        # R
    dataset: Optional[str] = None               # data.name
    root: Optional[str] = None                  # data.root
    model: Optional[str] = None                 # model.name
    strong: Optional[str] = None                # augment.strong
    lr: Optional[float] = None                  # optim.lr
    batch_size: Optional[int] = None            # optim.batch_size
    schedule: Optional[str] = None              # schedule.name
    num_threads: Optional[int] = 1
    device: str = "auto"
    out: str = "runs/repro"
    progress: bool = True
    workers: int = 1                            # runs at a time, each in its own process
    keep_runs: bool = True                      # each run's folder (checkpoint, logs, plots) under out
    extra: Dict = field(default_factory=dict)   # more config sections merged into every run
    overrides: Sequence[str] = ()               # --set KEY=VALUE, applied last

    @property
    def spec(self) -> Protocol:
        return get_protocol(ALIASES.get(self.protocol, self.protocol))

    @property
    def period(self) -> int:
        return self.reselect_every or self.spec.reselect_every_for(self.preset)

    def run_methods(self) -> Tuple[str, ...]:
        return tuple(self.methods) if self.methods is not None else self.spec.methods

    def run_budgets(self) -> Tuple[float, ...]:
        return tuple(self.budgets) if self.budgets is not None else self.spec.budgets_for(self.preset)

    def run_variants(self) -> Tuple[str, ...]:
        return tuple(self.variants) if self.variants is not None else tuple(self.spec.variants)

    def check(self) -> "ReproSettings":
        spec = self.spec   # an unknown protocol is reported by name
        require_choice("preset", self.preset, PRESETS)
        methods, budgets, variants = self.run_methods(), self.run_budgets(), self.run_variants()
        for m in methods:
            require_choice("methods", m, METHODS)
        for v in variants:
            require_choice("variants", v, tuple(spec.variants))
        require(bool(methods), "methods", "at least one method is needed")
        require(bool(variants), "variants", "at least one variant is needed")
        require(bool(budgets) and all(0 < b <= 1 for b in budgets), "budgets",
                f"must be fractions in (0, 1], got {list(budgets)}")
        require(self.seeds >= 1, "seeds", f"must be >= 1, got {self.seeds}")
        require(self.epochs is None or self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        require(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        require(self.reselect_every is None or self.reselect_every >= 1, "reselect_every",
                f"must be >= 1, got {self.reselect_every}")
        require(spec.train_on == "full" or not {"none", "full"} & set(methods), "methods",
                f"{spec.name} trains on {spec.train_on.replace('_', ' ')}: 'none' and 'full' have no subset there")
        for item in self.overrides:
            key = str(item).split("=", 1)[0].strip()
            require(key not in _GRID_KEYS, f"--set {key}",
                    "is set per run by the protocol; use --methods, --budgets, --seeds or --out")
        return self


def run_config(settings: ReproSettings, method: str, budget: float, seed: int, variant: str = "") -> Dict:
    """One run's raw config: the preset, the variant, the settings' changes, the run's grid
    values, ``extra``, then the ``--set`` overrides."""
    spec = settings.spec
    changes = {"data": {"name": settings.dataset, "root": settings.root}, "model": {"name": settings.model},
               "optim": {"lr": settings.lr, "batch_size": settings.batch_size},
               "schedule": {"name": settings.schedule, "epochs": settings.epochs},
               "augment": {"strong": settings.strong}}
    changes = {section: {k: v for k, v in values.items() if v is not None} for section, values in changes.items()}
    if settings.epochs is not None:   # milestones inside the shortened run, as the schedule's default
        changes["schedule"]["milestones"] = []
    label = "_".join(p for p in (spec.name, variant, method, f"{budget:g}", f"seed{seed}") if p)
    grid = {"augment": {"mode": method, "fraction": budget, "reselect_every": settings.period,
                        "train_on": spec.train_on},
            "run": {"seed": seed, "device": settings.device, "num_threads": settings.num_threads, "progress": False,
                    "out": os.path.join(settings.out, label)}}
    raw = merge_sections(spec.preset(settings.preset), spec.variants[variant], changes, grid, settings.extra)
    return apply_overrides(raw, settings.overrides)


def _runs(settings: ReproSettings) -> List[Tuple[str, str, float, int]]:
    runs = []
    budgets = settings.run_budgets()
    for seed in range(settings.seeds):
        for variant in settings.run_variants():
            for budget in budgets:
                for method in settings.run_methods():
                    if method in ("none", "full") and budget != budgets[0]:
                        continue   # budget-free baselines run once per seed
                    runs.append((variant, method, budget, seed))
    return runs


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def run_one(settings: ReproSettings, variant: str, method: str, budget: float, seed: int) -> Dict:
    """One run of the training loop; its result row."""
    import torch

    from augcore.train.config import config_from_dict
    from augcore.train.trainer import Trainer

    raw = run_config(settings, method, budget, seed, variant)
    try:
        config = config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{settings.spec.name} {cell_key(variant, method, budget)}: {exc}") from None
    torch.manual_seed(seed)
    wall0 = time.perf_counter()
    trainer = Trainer(config, out_dir=raw["run"]["out"] if settings.keep_runs else None)
    result = trainer.fit()
    n = len(trainer.train_base)
    return {"protocol": settings.spec.name, "variant": variant, "method": method, "budget": budget, "seed": seed,
            "last_top1": result.last_top1, "best_top1": result.best_top1,
            "wall_time": time.perf_counter() - wall0, "train_time": result.train_time,
            "selection_time": result.selection_time, "selector_time": result.selector_time,
            "inference_passes": result.inference_passes,
            "fraction_augmented": result.num_augmented / len(result.rows) / n}


def run_repro(settings: ReproSettings, *, echo=print) -> Dict:
    """Runs every (variant, method, budget, seed), ``settings.workers`` at a time in separate
    processes (each run is deterministic, so the results do not depend on the number of
    workers); writes ``<protocol>_results.csv/.jsonl`` and ``<protocol>_summary.json``;
    returns the summary."""
    from tqdm.auto import tqdm

    from augcore.train.metrics import write_rows

    settings.check()
    name = settings.spec.name
    started = time.perf_counter()
    runs = _runs(settings)
    bar = tqdm(total=len(runs), desc=f"{name} runs", unit="run", disable=not settings.progress)
    done: Dict[int, Dict] = {}

    def record(position: int, row: Dict) -> None:
        done[position] = row
        bar.update(1)
        rows = [done[i] for i in sorted(done)]
        write_rows(rows, os.path.join(settings.out, f"{name}_results.csv"),
                   os.path.join(settings.out, f"{name}_results.jsonl"))

    if settings.workers == 1:
        for position, run in enumerate(runs):
            record(position, run_one(settings, *run))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: a fresh interpreter per worker (forking a process that holds torch threads is unsafe)
        with ProcessPoolExecutor(settings.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_one, settings, *run): position for position, run in enumerate(runs)}
            for future in as_completed(futures):
                record(futures[future], future.result())
    bar.close()
    rows = [done[i] for i in sorted(done)]
    summary = summarize(rows, settings)
    summary["total_wall_time"] = time.perf_counter() - started
    atomic_write_text(os.path.join(settings.out, f"{name}_summary.json"),
                      json.dumps(summary, indent=2, default=str) + "\n")
    echo(format_summary(summary, settings))
    return summary


def summarize(rows: List[Dict], settings: ReproSettings) -> Dict:
    """Mean +- std of the final top-1 per cell (variant, method, budget), the share of the
    full-augmentation gain where the protocol reports it, and coreset - random per seed."""
    spec = settings.spec
    cells: Dict[str, Dict] = {}
    for row in rows:
        budget = None if row["method"] in ("none", "full") else row["budget"]
        key = cell_key(row["variant"], row["method"], budget)
        cells.setdefault(key, {"variant": row["variant"], "method": row["method"], "budget": row["budget"],
                               "top1": [], "selection_time": [], "train_time": []})
        cells[key]["top1"].append(row["last_top1"])
        cells[key]["selection_time"].append(row["selection_time"])
        cells[key]["train_time"].append(row["train_time"])
    for cell in cells.values():
        cell["top1_mean"], cell["top1_std"] = mean_std(cell["top1"])
        cell["selection_overhead_pct"] = 100.0 * sum(cell["selection_time"]) / max(sum(cell["train_time"]), 1e-12)
        cell["paper"] = spec.paper_value(cell["variant"], cell["method"], cell["budget"])
    if spec.metric == "gain_share":
        for variant in settings.run_variants():
            weak, full = cells.get(cell_key(variant, "none", None)), cells.get(cell_key(variant, "full", None))
            if weak and full and full["top1_mean"] != weak["top1_mean"]:
                for cell in cells.values():
                    if cell["variant"] == variant and cell["method"] not in ("none", "full"):
                        cell["gain_share"] = ((cell["top1_mean"] - weak["top1_mean"])
                                              / (full["top1_mean"] - weak["top1_mean"]))
    gains = {}
    for variant in settings.run_variants():
        for budget in settings.run_budgets():
            coreset = {r["seed"]: r["last_top1"] for r in rows
                       if (r["variant"], r["method"], r["budget"]) == (variant, "coreset", budget)}
            random = {r["seed"]: r["last_top1"] for r in rows
                      if (r["variant"], r["method"], r["budget"]) == (variant, "random", budget)}
            diffs = [coreset[s] - random[s] for s in sorted(coreset) if s in random]
            if diffs:
                mean, std = mean_std(diffs)
                gains[f"{variant}/{budget:g}" if variant else f"{budget:g}"] = {
                    "variant": variant, "budget": budget, "mean": mean, "std": std, "per_seed": diffs,
                    "seeds_coreset_ahead": sum(d > 0 for d in diffs)}
    settings_dict = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in asdict(settings).items()}
    return {"protocol": spec.name, "source": spec.source, "settings": settings_dict, "cells": cells,
            "coreset_minus_random": gains}


def format_summary(summary: Dict, settings: ReproSettings) -> str:
    spec = settings.spec
    share = spec.metric == "gain_share"
    paper_column = "paper" + ("" if settings.preset == "paper" else " (its setting)")
    lines = [f"{spec.name}: {spec.source}", f"  {spec.setting}",
             f"  preset {settings.preset}, R = {settings.period}, {settings.seeds} seed(s)" +
             (f"; note: {spec.notes}" if spec.notes else ""),
             f"{'variant':<9} {'method':<10} {'budget':>7} {'test top-1 (%)':>17} {'selection':>10} "
             + (f"{'gain share':>11} " if share else "") + f"{paper_column:>20}"]
    for cell in summary["cells"].values():
        budget = "-" if cell["method"] in ("none", "full") else f"{cell['budget']:.1%}"
        paper = cell.get("paper")
        paper_text = "-" if paper is None else (f"{paper:.1%}" if share and cell["method"] not in ("none", "full")
                                                else f"{paper:.2f}")
        mine = cell.get("gain_share")
        share_text = (f"{'-' if mine is None else f'{mine:.1%}':>11} " if share else "")
        lines.append(f"{cell['variant'] or '-':<9} {cell['method']:<10} {budget:>7} "
                     f"{cell['top1_mean']:>9.2f} +- {cell['top1_std']:<5.2f} {cell['selection_overhead_pct']:>9.1f}% "
                     f"{share_text}{paper_text:>20}")
    for gain in summary["coreset_minus_random"].values():
        where = f"{gain['variant']} at " if gain["variant"] else "at "
        lines.append(f"coreset - random {where}{gain['budget']:.1%}: {gain['mean']:+.2f} +- {gain['std']:.2f} points "
                     f"(coreset ahead in {gain['seeds_coreset_ahead']} of {len(gain['per_seed'])} seeds)")
    lines.append("selection = inference pass + selector, as a share of training time"
                 + ("; gain share = (top-1 - weak only) / (full augmentation - weak only)" if share else ""))
    return "\n".join(lines)


def list_protocols() -> str:
    """One block per protocol: name, source, setting and its presets' data set and model."""
    lines = []
    for spec in PROTOCOLS.values():
        paper, cpu = spec.paper_preset, spec.cpu_preset
        lines.append(f"{spec.name:<26} {spec.source}")
        lines.append(f"{'':<26} {spec.setting}")
        lines.append(f"{'':<26} paper preset: {paper.get('data', {}).get('name')} / {paper.get('model', {}).get('name')}, "
                     f"{paper.get('schedule', {}).get('epochs')} epochs; cpu preset: "
                     f"{cpu.get('data', {}).get('name')} / {cpu.get('model', {}).get('name')}, "
                     f"{cpu.get('schedule', {}).get('epochs')} epochs")
    lines.append(f"aliases: {', '.join(f'{a} = {n}' for a, n in ALIASES.items())}")
    return "\n".join(lines)
