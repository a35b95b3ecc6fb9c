"""submodlib's ``FacilityLocationFunction`` (dense mode) on augcore's kernel.

Swap ``from submodlib import FacilityLocationFunction`` (or
``from submodlib.functions.facilityLocation import FacilityLocationFunction``) for
``from augcore.compat.submodlib import FacilityLocationFunction``; the calls stay::

    obj = FacilityLocationFunction(n=len(X), data=X, metric="euclidean", mode="dense")
    greedy_list = obj.maximize(budget=k, optimizer="LazyGreedy")   # [(index, gain), ...]
    S = obj.sijs                                                   # the dense kernel, as submodlib's

Conventions kept from submodlib 0.0.3 (decile-team/submodlib, ``cpp/utils/helper.cpp``):

* ``metric="euclidean"``: s_ij = exp(-||x_i - x_j|| / D), D the number of
  features; ``"cosine"``: ``x_i.x_j / (|x_i| |x_j|)``, 0 when either norm is 0, and 1
  on the diagonal; ``"dot"``: x_i.x_j. The default metric is "cosine", as there.
* ``sijs``: entry [i, j] is the similarity of represented point i to candidate j
  (rows are points, columns candidates), stored as float32 as submodlib does.
* F(S) = sum_i max(0, max_{j in S} s_ij): negative similarities never count
  (submodlib's running maxima start at 0), so the kernel runs on max(s, 0).
* Ties: "NaiveGreedy" takes the largest index among equal gains (submodlib scans
  its ground set from the last index down and keeps the first best); "LazyGreedy"
  replays submodlib's max-heap (larger index first among equal bounds; a
  re-evaluated candidate wins when its gain is >= the next bound).
* "StochasticGreedy" and "LazierThanLazyGreedy" run augcore's stochastic greedy:
  same (1 - 1/e - epsilon) guarantee and sample size up to rounding
  (ceil(n/k ln(1/epsilon)) against submodlib's floor), but augcore's random
  stream, so their picks differ from submodlib's (which seeds C's ``rand`` with 1).
* ``budget`` must be smaller than ``n``. ``stopIfZeroGain`` stops before the
  first gain below 1 in absolute value: what submodlib 0.0.3 does (its
  ``equals(gain, 0, 1e-5)`` calls ``abs`` on a double and gets C's integer
  ``abs``, so every gain in (-1, 1) counts as zero); scale the kernel, or
  truncate the returned list yourself, for a true zero test.
  ``stopIfNegativeGain`` never triggers (no gain is negative once similarities
  are clipped at 0, in submodlib too).

Sparse and clustered modes, a separate represented set and costs are not
implemented: passing them raises a ``ValueError`` naming the argument.
``verbose`` and ``show_progress`` are accepted and print nothing.
After ``maximize``, ``last_result`` holds augcore's ``FacilityLocationResult``
(weights gamma and each point's medoid, which submodlib users recompute from
``sijs``).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, List, Optional, Tuple

import numpy as np
import torch

from augcore.checks import check_choice, check_int, check_number
from augcore.compat._common import as_matrix, check_bool, refuse, solve
from augcore.ops import FacilityLocationResult
from augcore.ops.submodlib_kernel import submodlib_dense_kernel

__all__ = ["FacilityLocationFunction", "OPTIMIZERS", "METRICS"]

METRICS = ("euclidean", "cosine", "dot")
# submodlib optimizer -> (augcore method, tie rule)
OPTIMIZERS = {"NaiveGreedy": ("naive", "high"), "LazyGreedy": ("lazy", "high"),
              "StochasticGreedy": ("stochastic", "high"), "LazierThanLazyGreedy": ("stochastic", "high")}
_MODES = ("dense", "sparse", "clustered")
_PYBIND_MODES = ("list", "numpyarray", "array32", "array64", "array")
_ZERO_GAIN = 1.0  # submodlib's equals(best, 0, 1e-5) truncates |best| to an int: "zero" is |gain| < 1
_LIB = "submodlib"


class FacilityLocationFunction:
    """Dense facility location with submodlib's constructor; see the module docstring."""

    def __init__(self, n: int, mode: str, separate_rep: Optional[bool] = None, n_rep: Optional[int] = None,
                 sijs: Any = None, data: Any = None, data_rep: Any = None, num_clusters: Optional[int] = None,
                 cluster_labels: Any = None, metric: str = "cosine", num_neighbors: Optional[int] = None,
                 create_dense_cpp_kernel_in_python: bool = True, pybind_mode: str = "array"):
        self.n = check_int("n", n, min=1)
        check_choice("mode", mode, _MODES)
        if mode != "dense":
            raise ValueError(f"augcore.compat.{_LIB}: mode={mode!r} is not supported (dense facility location "
                             "only); use mode='dense'")
        if separate_rep is not None and check_bool(_LIB, "separate_rep", separate_rep):
            raise ValueError(f"augcore.compat.{_LIB}: separate_rep=True is not supported (the represented set "
                             "must be the ground set); use separate_rep=False")
        why = "no separate represented set"
        refuse(_LIB, "n_rep", n_rep, None, why)
        refuse(_LIB, "data_rep", data_rep, None, why)
        refuse(_LIB, "num_clusters", num_clusters, None, "clustered mode is not implemented")
        refuse(_LIB, "cluster_labels", cluster_labels, None, "clustered mode is not implemented")
        refuse(_LIB, "num_neighbors", num_neighbors, None, "sparse kernels are not implemented")
        check_bool(_LIB, "create_dense_cpp_kernel_in_python", create_dense_cpp_kernel_in_python)
        check_choice("pybind_mode", pybind_mode, _PYBIND_MODES)  # how submodlib copies to C++; same numbers
        self.mode = mode
        self.separate_rep = False
        self.metric = metric
        self.last_result: Optional[FacilityLocationResult] = None
        self._points: Optional[torch.Tensor] = None
        self._kernel: Optional[torch.Tensor] = None  # float32 [point, candidate] view, clipped at 0
        self._sijs: Optional[np.ndarray] = None
        if sijs is not None:
            kernel = as_matrix(_LIB, "sijs", sijs, rows=self.n)
            if kernel.shape[1] != self.n:
                raise ValueError(f"augcore.compat.{_LIB}: sijs must be n x n = {self.n} x {self.n}, "
                                 f"got {tuple(kernel.shape)}")
            self._sijs = kernel.numpy()
            # stored candidate-major, the kernel's layout, and handed over as a transposed view (no copy)
            self._kernel = kernel.T.contiguous().clamp_min_(0.0).T
        elif data is not None:
            check_choice("metric", metric, METRICS)
            points = as_matrix(_LIB, "data", data, rows=self.n)
            if metric == "euclidean":
                self._points = points  # the kernel computes exp(-d / D) itself, float32 as submodlib
            else:
                self._sijs = _similarities(points, metric).numpy()
                self._kernel = torch.from_numpy(self._sijs).clamp_min(0.0).T  # symmetric: the view is free
        else:
            raise ValueError(f"augcore.compat.{_LIB}: pass data (an n x d array, with metric) or sijs "
                             "(an n x n similarity kernel)")

    @property
    def sijs(self) -> np.ndarray:
        """The dense n x n float32 similarity kernel, as submodlib's ``obj.sijs``."""
        if self._sijs is None:
            self._sijs = _similarities(self._points, "euclidean").numpy()
        return self._sijs

    def maximize(self, budget: int, optimizer: str = "NaiveGreedy", stopIfZeroGain: bool = False,
                 stopIfNegativeGain: bool = False, epsilon: float = 0.1, verbose: bool = False,
                 show_progress: bool = True, costs: Any = None,
                 costSensitiveGreedy: bool = False) -> List[Tuple[int, float]]:
        """Greedy maximisation under a cardinality budget: ``[(index, gain), ...]`` in pick order."""
        budget = check_int("budget", budget, min=0)
        if budget >= self.n:
            raise ValueError(f"budget must be less than the ground set size n={self.n} (submodlib's rule), "
                             f"got {budget}")
        check_choice("optimizer", optimizer, tuple(OPTIMIZERS))
        stop_zero = check_bool(_LIB, "stopIfZeroGain", stopIfZeroGain)
        check_bool(_LIB, "stopIfNegativeGain", stopIfNegativeGain)
        check_bool(_LIB, "verbose", verbose)
        check_bool(_LIB, "show_progress", show_progress)
        refuse(_LIB, "costs", costs, None, "knapsack costs are not implemented")
        if check_bool(_LIB, "costSensitiveGreedy", costSensitiveGreedy):
            raise ValueError(f"augcore.compat.{_LIB}: costSensitiveGreedy=True is not supported (no costs); "
                             "use costSensitiveGreedy=False")
        method, tie_break = OPTIMIZERS[optimizer]
        eps = 0.01
        if method == "stochastic":
            eps = check_number("epsilon", epsilon, min=0.0, max=1.0, min_inclusive=False, max_inclusive=False)
        if budget == 0:
            return []
        if self._kernel is not None:
            result = solve(budget, method=method, tie_break=tie_break, similarity=self._kernel, eps=eps)
        else:
            result = solve(budget, method=method, tie_break=tie_break, points=self._points,
                           scale=float(self._points.shape[1]), eps=eps)
        self.last_result = result
        picks = [(int(i), float(g)) for i, g in zip(result.indices.tolist(), result.gains.tolist())]
        if stop_zero:
            for step, (_, gain) in enumerate(picks):
                if abs(gain) < _ZERO_GAIN:
                    return picks[:step]
        return picks

    def __repr__(self) -> str:
        return f"FacilityLocationFunction(n={self.n}, mode='dense', metric={self.metric!r}) [augcore]"


def _similarities(points: torch.Tensor, metric: str) -> torch.Tensor:
    """submodlib's dense kernel (``create_square_kernel_dense``) in float32."""
    if metric == "euclidean":
        return submodlib_dense_kernel(points)
    x = points.to(torch.float32)
    gram = x @ x.T
    if metric == "dot":
        return gram
    norms = x.norm(dim=1)
    denom = norms[:, None] * norms[None, :]
    sim = torch.where(denom > 0, gram / torch.where(denom > 0, denom, torch.ones_like(denom)),
                      torch.zeros_like(gram))
    sim.fill_diagonal_(1.0)
    return sim


# ``submodlib.functions.facilityLocation.FacilityLocationFunction`` is how the coreset
# paper's released code spells it; ``from augcore.compat import submodlib`` keeps it working.
functions = SimpleNamespace(facilityLocation=SimpleNamespace(FacilityLocationFunction=FacilityLocationFunction))
