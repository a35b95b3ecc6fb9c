"""The demo: on the embedded digits data, does augmenting a coreset beat augmenting a
random subset of the same size, and what does selecting it cost?

Two parts, both through the reproduction harness (``augcore.train.repro``):

1. the coreset paper's Table 1 protocol, where the effect is large: train only on a
   small subset and its strong copies, re-selected every epoch; coreset vs random,
   with the per-seed difference and its spread;
2. its Table 4 protocol: the full data plus strong copies of a subset (and the
   weak-only baseline), where on digits the gain is small.

Writes the harness's CSV/JSON results, ``summary.json`` and ``accuracy_vs_fraction.png``
into the output folder (not each run's checkpoint and plots: ``augcore repro`` keeps those).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, Sequence

from augcore.config import require
from augcore.io import atomic_write_text
from augcore.train.metrics import plot_accuracy_vs_fraction
from augcore.train.repro import ReproSettings, run_repro

DEMO_METHODS = ("none", "random", "coreset")


@dataclass
class DemoSettings:
    out: str = "runs/demo"
    seeds: int = 3
    # part 1 (Table 1 protocol): small subset, re-selected every epoch
    subset_fraction: float = 0.05
    subset_epochs: int = 15
    # part 2 (Table 4 protocol): full data + copies of a subset, re-selected every R epochs
    fraction: float = 0.3
    epochs: int = 6
    reselect_every: int = 2
    strong: str = "autoaugment"
    methods: Sequence[str] = DEMO_METHODS
    parts: Sequence[str] = ("table1", "table4")
    # one thread per run and runs in parallel processes, one per core: the 8x8 convolutions
    # are too small to gain from more threads, and OpenMP threads that wait for a core slow
    # every step several-fold on a busy machine
    num_threads: int = 1
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    progress: bool = True


def run_demo(settings: DemoSettings) -> Dict:
    """Runs the demo's parts, prints their tables and returns the combined summary."""
    require(settings.seeds >= 1, "seeds", f"must be >= 1, got {settings.seeds}")
    require(set(settings.parts) <= {"table1", "table4"} and bool(settings.parts), "parts",
            f"must be a non-empty subset of ('table1', 'table4'), got {list(settings.parts)}")
    started = time.perf_counter()
    common = dict(dataset="digits", model="small_cnn", seeds=settings.seeds, strong=settings.strong, lr=0.05,
                  batch_size=64, schedule="cosine", num_threads=settings.num_threads, out=settings.out,
                  progress=settings.progress, workers=settings.workers, keep_runs=False)
    report: Dict = {"parts": {}}
    if "table1" in settings.parts:
        methods = [m for m in settings.methods if m in ("random", "coreset", "max_loss")]
        report["parts"]["table1"] = run_repro(ReproSettings(
            protocol="table1", methods=methods, budgets=(settings.subset_fraction,), epochs=settings.subset_epochs,
            reselect_every=1, **common))
        print()
    if "table4" in settings.parts:
        report["parts"]["table4"] = run_repro(ReproSettings(
            protocol="table4", methods=tuple(settings.methods), budgets=(settings.fraction,), epochs=settings.epochs,
            reselect_every=settings.reselect_every, **common))
    report["total_wall_time"] = time.perf_counter() - started
    atomic_write_text(os.path.join(settings.out, "summary.json"), json.dumps(report, indent=2, default=str) + "\n")
    points = {}
    for part, summary in report["parts"].items():
        for cell in summary["cells"].values():
            fraction = {"none": 0.0, "full": 1.0}.get(cell["method"], cell["budget"])
            points.setdefault(f"{cell['method']} ({part})", []).append((fraction, cell["top1_mean"], cell["top1_std"]))
    plot_accuracy_vs_fraction(points, os.path.join(settings.out, "accuracy_vs_fraction.png"),
                              title=f"digits, small CNN, {settings.seeds} seed(s)")
    print(f"\ntotal wall time {report['total_wall_time']:.1f} s; results in {os.path.abspath(settings.out)}")
    return report
