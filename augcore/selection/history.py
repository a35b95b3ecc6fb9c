"""Bookkeeping across re-selections: how often each example was picked, how much of the
data was never picked, overlap between consecutive selections and with max-loss."""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from augcore.checks import CorruptFileError, check_indices, check_int
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
        self.num_examples = check_int("num_examples (the training set size)", num_examples, min=1)
        self.counts = torch.zeros(num_examples, dtype=torch.int64)
        self.records: List[Dict[str, Any]] = []
        self.last_indices: Optional[torch.Tensor] = None

    def _check_indices(self, idx: torch.Tensor, name: str) -> torch.Tensor:
        return check_indices(name, idx, size=self.num_examples)

    def update(self, selection: Selection,
               max_loss_indices: Union[Selection, torch.Tensor, Sequence[int], None] = None) -> Dict[str, Any]:
        """Counts the selection and appends (and returns) its record."""
        if not isinstance(selection, Selection):
            raise TypeError(f"selection must be an augcore Selection, got {type(selection).__name__}")
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
        """Parses :meth:`to_json`'s output; raises ``ValueError`` saying what is wrong with it."""
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"text must be the JSON string of a SelectionHistory, got {type(text).__name__}")
        try:
            state = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not JSON (truncated or damaged?): {exc}") from None
        if not isinstance(state, dict):
            raise ValueError(f"a SelectionHistory is a JSON object, got {type(state).__name__}")
        version = state.get("format_version")
        if version != FORMAT_VERSION:
            found = "(no format_version entry)" if version is None else f"version {version!r}"
            raise ValueError(f"unsupported SelectionHistory format {found}; this augcore reads format "
                             f"{FORMAT_VERSION}")
        missing = [k for k in ("num_examples", "counts", "records", "last_indices") if k not in state]
        if missing:
            raise ValueError(f"the SelectionHistory lacks {missing}")
        history = cls(state["num_examples"])
        counts = check_indices("counts", state["counts"])  # non-negative integers, like indices
        if counts.numel() != history.num_examples:
            raise ValueError(f"counts has {counts.numel()} entries for num_examples={history.num_examples}")
        records = state["records"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ValueError("records must be a list of JSON objects")
        for i, record in enumerate(records):
            lacking = [k for k in RECORD_FIELDS if k not in record]
            if lacking:  # the overlap queries and the CSV read every field
                raise ValueError(f"records[{i}] lacks {lacking}")
        history.counts = counts
        history.records = list(records)
        if state["last_indices"] is not None:
            history.last_indices = check_indices("last_indices", state["last_indices"], size=history.num_examples)
        return history

    def save(self, path: Union[str, os.PathLike]) -> None:
        """JSON, written atomically (temp file in the same folder + rename)."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "SelectionHistory":
        """Reads :meth:`save`'s file; a truncated or damaged one raises ``CorruptFileError`` naming it."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a file path, got {path!r} ({type(path).__name__})")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no selection history at {os.fspath(path)}")
        with open(path, "rb") as fh:
            data = fh.read()
        try:
            return cls.from_json(data.decode("utf-8"))
        except (UnicodeDecodeError, TypeError, ValueError) as exc:
            raise CorruptFileError(path, f"not a SelectionHistory file: {exc}") from None

    def save_csv(self, path: Union[str, os.PathLike]) -> None:
        """One row per update (``RECORD_FIELDS``), written atomically; empty cells for None."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=RECORD_FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in self.records:
            writer.writerow({k: ("" if record.get(k) is None else record.get(k)) for k in RECORD_FIELDS})
        atomic_write_text(path, buf.getvalue())
