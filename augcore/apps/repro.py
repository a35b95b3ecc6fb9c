"""The reproduction harness: runs a paper protocol (``augcore repro``; the demo uses it).

A protocol (:mod:`augcore.apps.protocols`, ``augcore repro --list``) is one table of a
paper: its runner, its cells (variants x methods x levels, per seed), a paper-exact preset
and a CPU-scale preset on the embedded digits data, and the paper's numbers. Results are
each run's final test top-1 (the ``refine`` runner also reads the top-1 at the end of the
augmentation phase of the same run), summarised as mean +- std over seeds and printed
beside the paper's numbers: as test error where the paper gives errors, and, where the
paper reports gains as a share of the full-augmentation gain (the coreset paper's Table 4),
with that share computed from the weak-only (``none``) and full-augmentation (``full``) runs.

Runners: ``train`` and ``refine`` are here; ``generate`` (:mod:`augcore.apps.repro_generate`) and
``labelled`` (:mod:`augcore.apps.repro_labelled`) build on this module and register themselves
when imported, which happens by name when a protocol needs them (their pipelines load only then).

``--set`` (``overrides``) changes the runner's own config: the training config (train,
refine, labelled), ``augcore generate``'s pipeline config (generate: ``train.optim.lr``,
``separate.epoch``, ``generate.model``, ...) and, for labelled, ``labelled.<field>`` of the
protocol's settings. Keys the grid itself sets per run (the policy, the budget, the seed, the
run folder, ...) are refused.
"""
from __future__ import annotations

import importlib
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from augcore.config import ConfigError, apply_overrides, load_yaml, require, require_choice
from augcore.io import atomic_write_text
from augcore.apps.protocols import PROTOCOLS, RUNNERS, Protocol, cell_key, get_protocol, merge_sections

METHODS = tuple(dict.fromkeys(method for info in RUNNERS.values() for method in info.methods))
# the coreset paper's two protocols under their earlier short names
ALIASES = {"table1": "coreset-t1-c10-r20", "table4": "coreset-t4-c10"}
PRESETS = ("cpu", "paper")
# keys the train grid sets per run: changing them with --set would mislabel every row
_GRID_KEYS = ("augment.mode", "augment.fraction", "augment.train_on", "run.seed", "run.out")
# runners whose pipelines build on augcore.train: imported by name when first needed
_RUNNER_MODULES = {"generate": "augcore.apps.repro_generate", "labelled": "augcore.apps.repro_labelled"}


class Run(NamedTuple):
    """One run of a protocol: a cell (variant, method, level) and a seed. ``level`` is the
    subset fraction (train), k (generate) or labelled fraction (labelled); None: no level."""
    variant: str
    method: str
    level: Optional[float]
    seed: int


@dataclass
class ReproSettings:
    """What to run: a protocol at a preset, narrowed or changed by the fields below
    (None: the protocol's or the preset's value)."""
    protocol: str = "table1"
    preset: str = "cpu"
    methods: Optional[Sequence[str]] = None
    budgets: Optional[Sequence[float]] = None   # the cells' levels: subset fractions, k, labelled fractions
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
    workers: int = 1                            # runs at a time, each in its own process (train, refine)
    keep_runs: bool = True                      # each run's folder (checkpoint, logs, plots) under out
    extra: Dict = field(default_factory=dict)   # more config sections merged into every run
    overrides: Sequence[str] = ()               # --set KEY=VALUE, applied last

    @property
    def spec(self) -> Protocol:
        return get_protocol(ALIASES.get(self.protocol, self.protocol))

    @property
    def runner(self) -> "Runner":
        return runner_for(self.spec.runner)

    @property
    def period(self) -> Optional[int]:
        return self.reselect_every or self.spec.reselect_every_for(self.preset)

    def run_methods(self) -> Tuple[str, ...]:
        return tuple(self.methods) if self.methods is not None else self.spec.methods

    def run_budgets(self) -> Tuple[float, ...]:
        return tuple(self.budgets) if self.budgets is not None else self.spec.budgets_for(self.preset)

    def levels_for(self, method: str) -> Tuple[Optional[float], ...]:
        """A method's levels: ``budgets`` when given, else the protocol's; none for a level-free method."""
        if method in self.spec.info.levelless:
            return (None,)
        return tuple(self.budgets) if self.budgets is not None else self.spec.levels_for(method, self.preset)

    def run_variants(self) -> Tuple[str, ...]:
        return tuple(self.variants) if self.variants is not None else tuple(self.spec.variants)

    def check(self) -> "ReproSettings":
        spec = self.spec   # an unknown protocol is reported by name
        runner = self.runner
        require_choice("preset", self.preset, PRESETS)
        methods, variants = self.run_methods(), self.run_variants()
        for m in methods:
            require_choice("methods", m, spec.info.methods)
        for v in variants:
            require_choice("variants", v, tuple(spec.variants))
        require(bool(methods), "methods", "at least one method is needed")
        require(bool(variants), "variants", "at least one variant is needed")
        require(self.seeds >= 1, "seeds", f"must be >= 1, got {self.seeds}")
        require(self.epochs is None or self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        require(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        require(self.workers == 1 or runner.parallel, "workers",
                f"the {spec.runner} runner makes its runs one at a time (it prepares them once); use workers=1")
        for name in runner.unused_settings:
            require(getattr(self, name) is None, name, f"does not apply to {spec.name} (a {spec.runner} protocol)")
        for item in self.overrides:
            key = str(item).split("=", 1)[0].strip()
            require(key not in runner.grid_keys, f"--set {key}",
                    "is set per run by the protocol; use --methods, --budgets, --variants, --seeds or --out")
        runner.check(self)
        return self


def runner_for(name: str) -> "Runner":
    if name not in RUNNER_REGISTRY and name in _RUNNER_MODULES:
        importlib.import_module(_RUNNER_MODULES[name])   # registers itself
    return RUNNER_REGISTRY[name]


def register_runner(name: str, runner: "Runner") -> None:
    RUNNER_REGISTRY[name] = runner


def setting_changes(settings: ReproSettings) -> Dict:
    """The training-config sections that the settings' own fields change (unset ones left out)."""
    changes = {"data": {"name": settings.dataset, "root": settings.root}, "model": {"name": settings.model},
               "optim": {"lr": settings.lr, "batch_size": settings.batch_size},
               "schedule": {"name": settings.schedule, "epochs": settings.epochs},
               "augment": {"strong": settings.strong}}
    changes = {section: {k: v for k, v in values.items() if v is not None} for section, values in changes.items()}
    if settings.epochs is not None:   # milestones inside the shortened run, as the schedule's default
        changes["schedule"]["milestones"] = []
    return changes


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


class Runner:
    """How a protocol's runs are made: ``plan`` lists them, ``prepare`` runs once before them
    (in this process) and returns what ``run`` needs, ``run`` makes one and returns its rows
    (one per cell it measures)."""
    parallel = False                          # runs may go to worker processes (settings.workers)
    unused_settings: Tuple[str, ...] = ()     # ReproSettings fields that mean nothing to this runner
    grid_keys: Tuple[str, ...] = ()           # config keys the runner sets per run (refused in --set)

    def plan(self, settings: ReproSettings) -> List[Run]:
        """Per seed and variant, level by level (in order of first appearance), each method at that level;
        level-free methods once, with the first level."""
        methods = settings.run_methods()
        levels = list(dict.fromkeys(level for m in methods for level in settings.levels_for(m) if level is not None))
        runs = []
        for seed in range(settings.seeds):
            for variant in settings.run_variants():
                for position, level in enumerate(levels or [None]):
                    for method in methods:
                        if method in settings.spec.info.levelless:
                            if position == 0:
                                runs.append(Run(variant, method, self.levelless_level(levels), seed))
                        elif level in settings.levels_for(method):
                            runs.append(Run(variant, method, level, seed))
        return runs

    def levelless_level(self, levels: List[float]) -> Optional[float]:
        return None

    def check(self, settings: ReproSettings) -> None:
        """Runner-specific checks, the first run's config included (bad --set keys fail before any run)."""

    def prepare(self, settings: ReproSettings, echo) -> Any:
        return None

    def run(self, settings: ReproSettings, context: Any, run: Run) -> List[Dict]:
        raise NotImplementedError

    def notes(self, settings: ReproSettings, context: Any) -> List[str]:
        """Lines the summary prints about how its numbers were made (e.g. an untrained generator)."""
        return []


RUNNER_REGISTRY: Dict[str, Runner] = {}


# ---------------------------------------------------------------------------- train: the selection grid
def run_config(settings: ReproSettings, method: str, budget: float, seed: int, variant: str = "") -> Dict:
    """One train-grid run's raw config: the preset, the variant, the settings' changes, the run's
    grid values, ``extra``, then the ``--set`` overrides."""
    spec = settings.spec
    label = "_".join(p for p in (spec.name, variant, method, f"{budget:g}", f"seed{seed}") if p)
    grid = {"augment": {"mode": method, "fraction": budget, "reselect_every": settings.period,
                        "train_on": spec.train_on},
            "run": {"seed": seed, "device": settings.device, "num_threads": settings.num_threads, "progress": False,
                    "out": os.path.join(settings.out, label)}}
    raw = merge_sections(spec.preset(settings.preset), spec.variant_config(variant, settings.preset),
                         setting_changes(settings), grid, settings.extra)
    return apply_overrides(raw, settings.overrides)


def _train_config(settings: ReproSettings, raw: Dict, cell: str):
    from augcore.train.config import config_from_dict
    try:
        return config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{settings.spec.name} {cell}: {exc}") from None


def run_one(settings: ReproSettings, variant: str, method: str, budget: float, seed: int) -> Dict:
    """One run of the training loop; its result row."""
    import torch

    from augcore.train.trainer import Trainer

    raw = run_config(settings, method, budget, seed, variant)
    config = _train_config(settings, raw, cell_key(variant, method, budget))
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


class TrainGrid(Runner):
    """One training run per (variant, method, budget, seed); the final test top-1."""
    parallel = True
    grid_keys = _GRID_KEYS

    def levelless_level(self, levels):
        return levels[0] if levels else None   # none/full still need an augment.fraction

    def check(self, settings):
        spec, methods, budgets = settings.spec, settings.run_methods(), settings.run_budgets()
        require(bool(budgets) and all(0 < b <= 1 for b in budgets), "budgets",
                f"must be fractions in (0, 1], got {list(budgets)}")
        require(settings.reselect_every is None or settings.reselect_every >= 1, "reselect_every",
                f"must be >= 1, got {settings.reselect_every}")
        require(spec.train_on == "full" or not {"none", "full"} & set(methods), "methods",
                f"{spec.name} trains on {spec.train_on.replace('_', ' ')}: 'none' and 'full' have no subset there")
        first = self.plan(settings)[0]
        _train_config(settings, run_config(settings, first.method, first.level, 0, first.variant),
                      cell_key(first.variant, first.method, first.level))


    def run(self, settings, context, run):
        return [run_one(settings, *run)]


# ---------------------------------------------------------------------------- refine: before / after refinement
def refine_config(settings: ReproSettings, variant: str, seed: int) -> Dict:
    """One refinement run's raw config: the preset, the variant (its augmentation), the settings'
    changes, refinement on, the seed and folder, ``extra``, then the ``--set`` overrides."""
    spec = settings.spec
    grid = {"refinement": {"enabled": True},
            "run": {"seed": seed, "device": settings.device, "num_threads": settings.num_threads, "progress": False,
                    "out": os.path.join(settings.out, f"{spec.name}_{variant}_seed{seed}")}}
    raw = merge_sections(spec.preset(settings.preset), spec.variant_config(variant, settings.preset),
                         setting_changes(settings), grid, settings.extra)
    return apply_overrides(raw, settings.overrides)


def refine_one(settings: ReproSettings, variant: str, seed: int) -> List[Dict]:
    """One run with refinement: a row for the test top-1 of the last augmentation epoch (``augment``)
    and one for the last refinement epoch (``refined``), as the trainer's per-epoch ``phase`` marks them."""
    import torch

    from augcore.train.trainer import Trainer

    raw = refine_config(settings, variant, seed)
    config = _train_config(settings, raw, variant)
    torch.manual_seed(seed)
    wall0 = time.perf_counter()
    result = Trainer(config, out_dir=raw["run"]["out"] if settings.keep_runs else None).fit()
    augmenting = [row for row in result.rows if row["phase"] == "augment"]
    common = {"protocol": settings.spec.name, "variant": variant, "seed": seed,
              "wall_time": time.perf_counter() - wall0, "train_time": result.train_time}
    rows = [{**common, "method": "augment", "epoch": augmenting[-1]["epoch"], "last_top1": augmenting[-1]["test_top1"]},
            {**common, "method": "refined", "epoch": result.rows[-1]["epoch"], "last_top1": result.last_top1}]
    return [row for row in rows if row["method"] in settings.run_methods()]


class RefineRuns(Runner):
    """One training run per (variant, seed), read before and after its refinement phase."""
    parallel = True
    unused_settings = ("budgets", "reselect_every", "strong")
    grid_keys = ("refinement.enabled", "run.seed", "run.out")

    def plan(self, settings):
        return [Run(variant, "", None, seed) for seed in range(settings.seeds) for variant in settings.run_variants()]

    def check(self, settings):
        variant = settings.run_variants()[0]
        _train_config(settings, refine_config(settings, variant, 0), variant)


    def run(self, settings, context, run):
        return refine_one(settings, run.variant, run.seed)


register_runner("train", TrainGrid())
register_runner("refine", RefineRuns())


def _run_in_worker(settings: ReproSettings, run: Run) -> List[Dict]:
    return settings.runner.run(settings, None, run)


# ---------------------------------------------------------------------------- the harness
def planned_runs(settings: ReproSettings) -> List[Run]:
    return settings.runner.plan(settings)


def run_repro(settings: ReproSettings, *, echo=print) -> Dict:
    """Runs the protocol's runs (train and refine: ``settings.workers`` at a time in separate
    processes; each run is deterministic, so the results do not depend on the number of
    workers); writes ``<protocol>_results.csv/.jsonl`` and ``<protocol>_summary.json``
    atomically; returns the summary."""
    from tqdm.auto import tqdm

    from augcore.train.metrics import write_rows

    settings.check()
    spec, runner = settings.spec, settings.runner
    started = time.perf_counter()
    runs = planned_runs(settings)
    context = runner.prepare(settings, echo)
    bar = tqdm(total=len(runs), desc=f"{spec.name} runs", unit="run", disable=not settings.progress)
    done: Dict[int, List[Dict]] = {}

    def record(position: int, rows: List[Dict]) -> None:
        done[position] = rows
        bar.update(1)
        write_rows([row for i in sorted(done) for row in done[i]],
                   os.path.join(settings.out, f"{spec.name}_results.csv"),
                   os.path.join(settings.out, f"{spec.name}_results.jsonl"))

    if settings.workers == 1:
        for position, run in enumerate(runs):
            record(position, runner.run(settings, context, run))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: a fresh interpreter per worker (forking a process that holds torch threads is unsafe)
        with ProcessPoolExecutor(settings.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_run_in_worker, settings, run): position for position, run in enumerate(runs)}
            for future in as_completed(futures):
                record(futures[future], future.result())
    bar.close()
    summary = summarize([row for i in sorted(done) for row in done[i]], settings)
    summary["notes"] = runner.notes(settings, context)
    summary["total_wall_time"] = time.perf_counter() - started
    atomic_write_text(os.path.join(settings.out, f"{spec.name}_summary.json"),
                      json.dumps(summary, indent=2, default=str) + "\n")
    echo(format_summary(summary, settings))
    return summary


def _level(info, row: Dict) -> Optional[float]:
    return None if row["method"] in info.levelless else row.get(info.level_key)


def paired_differences(rows: List[Dict], settings: ReproSettings, a: str, b: str) -> Dict[str, Dict]:
    """``a - b`` per seed, per variant and level of ``a`` (at the same level of ``b``, or against a
    level-free ``b``): mean +- std and how many seeds ``a`` is ahead in."""
    info = settings.spec.info
    out: Dict[str, Dict] = {}
    for variant, level in dict.fromkeys((r["variant"], _level(info, r)) for r in rows if r["method"] == a):
        ours = {r["seed"]: r["last_top1"] for r in rows
                if r["method"] == a and (r["variant"], _level(info, r)) == (variant, level)}
        theirs = {r["seed"]: r["last_top1"] for r in rows if r["method"] == b and r["variant"] == variant
                  and (b in info.levelless or _level(info, r) == level)}
        diffs = [ours[s] - theirs[s] for s in sorted(ours) if s in theirs]
        if diffs:
            mean, std = mean_std(diffs)
            key = "/".join(p for p in (variant, "" if level is None else f"{level:g}") if p) or "all"
            out[key] = {"variant": variant, info.level_key: level, "mean": mean, "std": std, "per_seed": diffs,
                        "seeds_ahead": sum(d > 0 for d in diffs)}
    return out


def summarize(rows: List[Dict], settings: ReproSettings) -> Dict:
    """Mean +- std of the final top-1 per cell (variant, method, level) beside the paper's number,
    the test error or the share of the full-augmentation gain where the paper reports those, and
    the runner's paired differences per seed (``coreset_minus_random``, ``refined_minus_augment``, ...)."""
    spec = settings.spec
    info = spec.info
    cells: Dict[str, Dict] = {}
    for row in rows:
        key = cell_key(row["variant"], row["method"], _level(info, row))
        cell = cells.setdefault(key, {"variant": row["variant"], "method": row["method"],
                                      info.level_key: row.get(info.level_key), "top1": []})
        cell["top1"].append(row["last_top1"])
        for cost in ("selection_time", "train_time"):
            if cost in row:
                cell.setdefault(cost, []).append(row[cost])
    for key, cell in cells.items():
        cell["top1_mean"], cell["top1_std"] = mean_std(cell["top1"])
        if "selection_time" in cell:
            cell["selection_overhead_pct"] = (100.0 * sum(cell["selection_time"])
                                              / max(sum(cell["train_time"]), 1e-12))
        if spec.metric == "error":
            cell["error_mean"] = 100.0 - cell["top1_mean"]
        cell["paper"] = spec.paper_value(cell["variant"], cell["method"], cell[info.level_key])
        cell["paper_unverified"] = key in spec.paper_unverified
    if spec.metric == "gain_share":
        for variant in settings.run_variants():
            weak, full = cells.get(cell_key(variant, "none", None)), cells.get(cell_key(variant, "full", None))
            if weak and full and full["top1_mean"] != weak["top1_mean"]:
                for cell in cells.values():
                    if cell["variant"] == variant and cell["method"] not in ("none", "full"):
                        cell["gain_share"] = ((cell["top1_mean"] - weak["top1_mean"])
                                              / (full["top1_mean"] - weak["top1_mean"]))
    settings_dict = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in asdict(settings).items()}
    summary = {"protocol": spec.name, "source": spec.source, "runner": spec.runner, "metric": spec.metric,
               "settings": settings_dict, "cells": cells,
               "paper_other": dict(spec.paper_other)}
    for a, b in info.differences:
        summary[f"{a}_minus_{b}"] = paired_differences(rows, settings, a, b)
    return summary


def _level_text(info, level: Optional[float]) -> str:
    if level is None:
        return "-"
    return f"{level:.1%}" if info.level_is_fraction else f"{level:g}"


def format_summary(summary: Dict, settings: ReproSettings) -> str:
    spec = settings.spec
    info = spec.info
    share, error = spec.metric == "gain_share", spec.metric == "error"
    selection = spec.runner == "train"
    cells = list(summary["cells"].values())
    width = max([9] + [len(c["variant"]) for c in cells])
    level_column = f"{info.level_label:>7} " if info.level_label else ""
    paper_column = "paper" + ("" if settings.preset == "paper" else " (its setting)")
    measured = "test error (%)" if error else "test top-1 (%)"
    lines = [f"{spec.name}: {spec.source}", f"  {spec.setting}",
             f"  preset {settings.preset}" + (f", R = {settings.period}" if selection else "")
             + f", {settings.seeds} seed(s)" + (f"; note: {spec.notes}" if spec.notes else ""),
             f"{'variant':<{width}} {'method':<10} {level_column}{measured:>17} "
             + (f"{'selection':>10} " if selection else "") + (f"{'gain share':>11} " if share else "")
             + f"{paper_column:>20}"]
    for cell in cells:
        paper = cell.get("paper")
        if paper is None:
            paper_text = "figure only" if spec.paper_in_figure else "-"
        elif share and cell["method"] not in ("none", "full"):
            paper_text = f"{paper:.1%}"
        else:
            paper_text = f"{paper:.2f}" + ("?" if cell.get("paper_unverified") else "")
        mean = cell["error_mean"] if error else cell["top1_mean"]
        level = f"{_level_text(info, None if cell['method'] in info.levelless else cell[info.level_key]):>7} "
        mine = cell.get("gain_share")
        lines.append(f"{cell['variant'] or '-':<{width}} {cell['method']:<10} {level if info.level_label else ''}"
                     f"{mean:>9.2f} +- {cell['top1_std']:<5.2f} "
                     + (f"{cell['selection_overhead_pct']:>9.1f}% " if selection else "")
                     + (f"{'-' if mine is None else f'{mine:.1%}':>11} " if share else "") + f"{paper_text:>20}")
    for a, b in info.differences:
        for diff in summary.get(f"{a}_minus_{b}", {}).values():
            where = " ".join(p for p in (diff["variant"], "" if diff[info.level_key] is None else
                                         f"at {info.level_label} {_level_text(info, diff[info.level_key])}") if p)
            lines.append(f"{a} - {b}{' ' + where if where else ''}: {diff['mean']:+.2f} +- {diff['std']:.2f} "
                         f"top-1 points ({a} ahead in {diff['seeds_ahead']} of {len(diff['per_seed'])} seeds)")
    if selection:
        lines.append("selection = inference pass + selector, as a share of training time"
                     + ("; gain share = (top-1 - weak only) / (full augmentation - weak only)" if share else ""))
    if any(c.get("paper_unverified") for c in cells):
        lines.append("? = an uncertain reading of the paper's number (see the note)")
    if summary.get("paper_other"):
        lines.append("the paper's other rows (others' results, not run): "
                     + ", ".join(f"{key}: {value:.2f}" for key, value in summary["paper_other"].items()))
    lines.extend(summary.get("notes", []))
    return "\n".join(lines)


def list_protocols() -> str:
    """One block per protocol: name, source, setting, its presets and its variants."""
    lines = []
    for spec in PROTOCOLS.values():
        describe = _DESCRIBE[spec.runner]
        lines.append(f"{spec.name:<28} {spec.source}")
        lines.append(f"{'':<28} {spec.setting}")
        lines.append(f"{'':<28} runner {spec.runner}; paper preset: {describe(spec.paper_preset)}; "
                     f"cpu preset: {describe(spec.cpu_preset)}")
        if list(spec.variants) != [""]:
            lines.append(f"{'':<28} variants: " + ", ".join(spec.variants))
    lines.append(f"aliases: {', '.join(f'{a} = {n}' for a, n in ALIASES.items())}")
    return "\n".join(lines)


def _describe_training(preset: Dict) -> str:
    return (f"{preset.get('data', {}).get('name')} / {preset.get('model', {}).get('name')}, "
            f"{preset.get('schedule', {}).get('epochs')} epochs")


def _describe_refinement(preset: Dict) -> str:
    return f"{_describe_training(preset)} + {preset.get('refinement', {}).get('epochs')} refinement"


def _describe_pipeline(preset: Dict) -> str:
    raw = merge_sections(load_yaml(preset["config"]), {k: v for k, v in preset.items() if k != "config"})
    train = raw.get("train", {})
    return (f"{preset['config']} ({train.get('data', {}).get('name')} / {train.get('model', {}).get('name')}, "
            f"{train.get('schedule', {}).get('epochs')} epochs, generate.model "
            f"{raw.get('generate', {}).get('model') or 'unset: --set generate.model=PATH'})")


def _describe_labelled(preset: Dict) -> str:
    return f"augcore.apps.labelled_fraction preset {preset['base']!r}"


# --list describes every protocol without importing the packages of the generate and labelled runners
_DESCRIBE = {"train": _describe_training, "refine": _describe_refinement, "generate": _describe_pipeline,
             "labelled": _describe_labelled}
