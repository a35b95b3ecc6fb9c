"""Selection overhead at R = 1: an eval-mode inference pass per selection vs the statistics the
training epoch already computed (``augment.stats: in_epoch``), on digits on the CPU.

For each seed, two coreset runs (full data + strong copies of a 30% coreset, re-selected
every epoch) differ only in ``augment.stats``. Reported per mode: seconds per epoch of
training, of selection (inference pass + selector), selection as a share of the epoch,
final test top-1. For the in-epoch run, every re-selection is also computed from an
eval pass on the same model (outside the timed loop) to measure how much the two
selections share (|A & B| / |A|).

    python bench/bench_selection_overhead.py [--seeds 3] [--epochs 8] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from augcore.selection import CoresetSelector
from augcore.train import Trainer, config_from_dict


def run(stats_source: str, seed: int, epochs: int, fraction: float, compare: bool):
    cfg = config_from_dict({
        "data": {"name": "digits"}, "model": {"name": "small_cnn"},
        "optim": {"lr": 0.05, "batch_size": 64, "weight_decay": 5e-4},
        "schedule": {"name": "cosine", "epochs": epochs},
        "augment": {"mode": "coreset", "fraction": fraction, "reselect_every": 1, "strong": "autoaugment",
                    "stats": stats_source},
        "run": {"seed": seed, "device": "cpu", "num_threads": 1, "progress": False}})
    torch.manual_seed(seed)
    trainer = Trainer(cfg)
    overlaps = []
    compare_seconds = [0.0]   # spent on the comparison inside a selection: not the run's cost
    if compare:
        select = trainer.policy.select

        def select_and_compare(epoch, stats):
            selection = select(epoch, stats)
            if epoch > 0:   # epoch 0 ran the eval pass in both modes
                started = time.perf_counter()
                passes, seconds = trainer.stats.passes, trainer.stats.pass_seconds
                eval_stats = trainer.stats.model_stats()
                trainer.stats.passes, trainer.stats.pass_seconds = passes, seconds   # not part of the run
                other = CoresetSelector(fraction).select(eval_stats, epoch=epoch, seed=seed)
                overlaps.append(float(torch.isin(selection.indices, other.indices).double().mean()))
                compare_seconds[0] += time.perf_counter() - started
            return selection
        trainer.policy.select = select_and_compare
    t0 = time.perf_counter()
    result = trainer.fit()
    wall = time.perf_counter() - t0 - compare_seconds[0]
    selection = result.selection_time - compare_seconds[0]
    train = sum(r["epoch_time"] - r["selection_time"] for r in result.rows)
    return {"mode": stats_source, "seed": seed, "wall": wall, "train_s_per_epoch": train / epochs,
            "selection_s_per_epoch": selection / epochs,
            "overhead_pct": 100.0 * selection / train, "top1": result.last_top1,
            "inference_passes": result.inference_passes, "overlap_with_eval_selection": overlaps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--fraction", type=float, default=0.3)
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = [run(mode, seed, args.epochs, args.fraction, compare=mode == "in_epoch")
            for seed in range(args.seeds) for mode in ("eval", "in_epoch")]
    print(f"digits / small_cnn, coreset {args.fraction:.0%}, R = 1, {args.epochs} epochs, {args.seeds} seeds, "
          f"1 thread, torch {torch.__version__}")
    print(f"{'statistics':<10} {'train s/epoch':>14} {'selection s/epoch':>18} {'overhead':>9} {'passes':>7} "
          f"{'top-1 %':>14} {'picks shared with eval':>23}")
    for mode in ("eval", "in_epoch"):
        mine = [r for r in rows if r["mode"] == mode]
        top1 = [r["top1"] for r in mine]
        shared = [o for r in mine for o in r["overlap_with_eval_selection"]]
        print(f"{mode:<10} {statistics.fmean(r['train_s_per_epoch'] for r in mine):>14.3f} "
              f"{statistics.fmean(r['selection_s_per_epoch'] for r in mine):>18.3f} "
              f"{statistics.fmean(r['overhead_pct'] for r in mine):>8.1f}% "
              f"{statistics.fmean(r['inference_passes'] for r in mine):>7.1f} "
              f"{statistics.fmean(top1):>8.2f} +- {statistics.stdev(top1) if len(top1) > 1 else 0.0:<4.2f} "
              f"{(f'{100 * statistics.fmean(shared):.1f}%' if shared else '-'):>23}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
