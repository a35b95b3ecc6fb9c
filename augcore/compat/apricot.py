"""apricot's ``FacilityLocationSelection`` on augcore's kernel.

Swap ``from apricot import FacilityLocationSelection`` for
``from augcore.compat.apricot import FacilityLocationSelection``; the calls stay::

    selector = FacilityLocationSelection(100, metric="euclidean", optimizer="lazy").fit(X)
    selector.ranking, selector.gains        # picks in order, gain of each
    X_subset = selector.transform(X)        # or fit_transform(X)

Conventions kept from apricot 0.6 (``apricot/utils.py``, ``_calculate_pairwise_distances``):

* ``metric="euclidean"``: squared euclidean distances D (sklearn's
  ``squared=True``), similarity ``D.max() - D``, computed inside the kernel
  (``similarity="craig_squared"``: no n x n matrix is built in Python). Each D is
  summed in float64 and rounded once to float32: for float32 ``X``, what
  sklearn's float64 computation returns, up to sklearn's own float64 rounding (its
  Gram form); float64 ``X`` is rounded to float32 first. "cosine" and "correlation" ("corr"): the squared cosine / correlation;
  "precomputed": ``X`` is the similarity matrix, row j holding candidate j's
  similarity to every point; any other sklearn distance metric: ``D.max() - D``
  of sklearn's distances. Similarities are float32 (the kernel's type): where two
  candidates' gains differ by less than float32 rounding (float64 ``X``, or the
  cosine family, computed here in float32), the pick can differ from apricot's.
* F(S) = sum_i max_{j in S} s_ij with a running maximum starting at 0; gains are
  ``float64``. Similarities must be non-negative (apricot's check).
* Ties follow apricot's rules (``tie_break="apricot"``): "naive" takes the
  smallest index among equal gains (apricot's stable lexsort over its sorted
  remaining indices); "lazy" (the default) is apricot's LazyGreedy queue step for
  step: equal bounds pop in insertion order and the first element evaluated with
  the step's largest gain is picked. Exact ties are common: two points that only
  cover each other have equal gains. Differences: when gains reach zero, apricot's
  lazy queue keeps the element it picks and can pick it again, while here no pick
  repeats; "two-stage" (apricot: 10 naive steps, then a fresh lazy queue) runs as
  "lazy" from the first step, so where an exact tie falls in those first steps or
  the rebuilt queue orders one differently, its picks are equally good but may
  differ. Only its default ``optimizer_kwds`` are accepted.
* "stochastic" runs augcore's stochastic greedy with apricot's ``epsilon``
  (``optimizer_kwds={"epsilon": ...}``, default 0.9; sample ceil(n/k ln(1/eps))
  against apricot's floor) and ``random_state`` as the seed (None means 0): the
  same guarantee, augcore's random stream, so picks differ from apricot's.

Initial subsets, sparse or nearest-neighbour similarity graphs, knapsack costs,
streaming (``partial_fit``) and the other optimizers are not implemented: passing
them raises a ``ValueError`` naming the argument. ``n_jobs`` is accepted and
ignored (as in apricot); ``verbose`` prints nothing. After ``fit``,
``last_result`` holds augcore's ``FacilityLocationResult``.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Optional

import numpy as np
import torch

from augcore.checks import check_finite, check_int, check_number
from augcore.compat._common import as_matrix, check_bool, refuse, solve
from augcore.ops import FacilityLocationResult

__all__ = ["FacilityLocationSelection", "OPTIMIZERS"]

# apricot optimizer -> augcore method ("two-stage" runs as "lazy", see above)
OPTIMIZERS = {"naive": "naive", "lazy": "lazy", "two-stage": "lazy", "stochastic": "stochastic"}
_APRICOT_ONLY = ("random", "modular", "approximate-lazy", "sample", "greedi", "bidirectional", "sieve")
_OPTIMIZER_KWDS = {"naive": (), "lazy": (), "two-stage": ("n_first_selections", "optimizer1", "optimizer2"),
                   "stochastic": ("epsilon",)}
_TWO_STAGE_DEFAULTS = {"n_first_selections": 10, "optimizer1": "naive", "optimizer2": "lazy"}
_LIB = "apricot"


class FacilityLocationSelection:
    """Facility-location selection with apricot's constructor; see the module docstring."""

    def __init__(self, n_samples: int, metric: str = "euclidean", initial_subset: Any = None,
                 optimizer: str = "lazy", optimizer_kwds: Optional[dict] = None, n_neighbors: Any = None,
                 reservoir: Any = None, max_reservoir_size: int = 1000, n_jobs: int = 1, random_state: Any = None,
                 verbose: bool = False):
        if isinstance(n_samples, (int, np.integer)) and not isinstance(n_samples, bool) and n_samples <= 0:
            raise ValueError(f"n_samples must be a positive value, got {n_samples}")
        self.n_samples = check_int("n_samples", n_samples, min=1)
        if not isinstance(metric, str):
            raise TypeError(f"augcore.compat.{_LIB}: metric must be a string (an sklearn metric name or "
                            f"'precomputed'), got {type(metric).__name__}")
        self.metric = metric.replace("corr", "correlation") if metric != "correlation" else metric
        refuse(_LIB, "initial_subset", initial_subset, None, "the greedy starts from the empty set")
        if not isinstance(optimizer, str):
            raise ValueError(f"augcore.compat.{_LIB}: optimizer must be one of {tuple(OPTIMIZERS)} by name; "
                             f"optimizer objects are not supported, got {type(optimizer).__name__}")
        if optimizer in _APRICOT_ONLY:
            raise ValueError(f"augcore.compat.{_LIB}: optimizer={optimizer!r} is not implemented; use one of "
                             f"{tuple(OPTIMIZERS)}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, got {optimizer!r}")
        kwds = dict(optimizer_kwds or {})
        unknown = sorted(set(kwds) - set(_OPTIMIZER_KWDS[optimizer]))
        if unknown:
            raise ValueError(f"augcore.compat.{_LIB}: optimizer_kwds {unknown} not supported for optimizer="
                             f"{optimizer!r}; allowed: {list(_OPTIMIZER_KWDS[optimizer])}")
        if optimizer == "two-stage":
            for name, value in kwds.items():
                refuse(_LIB, f"optimizer_kwds[{name!r}]", value, _TWO_STAGE_DEFAULTS[name],
                       "two-stage runs as lazy")
        self.epsilon = 0.9
        if optimizer == "stochastic" and "epsilon" in kwds:
            self.epsilon = check_number("optimizer_kwds['epsilon']", kwds["epsilon"], min=0.0, max=1.0,
                                        min_inclusive=False, max_inclusive=False)
        refuse(_LIB, "n_neighbors", n_neighbors, None, "sparse similarity graphs are not implemented")
        refuse(_LIB, "reservoir", reservoir, None, "partial_fit (streaming) is not implemented")
        refuse(_LIB, "max_reservoir_size", max_reservoir_size, 1000, "partial_fit (streaming) is not implemented")
        self.optimizer = optimizer
        self.optimizer_kwds = kwds
        self.n_jobs = n_jobs
        self.seed = _seed_from(random_state)
        self.random_state = random_state
        self.verbose = check_bool(_LIB, "verbose", verbose)
        self.ranking: Optional[np.ndarray] = None
        self.gains: Optional[np.ndarray] = None
        self.subset: Optional[np.ndarray] = None
        self.last_result: Optional[FacilityLocationResult] = None

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, sample_cost: Any = None):
        """Selects ``n_samples`` examples; returns ``self`` (``ranking``, ``gains`` set)."""
        refuse(_LIB, "sample_cost", sample_cost, None, "knapsack costs are not implemented")
        x = as_matrix(_LIB, "X", X, dtype=torch.float64)
        n = x.shape[0]
        if self.metric == "precomputed" and x.shape[0] != x.shape[1]:
            raise ValueError(f"Precomputed similarity matrices must be square and symmetric, got shape "
                             f"{tuple(x.shape)}")
        if self.n_samples > n:
            raise ValueError(f"Cannot select more examples than the number in the data set: n_samples="
                             f"{self.n_samples} > {n}")
        method = OPTIMIZERS[self.optimizer]
        if self.metric == "euclidean":
            points = x.to(torch.float32)
            check_finite(points, f"augcore.compat.{_LIB}: X rounded to float32 (the kernel's type)")
            result = solve(self.n_samples, method=method, tie_break="apricot", points=points,
                           kind="craig_squared", eps=self.epsilon, seed=self.seed)
        else:
            result = solve(self.n_samples, method=method, tie_break="apricot", similarity=self._similarity(x),
                           eps=self.epsilon, seed=self.seed)
        self.last_result = result
        self.ranking = result.indices.numpy().astype(np.int64)
        self.gains = result.gains.numpy().astype(np.float64)
        if self.metric != "precomputed":
            self.subset = np.asarray(X, dtype=np.float64)[self.ranking]
        return self

    def transform(self, X: Any, y: Any = None, sample_weight: Any = None):
        """The selected rows of ``X`` (and of ``y`` / ``sample_weight`` when given), in ranking order."""
        if self.ranking is None:
            raise RuntimeError("call fit before transform")
        r = self.ranking
        if sample_weight is not None:
            return X[r], (None if y is None else y[r]), sample_weight[r]
        return X[r] if y is None else (X[r], y[r])

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None, sample_cost: Any = None):
        return self.fit(X, y=y, sample_weight=sample_weight, sample_cost=sample_cost).transform(
            X, y=y, sample_weight=sample_weight)

    def _similarity(self, x: torch.Tensor) -> torch.Tensor:
        """apricot's pairwise similarities (every metric but "euclidean", which the kernel
        computes) in float32, laid out [point, candidate] for the kernel (a transposed
        view: no copy either way)."""
        if self.metric == "precomputed":
            sim = x.to(torch.float32)  # row j: candidate j's similarities, as apricot reads it
        elif self.metric in ("cosine", "correlation"):
            if self.metric == "correlation":
                x = x - x.mean(1, keepdim=True)
            norms = x.norm(dim=1)
            unit = (x / torch.where(norms > 0, norms, torch.ones_like(norms))[:, None]).to(torch.float32)
            sim = (unit @ unit.T).clamp_(-1.0, 1.0).square_()
            if self.metric == "cosine":  # sklearn's cosine_distances zeroes the diagonal distance
                sim.fill_diagonal_(1.0)
            return sim.T
        else:
            from sklearn.metrics import pairwise_distances
            try:
                dist = torch.from_numpy(pairwise_distances(x.numpy(), metric=self.metric))
            except ValueError as exc:
                raise ValueError(f"augcore.compat.{_LIB}: metric={self.metric!r}: {exc}") from exc
            sim = (dist.max() - dist).to(torch.float32)
        if sim.numel() and float(sim.min()) < 0.0:
            raise ValueError("X cannot contain negative values (facility location needs non-negative "
                             f"similarities); the smallest is {float(sim.min())}")
        return sim.T

    def __repr__(self) -> str:
        return (f"FacilityLocationSelection(n_samples={self.n_samples}, metric={self.metric!r}, "
                f"optimizer={self.optimizer!r}) [augcore]")


def _seed_from(random_state: Any) -> int:
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2 ** 31 - 1))
    return check_int("random_state", random_state, min=0)


# ``apricot.functions.facilityLocation.FacilityLocationSelection`` is how some callers
# (CORDS) spell it; ``from augcore.compat import apricot`` keeps that spelling working.
functions = SimpleNamespace(facilityLocation=SimpleNamespace(FacilityLocationSelection=FacilityLocationSelection))
