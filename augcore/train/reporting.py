"""A run's outputs: per-epoch rows (``metrics.csv`` / ``metrics.jsonl``), ``result.json``,
``selection_history.json`` (+ ``selection_history.csv``), ``selection.pt``, ``config.yaml``
and plots (``accuracy.png``; ``selection.png``: the coreset paper's Figs. 5-7 from the
history: never-selected fraction and overlaps per re-selection, and the histogram of
per-example selection counts).

Every file is written atomically. ``result.json`` and the history carry
``format_version`` so that readers can tell the layout.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

import yaml

from augcore.io import atomic_savefig, atomic_write_text
from augcore.train.metrics import plot_training_curves, write_rows

RESULT_FORMAT_VERSION = 2   # 2: adds overlap_max_loss, inference_passes, policy


def plot_selection_history(history, path: str, title: str = "") -> None:
    """The coreset paper's Figs. 5-7 from a ``SelectionHistory``: share never selected and
    overlap with the previous selection / the max-loss set per update, and the histogram
    of how often each example was selected."""
    from augcore.train.metrics import _pyplot

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    records = history.records
    epochs = [r["epoch"] for r in records]
    left.plot(epochs, [r["never_selected_fraction"] for r in records], "o-", label="never selected")
    for key, label in (("overlap_previous", "overlap with previous"), ("overlap_max_loss", "overlap with max-loss")):
        points = [(r["epoch"], r[key]) for r in records if r.get(key) is not None]
        if points:
            left.plot(*zip(*points), "s--", label=label)
    left.set_xlabel("epoch")
    left.set_ylabel("fraction")
    left.set_ylim(-0.02, 1.02)
    left.legend(fontsize=8)
    counts = history.counts.numpy()
    right.hist(counts, bins=range(0, int(counts.max()) + 2) if counts.size else 1, align="left", rwidth=0.85)
    right.set_xlabel("times selected")
    right.set_ylabel("examples")
    fig.suptitle(title)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


class Reporter:
    """Writes a run's files into ``out_dir`` (``None``: keeps nothing on disk)."""

    def __init__(self, out_dir: Optional[str]):
        self.out_dir = out_dir

    def path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    def start(self, config_dict: Dict[str, Any]) -> None:
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            from augcore.io import remove_stale_temp_files
            remove_stale_temp_files(self.out_dir)
            atomic_write_text(self.path("config.yaml"), yaml.safe_dump(config_dict, sort_keys=False))

    def epoch(self, rows: List[Dict[str, Any]]) -> None:
        if self.out_dir:
            write_rows(rows, self.path("metrics.csv"), self.path("metrics.jsonl"))

    def finish(self, result, *, history, selection, title: str, refine_start: Optional[int],
               selection_epochs: List[int]) -> None:
        if not self.out_dir:
            return
        history.save(self.path("selection_history.json"))
        history.save_csv(self.path("selection_history.csv"))
        if selection is not None:
            selection.save(self.path("selection.pt"))
        plot_training_curves(result.rows, self.path("accuracy.png"), title=title, refine_start=refine_start,
                             selection_epochs=selection_epochs)
        if history.records:
            plot_selection_history(history, self.path("selection.png"), title=title)
        summary = {"format_version": RESULT_FORMAT_VERSION,
                   **{k: v for k, v in dataclasses.asdict(result).items() if k != "rows"}}
        atomic_write_text(self.path("result.json"), json.dumps(summary, indent=2) + "\n")
