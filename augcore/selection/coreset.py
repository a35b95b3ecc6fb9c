"""Coresets for augmentation (Liu & Mirzasoleiman, NeurIPS 2022): per-class
facility-location medoids of the gradient proxies, weighted by what they represent.

Two presets. ``"augcore"`` (default) is this library's choice for users; see
docs/selection.md for why each default differs from the released code.
``"reference"`` reproduces the selection of the paper's released code
(tianyu139/data-efficient-augmentation, ``utils/subset.py`` and ``utils/craig.py``):
B = int(N * fraction), the released per-class budget rules, submodlib's dense
euclidean kernel exp(-d / p) computed as submodlib computes it, submodlib's LazyGreedy
(its tie rule included), counts with zeros set to 1, normalised over the selection.
"""
from __future__ import annotations

import time
from typing import List, Optional

import torch

from augcore.checks import check_bool, check_choice, check_fraction
from augcore.ops import facility_location, normalize_weights
from augcore.ops.budgets import REFERENCE_SPLITS, SPLITS, split_budget
from augcore.ops.facility_location import METHODS, SIMILARITIES, _facility_location_unchecked
from augcore.ops.proxies import _grad_proxies_unchecked
from augcore.ops.submodlib_kernel import submodlib_dense_kernel
from augcore.process_group import rank_and_world
from augcore.seeds import cpu_generator, derive_seed
from augcore.selection._common import budget_from_fraction, require_nonempty_classes
from augcore.selection.base import InferenceStats, Selection
from augcore.selection.greedi import greedi_per_class
from augcore.selection.selector import SELECTORS, BaseSelector, Picks

PROXIES = ("logits", "last_layer")
WEIGHTINGS = ("normalized", "raw", "unit")
PRESETS = ("augcore", "reference")
# what each preset uses for the options left unset (None)
_AUGCORE_DEFAULTS = {"similarity": "exp", "method": "stochastic", "eps": 0.01, "budget_split": "proportional",
                     "weights": "normalized", "keep_zero_weight": True}
_REFERENCE_SETTINGS = {"proxy": "logits", "similarity": "exp", "method": "lazy", "weights": "normalized",
                       "keep_zero_weight": True}


@SELECTORS.register("coreset")
class CoresetSelector(BaseSelector):
    """Facility-location coreset of about ``fraction * N`` examples, per class.

    Args:
      fraction: budget as a fraction of the training set, in (0, 1].
      preset: "augcore" (default) or "reference" (the released code's selection,
        exactly; see the module docstring and docs/selection.md). The reference preset
        fixes every option below except ``budget_split``, which is "reference_equal"
        (the released default, ``equal_num``) or "reference_proportional" (the
        released ``--no_equal_num``); setting a fixed option to another value raises.
      proxy: "logits" (default, the released code's default): points are the proxies
        e_i = softmax(z_i) - onehot(y_i); "last_layer": distances between the exact
        last-layer gradients e_i (x) [h_i, 1] (the released ``--use_linear`` is
        ``bias=0``), computed in factored form; needs ``stats.embeddings``.
      bias: 1 (weights and bias of the last layer) or 0 (weights only); used with
        ``proxy="last_layer"``.
      similarity: "exp" (default; submodlib's dense euclidean kernel exp(-d / p), p the
        proxy's dimension, which the released code uses), "craig" (d_max - d, the
        paper's C - d form) or "craig_squared" (d2_max - d^2, apricot's euclidean; CPU
        tensors only).
      method: greedy variant, "stochastic" (default: (1 - 1/e - eps) in expectation at
        a fraction of the cost), "lazy" or "naive" (both exact greedy). The released
        code runs submodlib's LazyGreedy (``preset="reference"``).
      eps: stochastic greedy's accuracy parameter (default 0.01).
      budget_split: "proportional" (default, exact total), "equal" (same per class,
        exact total) or "equal_ceil" (ceil(B/C) per class capped at the class size,
        total can exceed B); with the reference preset, "reference_equal" or
        "reference_proportional" (see ``augcore.ops.budgets``).
      weights: "normalized" (default, as the released code: zero counts set to 1, then
        ``gamma / sum(gamma) * |S|`` over the whole selection), "raw" (gamma) or "unit".
        The released code trains the augmented copies appended to the full data
        with unit weight; the trainer decides which weights it uses.
      keep_zero_weight: keep medoids that represent no point (possible only with
        duplicate points; default True, as the released code); ``False`` drops them
        before the weights are normalised.
      greedi: solve each class with GreeDi (``augcore.selection.greedi``: two-round
        distributed greedy over the ranks of the default process group, each rank
        holding a share of each class) instead of one greedy per class, for classes too
        large for one machine's memory. Every rank calls ``select`` with the same stats
        (a collective call, see ``collective``); one process runs it with m = 1.
        Supports the augcore preset with ``proxy="logits"`` and ``similarity="exp"``
        (GreeDi's objective); weights are the GreeDi medoid counts, turned into
        training weights as ``weights`` says.

    Budget: the augcore preset takes round(fraction * N), halves up (monotone in N);
    the reference preset takes int(fraction * N), as the released ``main.py``.
    The seed passed to the stochastic greedy is derived from (seed, epoch), so each
    re-selection draws fresh samples, reproducibly; the reference preset's only
    random draw (``reference_proportional``'s decrements) comes from the same seeds.
    """

    def __init__(self, fraction: float, *, preset: str = "augcore", proxy: str = "logits", bias: int = 1,
                 similarity: Optional[str] = None, method: Optional[str] = None, eps: Optional[float] = None,
                 budget_split: Optional[str] = None, weights: Optional[str] = None,
                 keep_zero_weight: Optional[bool] = None, greedi: bool = False):
        self.fraction = check_fraction("fraction", fraction)
        self.preset = check_choice("preset", preset, PRESETS)
        given = {"proxy": proxy, "similarity": similarity, "method": method, "weights": weights,
                 "keep_zero_weight": keep_zero_weight}
        if preset == "reference":
            for name, fixed in _REFERENCE_SETTINGS.items():
                if given[name] is not None and given[name] != fixed:
                    raise ValueError(f"{name}={given[name]!r} conflicts with preset='reference', which runs the "
                                     f"released selection ({name}={fixed!r}); leave {name} unset or use "
                                     "preset='augcore'")
            if eps is not None:
                raise ValueError("eps is stochastic greedy's parameter; preset='reference' runs submodlib's "
                                 "LazyGreedy (no eps): leave eps unset or use preset='augcore'")
            budget_split = "reference_equal" if budget_split is None else budget_split
            allowed_splits = REFERENCE_SPLITS
            settings = dict(_REFERENCE_SETTINGS, eps=_AUGCORE_DEFAULTS["eps"])
        else:
            settings = {k: (v if v is not None else _AUGCORE_DEFAULTS[k]) for k, v in given.items() if k != "proxy"}
            settings["proxy"] = proxy
            settings["eps"] = _AUGCORE_DEFAULTS["eps"] if eps is None else eps
            budget_split = _AUGCORE_DEFAULTS["budget_split"] if budget_split is None else budget_split
            allowed_splits = SPLITS
        for name, value, allowed in (("proxy", settings["proxy"], PROXIES),
                                     ("similarity", settings["similarity"], tuple(SIMILARITIES)),
                                     ("method", settings["method"], tuple(METHODS)),
                                     ("budget_split", budget_split, allowed_splits),
                                     ("weights", settings["weights"], WEIGHTINGS)):
            if value not in allowed:
                hint = " (the released rules need preset='reference')" if value in REFERENCE_SPLITS else ""
                raise ValueError(f"{name} must be one of {allowed} with preset={preset!r}, got {value!r}{hint}")
        if bias not in (0, 1):
            raise ValueError(f"bias must be 0 (weights only) or 1 (weights and bias), got {bias!r}")
        if not (0.0 < float(settings["eps"]) < 1.0):
            raise ValueError(f"eps must lie in (0, 1), got {settings['eps']}")
        self.proxy, self.bias, self.similarity = settings["proxy"], int(bias), settings["similarity"]
        self.greedy, self.eps, self.budget_split = settings["method"], float(settings["eps"]), budget_split
        self.weights, self.keep_zero_weight = settings["weights"], bool(settings["keep_zero_weight"])
        self.greedi = check_bool("greedi", greedi)
        if self.greedi and self.preset == "reference":
            raise ValueError("greedi: preset='reference' runs the released single-machine selection; GreeDi is not "
                             "that algorithm (use preset='augcore')")
        if self.greedi and (self.proxy != "logits" or self.similarity != "exp"):
            raise ValueError("greedi supports proxy='logits' with similarity='exp' only, got "
                             f"proxy={self.proxy!r}, similarity={self.similarity!r}")

    @property
    def collective(self) -> bool:
        """Whether ``select`` is a collective call over the default process group (GreeDi): every
        rank calls it with the same stats and gets the same Selection."""
        return self.greedi

    @property
    def needs_embeddings(self) -> bool:
        return self.proxy == "last_layer"

    def select(self, stats: InferenceStats, epoch: int = 0, seed: int = 0,
               classes: Optional[torch.Tensor] = None) -> Selection:
        """The coreset of ``stats``. ``classes`` (class ids) restricts the solve to those classes,
        with the budgets of the whole problem: the pieces of disjoint class sets, merged
        (``augcore.distributed.merge_class_selections``), equal the full selection; DDP
        shards a selection this way."""
        return self._select(stats, epoch, seed, classes=classes)

    def pick(self, stats: InferenceStats, *, epoch: int, seed: int,
             classes: Optional[torch.Tensor] = None) -> Picks:
        if self.preset == "reference":
            return self._pick_reference(stats, epoch, seed, classes)
        if self.greedi:
            if classes is not None:
                raise ValueError("classes: a GreeDi selection shares every class over the ranks; it cannot be "
                                 "restricted to some classes")
            return self._pick_greedi(stats, epoch, seed)
        t0 = time.perf_counter()
        sizes = require_nonempty_classes(stats, "CoresetSelector")
        budget = budget_from_fraction(self.fraction, len(stats))
        budgets = split_budget(sizes, budget, self.budget_split)
        budgets = budgets if classes is None else _only(budgets, classes)
        # ``select`` validated the stats and split_budget the budgets: the ops' own checks would repeat them
        proxies = _grad_proxies_unchecked(stats.logits, stats.labels).errors
        t1 = time.perf_counter()
        result = _facility_location_unchecked(
            proxies, budgets, stats.labels, num_groups=stats.num_classes,
            embeddings=stats.embeddings if self.proxy == "last_layer" else None, bias=self.bias,
            similarity=self.similarity, method=self.greedy, eps=self.eps, seed=derive_seed(seed, epoch, self.method))
        t2 = time.perf_counter()

        rows, gamma = result.indices, result.weights
        dropped = 0
        if not self.keep_zero_weight:
            keep = gamma > 0
            dropped = int((~keep).sum())
            rows, gamma = rows[keep], gamma[keep]
        return Picks(
            rows.to(stats.indices.device), weights=normalize_weights(gamma, self.weights),
            assignment=result.assignment,
            timings={"proxies": t1 - t0, "facility_location": t2 - t1,
                     **{f"fl_{k}": v for k, v in result.timings.items()}},
            info={"requested_fraction": self.fraction, "budget": budget,
                  "requested_budgets": result.budgets.tolist(), "dropped_zero_weight": dropped,
                  "gamma": gamma.cpu(), "objective": result.objective.cpu().tolist(),
                  "proxy": self.proxy, "similarity": self.similarity, "greedy": self.greedy,
                  "budget_split": self.budget_split, "preset": self.preset})

    def _pick_greedi(self, stats: InferenceStats, epoch: int, seed: int) -> Picks:
        sizes = require_nonempty_classes(stats, "CoresetSelector(greedi)")
        budget = budget_from_fraction(self.fraction, len(stats))
        budgets = split_budget(sizes, budget, self.budget_split)
        proxies = _grad_proxies_unchecked(stats.logits, stats.labels).errors.cpu()
        rows, gamma = greedi_per_class(proxies, stats.labels.cpu().to(torch.int64), budgets, method=self.greedy,
                                       eps=self.eps, seed=derive_seed(seed, epoch, "greedi"))
        return Picks(rows, weights=normalize_weights(gamma, self.weights),
                     info={"greedi_ranks": rank_and_world()[1], "requested_fraction": self.fraction,
                           "budget": budget})

    def _pick_reference(self, stats: InferenceStats, epoch: int, seed: int,
                        classes: Optional[torch.Tensor]) -> Picks:
        """The released ``get_coreset``: per class, submodlib's dense kernel and LazyGreedy."""
        t0 = time.perf_counter()
        sizes = require_nonempty_classes(stats, "CoresetSelector")
        n, c = len(stats), stats.num_classes
        budget = int(n * self.fraction)  # main.py: B = int(N * subset_size)
        budgets = split_budget(sizes, budget, self.budget_split,
                               generator=cpu_generator(seed, epoch, "coreset_reference"))
        # submodlib refuses a budget >= the class size, and craig.py's per-class loop fails on a
        # budget of 0; the released run then crashes or falls back to a random subset. Here such
        # a class gives all of its examples or none (the budgets are already capped).
        failing = [g for g in range(c) if budgets[g] == 0 or budgets[g] >= sizes[g]]
        labels = stats.labels.to(torch.int64).cpu()
        # grad_predictions: softmax in float32, minus the one-hot label
        proxies = (torch.softmax(stats.logits.float(), dim=1).cpu()
                   - torch.nn.functional.one_hot(labels, c).to(torch.float32))
        t1 = time.perf_counter()
        rows: List[torch.Tensor] = []
        gammas: List[torch.Tensor] = []
        objective: List[float] = []
        assignment = torch.full((n,), -1, dtype=torch.int64)
        kernel_time = greedy_time = 0.0
        solve = budgets if classes is None else _only(budgets, classes)
        for g in range(c):
            members = (labels == g).nonzero().flatten()
            k = int(solve[g])
            if k == 0:
                objective.append(0.0)
                continue
            tk = time.perf_counter()
            sim = submodlib_dense_kernel(proxies[members])
            tg = time.perf_counter()
            result = facility_location(None, [k], similarity=sim, method="lazy", tie_break="high")
            kernel_time, greedy_time = kernel_time + tg - tk, greedy_time + time.perf_counter() - tg
            rows.append(members[result.indices])
            gammas.append(result.weights)
            medoid = result.assignment
            assignment[members] = torch.where(medoid >= 0, members[medoid.clamp_min(0)], medoid)
            objective.append(float(result.objective[0]))
        rows_all = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.int64)
        gamma = torch.cat(gammas) if gammas else torch.zeros(0, dtype=torch.int64)
        return Picks(
            rows_all.to(stats.indices.device), weights=normalize_weights(gamma, "normalized"),
            budgets=budgets.clone(), assignment=assignment,
            timings={"proxies": t1 - t0, "similarity": kernel_time, "greedy": greedy_time},
            info={"requested_fraction": self.fraction,
                  "budget": budget, "requested_budgets": budgets.tolist(), "dropped_zero_weight": 0,
                  "gamma": gamma.cpu(), "objective": objective, "proxy": "logits", "similarity": "exp",
                  "greedy": "lazy", "budget_split": self.budget_split, "preset": "reference",
                  "released_code_fails_on_classes": failing})


def _only(budgets: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Per-class budgets with every class outside ``classes`` set to 0."""
    keep = torch.zeros(budgets.numel(), dtype=torch.bool)
    keep[torch.as_tensor(classes, dtype=torch.int64).reshape(-1)] = True
    return torch.where(keep, budgets, torch.zeros_like(budgets))
