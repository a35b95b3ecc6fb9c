"""Hessian-vector products of the training loss, never forming the Hessian.

Two operators share one interface (``dim``, ``matvec(v)``, ``stochastic_matvec(generator,
batch_size)``) so that the solvers in :mod:`augcore.influence.solvers` work on either:

* :class:`LastLayerHessian` (the default; the paper computes influence "on the top fully
  connected layer"): the Hessian of the mean training loss w.r.t. the last layer's
  parameters theta = [W, b], given the fixed embeddings h_i. For softmax cross-entropy,
  with p_i = softmax(z_i) and A_i = diag(p_i) - p_i p_i^T,

      H [S, s_b] = 1/N sum_i [u_i (x) h_i, u_i],   u_i = A_i (S h_i + s_b),

  i.e. two GEMMs and a row-wise product: no per-example gradient (C*(H+1) numbers per
  example) is ever formed.
* :class:`ParameterHessian`: all parameters of a model, by forward-over-reverse
  differentiation (``torch.func.jvp`` of ``torch.func.grad``).

Both add ``damping * I``: the L2 coefficient of the training objective when there is
one, and in any case the Tikhonov damping that makes the (often singular: softmax is
invariant to adding a constant to every logit) Hessian invertible.

Flat layout of a last-layer vector: ``[W.flatten() (C*H, row-major), b (C)]``, the layout
of ``augcore.ops.reference.explicit_last_layer_gradients``.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from augcore.checks import check_choice, check_int, check_number

LOSSES = ("ce", "mse")
StochasticMatvec = Callable[[torch.Tensor], torch.Tensor]


def _check_damping(damping: float) -> float:
    return check_number("damping", damping, min=0.0)


def _check_vector(v: torch.Tensor, dim: int, name: str = "v") -> None:
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
    if v.dim() != 1 or v.shape[0] != dim:
        raise ValueError(f"{name}: expected a flat vector of length {dim}, got shape {tuple(v.shape)}")


def split_last_layer(v: torch.Tensor, num_classes: int, embedding_dim: int,
                     bias: bool) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Views a flat last-layer vector as (S (C, H), s_b (C) or None)."""
    _check_vector(v, num_classes * (embedding_dim + int(bias)))
    weight = v[: num_classes * embedding_dim].view(num_classes, embedding_dim)
    return weight, (v[num_classes * embedding_dim:] if bias else None)


def join_last_layer(weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """The flat vector [W.flatten(), b] (inverse of :func:`split_last_layer`)."""
    parts = [weight.reshape(-1)] + ([] if bias is None else [bias.reshape(-1)])
    return torch.cat(parts)


def output_errors(logits: torch.Tensor, labels: torch.Tensor, loss: str = "ce") -> torch.Tensor:
    """e = d loss / d logits: softmax(z) - onehot(y) (``"ce"``) or z - onehot(y) (``"mse"``).

    Plain torch (and differentiable), the same proxy as ``augcore.grad_proxies``.
    """
    check_choice("loss", loss, LOSSES)
    onehot = torch.nn.functional.one_hot(labels.long(), logits.shape[1]).to(logits.dtype)
    return (torch.softmax(logits, 1) if loss == "ce" else logits) - onehot


class LastLayerHessian:
    """Damped Hessian of the mean training loss w.r.t. the last layer [W, b], factored.

    ``embeddings`` (N, H) are the classifier's inputs h_i and ``logits`` (N, C) its
    outputs z_i at the current parameters; ``bias`` says whether b is a parameter.
    Arithmetic runs in the dtype of ``embeddings`` (promoted to at least float32).
    """

    def __init__(self, embeddings: torch.Tensor, logits: torch.Tensor, *, bias: bool = True,
                 damping: float = 0.0, loss: str = "ce"):
        for name, t in (("embeddings", embeddings), ("logits", logits)):
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise TypeError(f"{name} must be a floating torch.Tensor, got "
                                f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}")
        if embeddings.dim() != 2 or logits.dim() != 2 or embeddings.shape[0] != logits.shape[0]:
            raise ValueError(f"embeddings (N, H) and logits (N, C) must have the same number of rows, got "
                             f"{tuple(embeddings.shape)} and {tuple(logits.shape)}")
        if embeddings.shape[0] == 0:
            raise ValueError("the Hessian needs at least one training example; got 0 rows")
        check_choice("loss", loss, LOSSES)
        dtype = torch.promote_types(embeddings.dtype, torch.float32)
        self.embeddings = embeddings.to(dtype)
        self.probabilities = torch.softmax(logits.to(dtype), 1) if loss == "ce" else None
        self.bias = bool(bias)
        self.damping = _check_damping(damping)
        self.num_examples, self.embedding_dim = embeddings.shape
        self.num_classes = logits.shape[1]
        self.dim = self.num_classes * (self.embedding_dim + int(self.bias))

    def _curvature_product(self, v: torch.Tensor, rows: Optional[torch.Tensor]) -> torch.Tensor:
        h = self.embeddings if rows is None else self.embeddings[rows]
        weight, bias = split_last_layer(v.to(h.dtype), self.num_classes, self.embedding_dim, self.bias)
        delta_logits = h @ weight.T
        if bias is not None:
            delta_logits = delta_logits + bias
        if self.probabilities is None:  # squared loss: d^2 loss / d z^2 = I
            u = delta_logits
        else:
            p = self.probabilities if rows is None else self.probabilities[rows]
            pu = p * delta_logits
            u = pu - p * pu.sum(1, keepdim=True)  # A_i delta_i = p*delta - p (p . delta)
        out_weight = (u.T @ h) / h.shape[0]
        out_bias = u.sum(0) / h.shape[0] if self.bias else None
        return join_last_layer(out_weight, out_bias) + self.damping * v.to(h.dtype)

    def diagonal(self) -> torch.Tensor:
        """diag(H + damping I), one GEMM: H_(c,a),(c,a) = 1/N sum_i p_ic (1 - p_ic) h_ia^2 (CE)."""
        h = self.embeddings
        curvature = (self.probabilities * (1.0 - self.probabilities) if self.probabilities is not None
                     else torch.ones(self.num_examples, self.num_classes, dtype=h.dtype, device=h.device))
        weight = curvature.T @ (h * h) / self.num_examples
        bias = curvature.mean(0) if self.bias else None
        return join_last_layer(weight, bias) + self.damping

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """(H + damping I) v over all training examples."""
        _check_vector(v, self.dim)
        return self._curvature_product(v, None)

    def stochastic_matvec(self, generator: torch.Generator, batch_size: Optional[int] = 1024) -> StochasticMatvec:
        """An unbiased mini-batch estimate of ``matvec``: each call draws ``batch_size`` rows
        uniformly with replacement, O(batch) per call (None or >= N: the exact full product)."""
        if batch_size is not None:
            batch_size = check_int("batch_size (or None for all rows)", batch_size, min=1)
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        batch_size = self.num_examples if batch_size is None else min(batch_size, self.num_examples)

        def estimate(v: torch.Tensor) -> torch.Tensor:
            _check_vector(v, self.dim)
            if batch_size == self.num_examples:
                return self._curvature_product(v, None)
            rows = torch.randint(self.num_examples, (batch_size,), generator=generator)
            return self._curvature_product(v, rows.to(self.embeddings.device))

        return estimate


class ParameterHessian:
    """Damped Hessian of the mean training loss w.r.t. all (or the named) model parameters.

    ``loss_fn(model_output, targets)`` must return the batch-mean loss; when the model
    returns a tuple (augcore models return ``(logits, embedding)``) its first element is
    passed. ``batches`` is a sequence of ``(inputs, targets)``; the full product is the
    size-weighted mean over them. HVPs are forward-over-reverse (``torch.func``), exact
    to rounding; the parameters are read once, at construction.
    """

    def __init__(self, model: torch.nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 batches: Sequence[Tuple[torch.Tensor, torch.Tensor]], *, damping: float = 0.0,
                 parameter_names: Optional[Iterable[str]] = None):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable (output, targets) -> batch-mean loss, got {type(loss_fn).__name__}")
        if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], torch.Tensor):
            raise TypeError("batches must be a list of (inputs, targets) pairs; wrap a single batch as [(inputs, targets)]")
        self.model = model
        self.loss_fn = loss_fn
        self.batches = list(batches)
        if not self.batches:
            raise ValueError("ParameterHessian needs at least one (inputs, targets) batch")
        self.damping = _check_damping(damping)
        named = dict(model.named_parameters())
        names = list(named) if parameter_names is None else list(parameter_names)
        missing = [n for n in names if n not in named]
        if missing:
            raise KeyError(f"model has no parameters named {missing}; it has {list(named)}")
        self.names: List[str] = names
        self.params: Dict[str, torch.Tensor] = {n: named[n].detach() for n in names}
        self.frozen: Dict[str, torch.Tensor] = {n: p.detach() for n, p in named.items() if n not in self.params}
        self.buffers: Dict[str, torch.Tensor] = dict(model.named_buffers())
        self.dim = sum(p.numel() for p in self.params.values())
        self._weights = torch.tensor([len(t) for _, t in self.batches], dtype=torch.float64)
        self._weights = self._weights / self._weights.sum()

    def unflatten(self, v: torch.Tensor) -> Dict[str, torch.Tensor]:
        _check_vector(v, self.dim)
        out, start = {}, 0
        for name, p in self.params.items():
            out[name] = v[start:start + p.numel()].view_as(p).to(p.dtype)
            start += p.numel()
        return out

    def flatten(self, tensors: Dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([tensors[n].reshape(-1) for n in self.names])

    def batch_loss(self, params: Dict[str, torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        output = torch.func.functional_call(self.model, {**self.frozen, **params, **self.buffers}, (inputs,))
        if isinstance(output, tuple):
            output = output[0]
        return self.loss_fn(output, targets)

    def gradient(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Flat gradient of ``loss_fn`` on one batch (no damping term)."""
        grads = torch.func.grad(self.batch_loss)(self.params, inputs, targets)
        return self.flatten(grads)

    def per_example_gradients(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, dim) flat gradients of the loss of each example, by ``vmap`` over ``grad``."""
        def single(params, x, y):
            return self.batch_loss(params, x.unsqueeze(0), y.unsqueeze(0))
        grads = torch.func.vmap(torch.func.grad(single), in_dims=(None, 0, 0))(self.params, inputs, targets)
        return torch.cat([grads[n].reshape(len(inputs), -1) for n in self.names], 1)

    def _batch_product(self, v: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        grad_fn = torch.func.grad(self.batch_loss)
        _, hvp = torch.func.jvp(lambda p: grad_fn(p, inputs, targets), (self.params,), (self.unflatten(v),))
        return self.flatten(hvp)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """(H + damping I) v, the size-weighted mean of the per-batch products."""
        _check_vector(v, self.dim)
        total = sum(float(w) * self._batch_product(v, x, y) for w, (x, y) in zip(self._weights, self.batches))
        return total + self.damping * v

    def stochastic_matvec(self, generator: torch.Generator, batch_size: Optional[int] = None) -> StochasticMatvec:
        """Each call uses one of ``batches``, drawn uniformly (their sizes fix the batch size)."""
        if batch_size is not None:
            raise ValueError("ParameterHessian draws whole batches from `batches`; pass batch_size=None "
                             "and choose the batch size when building them")

        def estimate(v: torch.Tensor) -> torch.Tensor:
            _check_vector(v, self.dim)
            k = int(torch.randint(len(self.batches), (1,), generator=generator))
            x, y = self.batches[k]
            return self._batch_product(v, x, y) + self.damping * v

        return estimate
