"""Influence of (augmented) training samples on the validation loss, on the last layer.

Koh & Liang's influence of up-weighting a training point z,

    I_up,loss(z) = - grad L_val^T H^-1 grad l(z) = - <s_val, g(z)>,   s_val = H^-1 grad L_val,

and the paper's ("Learning Augmentation Network via Influence Functions", Lee et al.,
CVPR 2020) influence of replacing z by its augmentation z~,

    I_aug(z, z~) = I_up,loss(z~) - I_up,loss(z).

Up-weighting z by eps changes the validation loss by about eps * I_up,loss(z); with a
mean training loss over N points, removing z changes it by about -I_up,loss(z) / N and
replacing z by z~ by about I_aug(z, z~) / N. Negative means "lowers validation loss".

s_val is solved once (per selection step, or once while E learns) and then every score is
one dot product with the last-layer gradient g_i = [e_i (x) h_i, e_i], taken in factored
form: <s, g_i> = e_i^T S h_i + e_i^T s_b. As in the paper, L_val is summed over the
validation samples by default (``reduction="mean"`` rescales every score by 1/N_val).
"""
from __future__ import annotations

from typing import Optional

import torch

from augcore.influence.hessian import (LOSSES, LastLayerHessian, ParameterHessian, join_last_layer, output_errors,
                                       split_last_layer)
from augcore.checks import check_bool, check_choice, check_int, check_number
from augcore.influence.solvers import SolveResult, conjugate_gradient, lissa

SOLVERS = ("cg", "lissa")
REDUCTIONS = ("sum", "mean")


def last_layer_gradient(errors: torch.Tensor, embeddings: torch.Tensor, bias: bool) -> torch.Tensor:
    """sum_i g_i = [E^T H_emb, sum_i e_i] flattened: the gradient of a summed loss."""
    weight = errors.T @ embeddings
    return join_last_layer(weight, errors.sum(0) if bias else None)


def last_layer_dot(direction: torch.Tensor, errors: torch.Tensor, embeddings: torch.Tensor,
                   bias: bool) -> torch.Tensor:
    """(N,) <direction, g_i> for g_i = [e_i (x) h_i, e_i], without forming any g_i.

    One (N, H) x (H, C) GEMM and a row-wise product; differentiable in every input.
    """
    weight, bias_part = split_last_layer(direction.to(embeddings.dtype), errors.shape[1], embeddings.shape[1], bias)
    projected = embeddings @ weight.T
    if bias_part is not None:
        projected = projected + bias_part
    return (errors * projected).sum(1)


class LastLayerInfluence:
    """s_val = (H + damping I)^-1 grad L_val for the last layer [W, b], and the scores it gives.

    ``weight`` (C, H) and ``bias`` (C,) or None are the classifier's last layer (bias None:
    a bias-free layer, theta = W only); ``train_embeddings``/``train_logits`` define the
    Hessian of the mean training loss. ``damping`` (default 0.01; the paper states none)
    is added to the Hessian: use the training objective's L2 coefficient where there is one.
    Solves run in ``dtype`` (float64 by default: the last layer is small).
    """

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], train_embeddings: torch.Tensor,
                 train_logits: torch.Tensor, *, damping: float = 0.01, loss: str = "ce",
                 dtype: torch.dtype = torch.float64):
        for name, t in (("weight", weight), ("train_embeddings", train_embeddings), ("train_logits", train_logits)):
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise TypeError(f"{name} must be a floating torch.Tensor, got "
                                f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}")
        if bias is not None and not isinstance(bias, torch.Tensor):
            raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
        if weight.dim() != 2:
            raise ValueError(f"weight: expected (C, H), got shape {tuple(weight.shape)}")
        num_classes, embedding_dim = weight.shape
        if bias is not None and tuple(bias.shape) != (num_classes,):
            raise ValueError(f"bias: expected shape ({num_classes},) to match weight {tuple(weight.shape)}, "
                             f"got {tuple(bias.shape)}")
        if train_embeddings.dim() != 2 or train_embeddings.shape[1] != embedding_dim:
            raise ValueError(f"train embeddings: expected (N, {embedding_dim}) to match weight, got "
                             f"{tuple(train_embeddings.shape)}")
        if train_logits.dim() != 2 or train_logits.shape[1] != num_classes:
            raise ValueError(f"train logits: expected (N, {num_classes}) to match weight, got "
                             f"{tuple(train_logits.shape)}")
        check_choice("loss", loss, LOSSES)
        for name, t in (("train embeddings", train_embeddings), ("train logits", train_logits)):
            if t.device != weight.device:
                raise ValueError(f"{name} are on {t.device} but the layer's weight is on {weight.device}; "
                                 "put them on one device")
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} contain NaN or inf")
        self.weight = weight.detach().to(dtype)
        self.bias = None if bias is None else bias.detach().to(dtype)
        self.has_bias = bias is not None
        self.loss = loss
        self.dtype = dtype
        self.num_classes, self.embedding_dim = num_classes, embedding_dim
        self.hessian = LastLayerHessian(train_embeddings.detach().to(dtype), train_logits.detach().to(dtype),
                                        bias=self.has_bias, damping=damping, loss=loss)
        self.direction: Optional[torch.Tensor] = None  # s_val, set by fit()
        self.solve: Optional[SolveResult] = None

    def _check_labels(self, labels: torch.Tensor, rows: int, name: str) -> None:
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of class ids, got {type(labels).__name__}")
        if labels.dim() != 1 or labels.shape[0] != rows:
            raise ValueError(f"{name}: expected shape ({rows},), got {tuple(labels.shape)}")
        if labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError(f"{name}: expected integer class labels, got {labels.dtype}")
        if rows and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"{name}: values must lie in [0, {self.num_classes}), found "
                             f"[{int(labels.min())}, {int(labels.max())}]")

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The classifier's logits h W^T + b (differentiable in ``embeddings``)."""
        out = embeddings.to(self.dtype) @ self.weight.T
        return out if self.bias is None else out + self.bias

    def validation_gradient(self, val_embeddings: torch.Tensor, val_labels: torch.Tensor,
                            val_logits: Optional[torch.Tensor] = None, reduction: str = "sum") -> torch.Tensor:
        check_choice("reduction", reduction, REDUCTIONS)
        if not isinstance(val_embeddings, torch.Tensor) or not val_embeddings.is_floating_point():
            raise TypeError("validation embeddings must be a floating torch.Tensor")
        if not bool(torch.isfinite(val_embeddings).all()) or (val_logits is not None
                                                              and not bool(torch.isfinite(val_logits).all())):
            raise ValueError("validation embeddings / logits contain NaN or inf")
        if val_embeddings.dim() != 2 or val_embeddings.shape[1] != self.embedding_dim or len(val_embeddings) == 0:
            raise ValueError(f"validation embeddings: expected (N_val >= 1, {self.embedding_dim}), got "
                             f"{tuple(val_embeddings.shape)}")
        self._check_labels(val_labels, len(val_embeddings), "validation labels")
        h = val_embeddings.detach().to(self.dtype)
        z = self.logits(h) if val_logits is None else val_logits.detach().to(self.dtype)
        grad = last_layer_gradient(output_errors(z, val_labels, self.loss), h, self.has_bias)
        return grad / len(h) if reduction == "mean" else grad

    def fit(self, val_embeddings: torch.Tensor, val_labels: torch.Tensor, val_logits: Optional[torch.Tensor] = None,
            *, reduction: str = "sum", solver: str = "cg", seed: int = 0, cg_tol: float = 1e-8,
            precondition: bool = False,
            lissa_depth: int = 1000, lissa_repeats: int = 1, lissa_batch_size: Optional[int] = 1024,
            lissa_scale: Optional[float] = None) -> "LastLayerInfluence":
        """Solves for s_val (once; then every score is a dot product). ``val_logits`` None:
        computed from the layer. ``solver``: ``"cg"`` (default, exact; ``precondition=True``
        adds Jacobi preconditioning by the Hessian's diagonal, which helps when embedding
        coordinates have very different scales and did not on CIFAR-like random stats)
        or ``"lissa"``."""
        check_choice("solver", solver, SOLVERS)
        seed = check_int("seed", seed, min=0)
        cg_tol = check_number("cg_tol", cg_tol, min=0.0, min_inclusive=False)
        precondition = check_bool("precondition", precondition)
        rhs = self.validation_gradient(val_embeddings, val_labels, val_logits, reduction)
        if solver == "cg":
            self.solve = conjugate_gradient(self.hessian.matvec, rhs, tol=cg_tol,
                                            preconditioner=self.hessian.diagonal() if precondition else None)
        else:
            generator = torch.Generator().manual_seed(seed)
            self.solve = lissa(self.hessian.matvec, self.hessian.stochastic_matvec(generator, lissa_batch_size), rhs,
                               depth=lissa_depth, repeats=lissa_repeats, scale=lissa_scale)
        self.direction = self.solve.solution
        return self

    def _require_fit(self) -> torch.Tensor:
        if self.direction is None:
            raise RuntimeError("call fit(validation embeddings, labels) before asking for influence scores")
        return self.direction

    def up_loss(self, embeddings: torch.Tensor, labels: torch.Tensor,
                logits: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N,) I_up,loss(z_i) = -<s_val, g_i>; differentiable in ``embeddings`` (and ``logits``).

        ``logits`` None: computed from the layer, so gradients also flow through them.
        """
        direction = self._require_fit()
        if not isinstance(embeddings, torch.Tensor) or not embeddings.is_floating_point():
            raise TypeError("embeddings must be a floating torch.Tensor")
        if embeddings.dim() != 2 or embeddings.shape[1] != self.embedding_dim:
            raise ValueError(f"embeddings: expected (N, {self.embedding_dim}), got {tuple(embeddings.shape)}")
        self._check_labels(labels, len(embeddings), "labels")
        h = embeddings.to(self.dtype)
        z = self.logits(h) if logits is None else logits.to(self.dtype)
        if z.shape != (len(h), self.num_classes):
            raise ValueError(f"logits: expected ({len(h)}, {self.num_classes}), got {tuple(z.shape)}")
        return -last_layer_dot(direction, output_errors(z, labels, self.loss), h, self.has_bias)

    def augmentation(self, embeddings: torch.Tensor, augmented_embeddings: torch.Tensor, labels: torch.Tensor,
                     logits: Optional[torch.Tensor] = None,
                     augmented_logits: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N,) I_aug(z_i, z~_i) = I_up,loss(z~_i) - I_up,loss(z_i) (the label is kept)."""
        return self.up_loss(augmented_embeddings, labels, augmented_logits) - self.up_loss(embeddings, labels, logits)


class ParameterInfluence:
    """s_val = (H + damping I)^-1 grad L_val over all (or the named) parameters of a model.

    The option to the last-layer default: exact HVPs by ``torch.func`` through
    :class:`~augcore.influence.hessian.ParameterHessian`, per-example gradients by
    ``vmap``; it costs a full backward (and forward-over-reverse) pass per HVP, so use it
    on small models or a few candidates. Same conventions as :class:`LastLayerInfluence`.
    """

    def __init__(self, hessian: ParameterHessian):
        self.hessian = hessian
        self.direction: Optional[torch.Tensor] = None
        self.solve: Optional[SolveResult] = None

    def fit(self, val_inputs: torch.Tensor, val_targets: torch.Tensor, *, reduction: str = "sum",
            solver: str = "cg", seed: int = 0, cg_tol: float = 1e-8, lissa_depth: int = 1000,
            lissa_repeats: int = 1, lissa_scale: Optional[float] = None) -> "ParameterInfluence":
        """``loss_fn`` is a batch mean, so the summed validation gradient is N_val times it."""
        check_choice("solver", solver, SOLVERS)
        check_choice("reduction", reduction, REDUCTIONS)
        seed = check_int("seed", seed, min=0)
        if len(val_inputs) == 0:
            raise ValueError("validation set is empty")
        rhs = self.hessian.gradient(val_inputs, val_targets)
        if reduction == "sum":
            rhs = rhs * len(val_inputs)
        if solver == "cg":
            self.solve = conjugate_gradient(self.hessian.matvec, rhs, tol=cg_tol)
        else:
            generator = torch.Generator().manual_seed(seed)
            self.solve = lissa(self.hessian.matvec, self.hessian.stochastic_matvec(generator), rhs,
                               depth=lissa_depth, repeats=lissa_repeats, scale=lissa_scale)
        self.direction = self.solve.solution
        return self

    def up_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N,) I_up,loss(z_i) = -<s_val, grad l(z_i)>."""
        if self.direction is None:
            raise RuntimeError("call fit(validation inputs, targets) before asking for influence scores")
        return -(self.hessian.per_example_gradients(inputs, targets) @ self.direction)

    def augmentation(self, inputs: torch.Tensor, augmented_inputs: torch.Tensor,
                     targets: torch.Tensor) -> torch.Tensor:
        """(N,) I_aug(z_i, z~_i) = I_up,loss(z~_i) - I_up,loss(z_i)."""
        return self.up_loss(augmented_inputs, targets) - self.up_loss(inputs, targets)
