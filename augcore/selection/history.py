"""Bookkeeping across re-selections: how often each example was picked, how much of the
data was never picked, overlap between consecutive selections and with max-loss."""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from augcore.io import atomic_write_text

from augcore.selection.base import Selection

FORMAT_VERSION = 1
RECORD_FIELDS = ("update", "epoch", "method", "size", "selected_fraction", "never_selected_fraction",
                 "overlap_previous", "jaccard_previous", "overlap_max_loss", "jaccard_max_loss",
                 "weight_min", "weight_max", "time_total")


def _overlap(current: torch.Tensor, other: torch.Tensor) -> Dict[str, Optional[float]]:
    """|A & B| / |A| (the share of the current selection also in the other) and |A & B| / |A | B|."""
    a, b = torch.unique(current), torch.unique(other)
    inter = int(torch.isin(a, b).sum())
    union = a.numel() + b.numel() - inter
    return {"overlap": inter / a.numel() if a.numel() else None, "jaccard": inter / union if union else None}


class SelectionHistory:
    """Per-example selection counts and per-update records over a run.

    ``update`` after each selection; ``save`` writes JSON atomically (counts,
    records and the last selection, so that overlaps continue after a resume);
    ``save_csv`` writes the per-update records as CSV. Overlaps are fractions of
    the current selection: ``|S_t & S_(t-1)| / |S_t|`` and ``|S_t & M_t| / |S_t|`` for the
    max-loss set M_t; Jaccard indices are recorded too.
    """

    def __init__(self, num_examples: int):
        if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 1:
            raise ValueError(f"num_examples must be a positive integer (the training set size), got {num_examples!r}")
        self.num_examples = num_examples
        self.counts = torch.zeros(num_examples, dtype=torch.int64)
        self.records: List[Dict[str, Any]] = []
        self.last_indices: Optional[torch.Tensor] = None

    def _check_indices(self, idx: torch.Tensor, name: str) -> torch.Tensor:
        idx = torch.as_tensor(idx).reshape(-1).to(device="cpu")
        if idx.dtype.is_floating_point or idx.dtype == torch.bool:
            raise TypeError(f"{name}: expected integer dataset indices, got {idx.dtype}")
        idx = idx.to(torch.int64)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.num_examples):
            raise ValueError(f"{name}: dataset indices must lie in [0, {self.num_examples}), "
                             f"found [{int(idx.min())}, {int(idx.max())}]")
        return idx

    def update(self, selection: Selection,
               max_loss_indices: Union[Selection, torch.Tensor, Sequence[int], None] = None) -> Dict[str, Any]:
        """Counts the selection and appends (and returns) its record."""
        idx = self._check_indices(selection.indices, "selection.indices")
        self.counts += torch.bincount(torch.unique(idx), minlength=self.num_examples)
        previous = _overlap(idx, self.last_indices) if self.last_indices is not None else {"overlap": None,
                                                                                          "jaccard": None}
        max_loss = {"overlap": None, "jaccard": None}
        if max_loss_indices is not None:
            other = max_loss_indices.indices if isinstance(max_loss_indices, Selection) else max_loss_indices
            max_loss = _overlap(idx, self._check_indices(other, "max_loss_indices"))
        weights = selection.weights
        record = {"update": len(self.records), "epoch": int(selection.epoch), "method": selection.method,
                  "size": int(idx.numel()), "selected_fraction": idx.numel() / self.num_examples,
                  "never_selected_fraction": self.never_selected_fraction(),
                  "overlap_previous": previous["overlap"], "jaccard_previous": previous["jaccard"],
                  "overlap_max_loss": max_loss["overlap"], "jaccard_max_loss": max_loss["jaccard"],
                  "weight_min": float(weights.min()) if weights.numel() else None,
                  "weight_max": float(weights.max()) if weights.numel() else None,
                  "time_total": selection.timings.get("total")}
        self.records.append(record)
        self.last_indices = idx
        return record

    @property
    def num_updates(self) -> int:
        return len(self.records)

    def never_selected_fraction(self) -> float:
        """Share of the training set not selected in any update so far."""
        return float((self.counts == 0).sum()) / self.num_examples

    def overlap_with_previous(self) -> Optional[float]:
        """``|S_t & S_(t-1)| / |S_t|`` for the latest update; None before the second."""
        return self.records[-1]["overlap_previous"] if self.records else None

    def overlap_with_max_loss(self) -> Optional[float]:
        """``|S_t & M_t| / |S_t|`` for the latest update; None when no max-loss set was given."""
        return self.records[-1]["overlap_max_loss"] if self.records else None

    def selection_frequency(self) -> torch.Tensor:
        """Per-example share of updates in which it was selected (float64)."""
        return self.counts.to(torch.float64) / max(self.num_updates, 1)

    # --- persistence -------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"format_version": FORMAT_VERSION, "num_examples": self.num_examples,
                           "counts": self.counts.tolist(), "records": self.records,
                           "last_indices": None if self.last_indices is None else self.last_indices.tolist()})

    @classmethod
    def from_json(cls, text: str) -> "SelectionHistory":
        state = json.loads(text)
        if state.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported SelectionHistory format {state.get('format_version')!r} "
                             f"(this version reads {FORMAT_VERSION})")
        history = cls(int(state["num_examples"]))
        counts = torch.tensor(state["counts"], dtype=torch.int64)
        if counts.numel() != history.num_examples:
            raise ValueError(f"counts has {counts.numel()} entries for num_examples={history.num_examples}")
        history.counts = counts
        history.records = list(state["records"])
        if state["last_indices"] is not None:
            history.last_indices = torch.tensor(state["last_indices"], dtype=torch.int64)
        return history

    def save(self, path: Union[str, os.PathLike]) -> None:
        """JSON, written atomically (temp file in the same folder + rename)."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "SelectionHistory":
        if not os.path.exists(path):
            raise FileNotFoundError(f"no selection history at {path}")
        with open(path) as fh:
            return cls.from_json(fh.read())

    def save_csv(self, path: Union[str, os.PathLike]) -> None:
        """One row per update (``RECORD_FIELDS``), written atomically; empty cells for None."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=RECORD_FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in self.records:
            writer.writerow({k: ("" if record.get(k) is None else record.get(k)) for k in RECORD_FIELDS})
        atomic_write_text(path, buf.getvalue())
