"""The demo: on the embedded digits data, does augmenting a coreset beat augmenting
a random subset of the same size, and what does selecting it cost?

Trains the small CNN with (a) no strong augmentation, (b) random-subset and (c)
coreset augmentation (same budget, same seeds, re-selection every R epochs), over
a few seeds, and reports test accuracy (mean +- std), wall time and selection
overhead. Writes ``results.csv``, ``results.jsonl``, ``summary.json`` and plots to
the output folder.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch

from augcore.train.config import config_from_dict
from augcore.train.metrics import atomic_write_text, plot_accuracy_vs_fraction, write_rows
from augcore.train.trainer import Trainer

DEMO_METHODS = ("none", "random", "coreset")


@dataclass
class DemoSettings:
    out: str = "runs/demo"
    seeds: int = 3
    epochs: int = 6
    fraction: float = 0.3
    reselect_every: int = 2
    strong: str = "autoaugment"
    batch_size: int = 64
    lr: float = 0.05
    methods: Sequence[str] = DEMO_METHODS
    # one thread: the 8x8 convolutions are too small to gain from more, and on a busy
    # machine OpenMP threads that wait for a core slow every step several-fold
    num_threads: int = 1
    progress: bool = True


def demo_config(settings: DemoSettings, method: str, seed: int) -> Dict:
    """One run's raw config: small CNN on digits, cosine LR, weight decay 5e-4."""
    return {"data": {"name": "digits"},
            "model": {"name": "small_cnn"},
            "optim": {"lr": settings.lr, "batch_size": settings.batch_size, "momentum": 0.9, "weight_decay": 5e-4},
            "schedule": {"name": "cosine", "epochs": settings.epochs},
            "augment": {"mode": method, "strong": settings.strong, "fraction": settings.fraction,
                        "reselect_every": settings.reselect_every, "train_on": "full"},
            "run": {"seed": seed, "device": "auto", "num_threads": settings.num_threads, "progress": False,
                    "out": os.path.join(settings.out, f"{method}_seed{seed}")}}


def _mean_std(values: List[float]) -> tuple:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def run_demo(settings: DemoSettings) -> Dict:
    """Runs every (method, seed), prints and returns the summary table."""
    for method in settings.methods:
        if method not in DEMO_METHODS:
            raise ValueError(f"demo method must be one of {DEMO_METHODS}, got {method!r}")
    if settings.seeds < 1:
        raise ValueError(f"demo needs seeds >= 1, got {settings.seeds}")
    started = time.perf_counter()
    rows: List[Dict] = []
    from tqdm.auto import tqdm
    runs = [(m, s) for s in range(settings.seeds) for m in settings.methods]
    for method, seed in tqdm(runs, desc="demo runs", unit="run", disable=not settings.progress):
        raw = demo_config(settings, method, seed)
        config = config_from_dict(raw)
        torch.manual_seed(seed)
        wall0 = time.perf_counter()
        trainer = Trainer(config, out_dir=raw["run"]["out"])
        result = trainer.fit()
        wall = time.perf_counter() - wall0
        rows.append({"method": method, "seed": seed, "best_top1": result.best_top1, "last_top1": result.last_top1,
                     "wall_time": wall, "train_time": result.train_time, "selection_time": result.selection_time,
                     "selector_time": result.selector_time,
                     "selection_overhead_pct": 100.0 * result.selection_time / result.train_time,
                     "fraction_augmented": result.num_augmented / len(result.rows) / len(trainer.train_base)})
        write_rows(rows, os.path.join(settings.out, "results.csv"), os.path.join(settings.out, "results.jsonl"))

    summary: Dict[str, Dict] = {}
    for method in settings.methods:
        mine = [r for r in rows if r["method"] == method]
        acc_mean, acc_std = _mean_std([r["last_top1"] for r in mine])
        sel_mean, _ = _mean_std([r["selection_time"] for r in mine])
        selector_mean, _ = _mean_std([r["selector_time"] for r in mine])
        train_mean, _ = _mean_std([r["train_time"] for r in mine])
        wall_mean, _ = _mean_std([r["wall_time"] for r in mine])
        summary[method] = {"top1_mean": acc_mean, "top1_std": acc_std, "wall_time_mean": wall_mean,
                           "train_time_mean": train_mean, "selection_time_mean": sel_mean,
                           "selector_time_mean": selector_mean,
                           "selection_overhead_pct": 100.0 * sel_mean / train_mean,
                           "fraction_augmented": statistics.fmean(r["fraction_augmented"] for r in mine)}
    total = time.perf_counter() - started
    report = {"settings": {k: (list(v) if isinstance(v, (tuple, list)) else v)
                           for k, v in settings.__dict__.items()},
              "methods": summary, "total_wall_time": total}
    atomic_write_text(os.path.join(settings.out, "summary.json"), json.dumps(report, indent=2) + "\n")
    plot_accuracy_vs_fraction(
        {m: [(s["fraction_augmented"], s["top1_mean"], s["top1_std"])] for m, s in summary.items()},
        os.path.join(settings.out, "accuracy_vs_fraction.png"),
        title=f"digits, small CNN, {settings.epochs} epochs, {settings.seeds} seeds")
    print(format_table(summary, settings, total))
    return report


def format_table(summary: Dict[str, Dict], settings: DemoSettings, total: float) -> str:
    lines = [f"digits / small_cnn, {settings.epochs} epochs, budget {settings.fraction:.0%} re-selected every "
             f"{settings.reselect_every} epochs, strong={settings.strong}, {settings.seeds} seed(s)",
             f"{'method':<10} {'augmented':>9} {'test top-1 (%)':>16} {'wall (s)':>9} {'train (s)':>10} "
             f"{'selection (s)':>14} {'of which selector':>18} {'overhead':>9}"]
    for method, s in summary.items():
        lines.append(f"{method:<10} {s['fraction_augmented']:>9.0%} {s['top1_mean']:>9.2f} +- {s['top1_std']:<4.2f} "
                     f"{s['wall_time_mean']:>9.1f} {s['train_time_mean']:>10.1f} {s['selection_time_mean']:>14.2f} "
                     f"{s['selector_time_mean']:>18.3f} {s['selection_overhead_pct']:>8.1f}%")
    lines.append("selection = one inference pass over the training set + the selector; overhead = selection / "
                 "training time")
    lines.append(f"total wall time {total:.1f} s; results in {os.path.abspath(settings.out)}")
    return "\n".join(lines)
