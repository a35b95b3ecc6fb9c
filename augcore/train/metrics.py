"""Per-epoch logs (CSV and JSON lines, rewritten atomically), matplotlib plots, and the opt-in
mini-batch gradient variance."""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import torch

from augcore.checks import check_int, check_int_list
from augcore.io import atomic_savefig, atomic_write_text  # noqa: F401  (atomic_write_text re-exported)


def _columns(rows: Sequence[Dict[str, Any]]) -> List[str]:
    columns: List[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    return columns


def write_rows(rows: Sequence[Dict[str, Any]], csv_path: Optional[str] = None,
               jsonl_path: Optional[str] = None) -> None:
    """Writes all rows to CSV and/or JSON lines. The whole file is rewritten from the
    rows held in memory (and in the checkpoint), so a resumed run never duplicates
    or loses an epoch."""
    if isinstance(rows, (str, bytes, dict)) or not all(isinstance(row, dict) for row in rows):
        raise TypeError("rows must be a list of dicts (one per epoch)")
    if csv_path:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=_columns(rows), restval="")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(csv_path, buffer.getvalue())
    if jsonl_path:
        atomic_write_text(jsonl_path, "".join(json.dumps(row) + "\n" for row in rows))


@torch.no_grad()
def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Iterable[int]) -> List[int]:
    """How many rows have their label among the top-k logits, for each k (k capped at C)."""
    ks = check_int_list("ks", ks, min=1)
    if not ks:
        raise ValueError("ks must name at least one k, got []")
    if logits.dim() != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (B, C) and labels (B,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    max_k = min(max(ks), logits.shape[1])
    top = logits.topk(max_k, dim=1).indices
    hits = top == labels.unsqueeze(1)
    return [int(hits[:, :min(k, max_k)].any(dim=1).sum()) for k in ks]


def summarize_weights(weights: torch.Tensor) -> Dict[str, float]:
    weights = torch.as_tensor(weights)
    if weights.numel() == 0:
        return {"weight_min": math.nan, "weight_mean": math.nan, "weight_max": math.nan}
    w = weights.double()
    return {"weight_min": float(w.min()), "weight_mean": float(w.mean()), "weight_max": float(w.max())}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only; works without a display
    import matplotlib.pyplot as plt
    return plt


def plot_training_curves(rows: Sequence[Dict[str, Any]], path: str, title: str = "",
                         refine_start: Optional[int] = None, selection_epochs: Sequence[int] = ()) -> None:
    """Test top-1 and train accuracy against epoch; dotted lines mark re-selections,
    a dashed line the start of refinement."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [r["epoch"] for r in rows]
    ax.plot(epochs, [r["test_top1"] for r in rows], label="test top-1")
    ax.plot(epochs, [r["train_acc"] for r in rows], label="train accuracy", alpha=0.7)
    for e in selection_epochs:
        ax.axvline(e, color="grey", linestyle=":", linewidth=0.8)
    if refine_start is not None:
        ax.axvline(refine_start, color="black", linestyle="--", label="refinement")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def minibatch_gradient_variance(parameters: Sequence[torch.Tensor], batches: Iterable[Any],
                                batch_loss: Callable[[Any], torch.Tensor], *, batch_size: int) -> float:
    """The variance of mini-batch gradients, E ||g_B - g||^2 (Nguyen et al., Theorem 4.3 and Fig. 7).

    ``batches`` is one pass over the training data cut into mini-batches; ``batch_loss(batch)``
    returns a batch's mean training loss. g_B is the gradient of that loss with respect to
    ``parameters``; g, the full gradient, is the mean per-example gradient over the whole
    pass (sum of |B| g_B over all batches, divided by their sizes' sum); the expectation is
    the mean over the batches of exactly ``batch_size`` examples (a last, smaller batch adds
    to g only). Sums are float64: E||g_B||^2 - 2 g.E[g_B] + ||g||^2.
    """
    batch_size = check_int("batch_size", batch_size, min=1)
    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        raise ValueError("parameters: no tensor requires a gradient")
    weighted_sum = full_sum = None
    full_sq, full_batches, examples = 0.0, 0, 0
    for batch in batches:
        loss = batch_loss(batch)
        n = int(batch[0].shape[0])
        grads = torch.autograd.grad(loss, parameters, allow_unused=True)
        g = torch.cat([(gr if gr is not None else torch.zeros_like(p)).reshape(-1).to(torch.float64)
                       for gr, p in zip(grads, parameters)])
        weighted_sum = g * n if weighted_sum is None else weighted_sum.add_(g, alpha=n)
        examples += n
        if n == batch_size:
            full_sum = g.clone() if full_sum is None else full_sum.add_(g)
            full_sq += float(g.dot(g))
            full_batches += 1
    if full_batches == 0:
        raise ValueError(f"batches: no mini-batch of batch_size = {batch_size} examples (the data has {examples})")
    full = weighted_sum / examples
    return full_sq / full_batches - 2.0 * float(full.dot(full_sum)) / full_batches + float(full.dot(full))
