"""Per-example gradient proxies: the gradient of the loss w.r.t. the logits."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import torch

from augcore._build import check_device_supported, compiled_ops
from augcore.checks import check_choice, check_finite
from augcore.ops._common import as_tensor, check_float_matrix, check_labels, check_same_device

LOSSES = {"ce": 0, "mse": 1}


class Proxies(NamedTuple):
    errors: torch.Tensor                      # (N, C) float32: softmax(z) - onehot(y) ("ce") or z - onehot(y) ("mse")
    loss: torch.Tensor                        # (N,) float32: cross-entropy, or 0.5 * |z - onehot(y)|^2
    error_sqnorm: torch.Tensor                # (N,) float32: |e_i|^2
    embedding_sqnorm: Optional[torch.Tensor]  # (N,) float32: |h_i|^2, when embeddings were given


def grad_proxies(logits: Any, labels: Any, embeddings: Any = None, loss: str = "ce") -> Proxies:
    """One pass over the logits: error vectors, per-example losses and the norms the
    distance kernels need.

    ``logits`` (N, C) float16/bfloat16/float32/float64, ``labels`` (N,) integers in
    [0, C), ``embeddings`` (N, H) optional. Arithmetic is float32 (float64 for
    float64 inputs); outputs are float32. The proxy e_i is the reference code's
    default gradient proxy; with embeddings, e_i (x) h_i is the exact last-layer
    weight gradient (see ``pairwise_distances`` / ``facility_location``).
    """
    logits = as_tensor(logits, "logits")
    labels = as_tensor(labels, "labels")
    check_float_matrix(logits, "logits")
    check_device_supported(logits, "logits")
    check_same_device("logits", logits, "labels", labels)
    n, c = logits.shape
    check_choice("loss", loss, LOSSES)
    on_cpu = logits.device.type == "cpu"
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"labels: expected shape ({n},), got {tuple(labels.shape)}")
    if on_cpu:  # on CUDA the op checks range and finiteness with one synchronisation
        check_labels(labels, n, "labels", num_classes=c)
        check_finite(logits, "logits")
    elif labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.is_complex():
        raise TypeError(f"labels: expected an integer dtype, got {labels.dtype}")
    if embeddings is not None:
        embeddings = as_tensor(embeddings, "embeddings")
        check_float_matrix(embeddings, "embeddings", rows=n)
        check_same_device("logits", logits, "embeddings", embeddings)
        if on_cpu:
            check_finite(embeddings, "embeddings")
    return _grad_proxies_unchecked(logits, labels, embeddings, loss)


def _grad_proxies_unchecked(logits: torch.Tensor, labels: torch.Tensor, embeddings: Optional[torch.Tensor] = None,
                            loss: str = "ce") -> Proxies:
    """``grad_proxies`` for callers that validated its inputs (the selectors, after
    ``validate_stats``): tensors on one device the extension supports, finite floating
    logits (N, C) and embeddings (N, H), integer labels in [0, C). No pass over the data."""
    errors, per_example, e_sq, h_sq = compiled_ops().grad_proxies(
        logits.contiguous(), labels.to(torch.int64).contiguous(),
        None if embeddings is None else embeddings.contiguous(), LOSSES[loss])
    return Proxies(errors, per_example, e_sq, h_sq if embeddings is not None else None)
