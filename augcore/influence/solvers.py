"""Solving (H + damping I) x = b with Hessian-vector products only.

* :func:`conjugate_gradient` (the default for the last layer, where a full HVP costs two
  GEMMs over the training set): exact in at most ``dim`` steps, usually far fewer.
* :func:`lissa`, the stochastic estimator of Agarwal et al. as used by Koh & Liang's
  influence code: x_t = b + x_{t-1} - H_t x_{t-1} / scale with mini-batch HVPs H_t,
  averaged over ``repeats`` independent recursions, returned as x / scale. It needs the
  eigenvalues of H / scale in (0, 1]; ``scale=None`` takes twice a power-iteration
  estimate of the largest eigenvalue.

Both take a ``matvec`` callable, so they work with any operator in
:mod:`augcore.influence.hessian` (which already include the damping).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from augcore.checks import check_bool, check_int, check_number

Matvec = Callable[[torch.Tensor], torch.Tensor]


class SolverError(RuntimeError, ValueError):
    """A solve failed because of its settings (too few iterations, too little damping, a LiSSA
    scale below the Hessian's spectrum): a ``RuntimeError`` that is also a ``ValueError``."""


@dataclass
class SolveResult:
    solution: torch.Tensor
    iterations: int
    residual_norm: float       # ||A x - b|| with the exact operator
    rhs_norm: float
    converged: bool

    @property
    def relative_residual(self) -> float:
        return self.residual_norm / self.rhs_norm if self.rhs_norm > 0 else self.residual_norm


def _check_rhs(rhs: torch.Tensor) -> None:
    if not isinstance(rhs, torch.Tensor) or not rhs.is_floating_point():
        raise TypeError(f"rhs must be a floating torch.Tensor, got "
                        f"{rhs.dtype if isinstance(rhs, torch.Tensor) else type(rhs).__name__}")
    if rhs.dim() != 1:
        raise ValueError(f"rhs: expected a flat vector, got shape {tuple(rhs.shape)}")
    if not bool(torch.isfinite(rhs).all()):
        raise ValueError("rhs contains NaN or inf (is the validation gradient finite?)")


def conjugate_gradient(matvec: Matvec, rhs: torch.Tensor, *, tol: float = 1e-6, max_iter: Optional[int] = None,
                       preconditioner: Optional[torch.Tensor] = None, raise_on_failure: bool = True) -> SolveResult:
    """x with ||A x - b|| <= tol * ||b||, A symmetric positive definite given by ``matvec``.

    ``preconditioner``: optional positive vector d, the diagonal of A (Jacobi
    preconditioning: the residual is scaled by 1 / d each step), e.g.
    ``LastLayerHessian.diagonal()``; it changes the path, not the solution.
    ``max_iter`` defaults to ``len(rhs)`` (where exact arithmetic would be exact). A
    non-positive curvature p^T A p <= 0 means A is not positive definite (raise the
    damping); with ``raise_on_failure`` this and non-convergence raise.
    """
    _check_rhs(rhs)
    if not callable(matvec):
        raise TypeError(f"matvec must be a callable v -> A v, got {type(matvec).__name__}")
    tol = check_number("tol", tol, min=0.0, min_inclusive=False)
    max_iter = rhs.numel() if max_iter is None else check_int("max_iter", max_iter, min=1)
    raise_on_failure = check_bool("raise_on_failure", raise_on_failure)
    rhs_norm = float(rhs.norm())
    x = torch.zeros_like(rhs)
    if rhs_norm == 0.0:
        return SolveResult(x, 0, 0.0, 0.0, True)
    if preconditioner is not None:
        if not isinstance(preconditioner, torch.Tensor):
            raise TypeError(f"preconditioner must be a tensor or None, got {type(preconditioner).__name__}")
        if preconditioner.shape != rhs.shape or not bool((preconditioner > 0).all()):
            raise ValueError(f"preconditioner must be a positive vector of shape {tuple(rhs.shape)}")
        inverse_diagonal = 1.0 / preconditioner.to(rhs.dtype)
    else:
        inverse_diagonal = None
    r = rhs.clone()
    z = r if inverse_diagonal is None else inverse_diagonal * r
    p = z.clone()
    rz = torch.dot(r, z)
    # Below ~100 ulps the recursive residual drifts from the true one (float32 stalls near 1e-5).
    loop_tol = max(tol, 100 * torch.finfo(rhs.dtype).eps)
    iterations = 0
    while iterations < max_iter and float(r.norm()) > loop_tol * rhs_norm:
        ap = matvec(p)
        curvature = torch.dot(p, ap)
        if not float(curvature) > 0.0:
            raise ValueError(f"conjugate gradients met non-positive curvature p^T H p = {float(curvature):.3g} at "
                             f"step {iterations}: the Hessian is not positive definite; increase `damping`")
        alpha = rz / curvature
        x = x + alpha * p
        r = r - alpha * ap
        z = r if inverse_diagonal is None else inverse_diagonal * r
        rz_next = torch.dot(r, z)
        p = z + (rz_next / rz) * p
        rz = rz_next
        iterations += 1
    residual = float((matvec(x) - rhs).norm())  # the true residual, not the recursively updated one
    converged = residual <= max(tol, 1e3 * torch.finfo(rhs.dtype).eps) * rhs_norm
    if raise_on_failure and not converged:
        raise SolverError(f"conjugate gradients did not converge in {iterations} steps: relative residual "
                           f"{residual / rhs_norm:.3g} > tol {tol:g}; raise max_iter or damping")
    return SolveResult(x, iterations, residual, rhs_norm, converged)


def largest_eigenvalue(matvec: Matvec, dim: int, *, iterations: int = 30, dtype: torch.dtype = torch.float64,
                       device: Optional[torch.device] = None, seed: int = 0) -> float:
    """Power-iteration estimate of the largest eigenvalue of a symmetric PSD operator."""
    dim = check_int("dim", dim, min=1)
    iterations = check_int("iterations", iterations, min=1)
    generator = torch.Generator().manual_seed(check_int("seed", seed, min=0))
    v = torch.randn(dim, generator=generator, dtype=dtype).to(device)
    v = v / v.norm()
    estimate = 0.0
    for _ in range(iterations):
        w = matvec(v)
        estimate = float(torch.dot(v, w))
        norm = w.norm()
        if float(norm) == 0.0:
            return 0.0
        v = w / norm
    return estimate


def lissa(matvec: Matvec, stochastic_matvec: Matvec, rhs: torch.Tensor, *, depth: int = 1000, repeats: int = 1,
          scale: Optional[float] = None, tol: float = 1e-2) -> SolveResult:
    """Stochastic estimate of A^-1 b (LiSSA), A given by ``matvec`` and estimated per step
    by ``stochastic_matvec`` (e.g. ``LastLayerHessian.stochastic_matvec(generator, 256)``).

    ``matvec`` serves only the eigenvalue estimate for ``scale=None`` and the reported
    residual (``converged`` means relative residual <= ``tol``; the estimate is noisy by
    design, so this is reported, not raised). Raises when the recursion diverges
    (``scale`` too small).
    """
    _check_rhs(rhs)
    depth = check_int("depth", depth, min=1)
    repeats = check_int("repeats", repeats, min=1)
    tol = check_number("tol", tol, min=0.0)
    if scale is None:
        scale = 2.0 * largest_eigenvalue(matvec, rhs.numel(), dtype=rhs.dtype, device=rhs.device)
        if not scale > 0.0:
            raise ValueError(f"the Hessian's largest eigenvalue is {scale / 2:g}: pass scale (> 0) or add damping")
    scale = check_number("scale (about the largest Hessian eigenvalue or more)", scale, min=0.0, min_inclusive=False)
    rhs_norm = float(rhs.norm())
    total = torch.zeros_like(rhs)
    for _ in range(repeats):
        x = rhs.clone()
        for step in range(depth):
            x = rhs + x - stochastic_matvec(x) / scale
            if not bool(torch.isfinite(x).all()) or float(x.norm()) > 1e12 * max(rhs_norm, 1e-300):
                raise SolverError(f"LiSSA diverged at step {step} with scale={scale:g}: the mini-batch Hessian "
                                   "has eigenvalues above 2*scale; increase `scale`")
        total = total + x / scale
    solution = total / repeats
    residual = float((matvec(solution) - rhs).norm())
    return SolveResult(solution, depth * repeats, residual, rhs_norm, residual <= tol * rhs_norm)
