"""`InfluenceSelector`: augment the examples whose augmentation is predicted to lower the
validation loss most, by influence functions on the last layer (no retraining).

Per selection step: one solve for s_val = H^-1 grad L_val (H: the damped last-layer
Hessian of the mean training loss at the stats' logits), then one factored dot product
per example (and per candidate variant). Scores, in units of validation loss per unit
up-weight (divide by N for the effect of one example):

* no variants: I_up,loss(z_i), the influence of adding weight to z_i: an augmented copy
  whose last-layer gradient is close to z_i's acts like up-weighting z_i;
* with V candidate variants per example (stats of the augmented samples, rows matched by
  dataset index), ``objective="replace"`` (default, the paper's I_aug) scores
  I_up,loss(z~_iv) - I_up,loss(z_i); ``objective="append"`` scores I_up,loss(z~_iv), the
  influence of adding z~ next to z (how augcore's datasets use augmented copies). Each
  example keeps its best (lowest) variant.

The lowest scores are selected (globally, or per class with ``split``); weights are 1.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence, Union

import torch

from augcore.checks import as_python_number, check_bool, check_choice, check_int, check_number
from augcore.influence.hessian import LOSSES
from augcore.influence.scores import REDUCTIONS, SOLVERS, LastLayerInfluence
from augcore.ops.budgets import SPLITS, split_budget
from augcore.selection import SELECTORS, BaseSelector, InferenceStats, Picks, Selection, validate_stats

OBJECTIVES = ("replace", "append")


def _check_budget(budget: Union[int, float]) -> Union[int, float]:
    """An integer count >= 0 or a float fraction in [0, 1], of any number kind (numpy, 0-d tensors)."""
    budget = as_python_number("budget (an integer count or a float fraction)", budget)
    if isinstance(budget, int):
        return check_int("budget", budget, min=0)
    return check_number("budget (a fraction of the examples)", budget, min=0.0, max=1.0)


def _resolve_budget(budget: Union[int, float], n: int) -> int:
    budget = _check_budget(budget)
    if isinstance(budget, float):
        return int(round(budget * n))
    if budget > n:
        raise ValueError(f"budget {budget} out of range [0, {n}] (the number of examples)")
    return budget


def _check_layer(weight, bias):
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.is_floating_point():
        raise TypeError(f"weight must be the classifier's float (C, H) weight tensor (model.classifier.weight), "
                        f"got {_describe(weight)}")
    if bias is not None and (not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (weight.shape[0],)):
        raise TypeError(f"bias must be None or a ({weight.shape[0]},) tensor matching weight, got {_describe(bias)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf")
    return weight, bias


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{value!r} ({type(value).__name__})"


def _check_stats(stats, name: str) -> None:
    """validate_stats (shapes, dtypes, finiteness, labels, indices), naming the argument."""
    if not isinstance(stats, InferenceStats):
        raise TypeError(f"{name} must be an augcore InferenceStats, got {type(stats).__name__}")
    try:
        validate_stats(stats, need_embeddings=True)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None


def _check_variants(variants) -> list:
    if isinstance(variants, InferenceStats) or not isinstance(variants, (list, tuple)):
        raise TypeError(f"variants must be a list of InferenceStats (one per candidate augmentation), got "
                        f"{type(variants).__name__}")
    for v, variant in enumerate(variants):
        _check_stats(variant, f"variants[{v}]")
    return list(variants)


def _require_embeddings(stats: InferenceStats, name: str) -> torch.Tensor:
    if stats.embeddings is None:
        raise ValueError(f"{name} has no embeddings: influence on the last layer needs the penultimate "
                         "embeddings (collect InferenceStats with embeddings)")
    return stats.embeddings


def _align_rows(reference: torch.Tensor, other: torch.Tensor, name: str) -> torch.Tensor:
    """Row permutation of ``other`` that puts its dataset indices in ``reference``'s order."""
    if other.shape != reference.shape:
        raise ValueError(f"{name} has {other.numel()} rows but the training stats have {reference.numel()}")
    ref_order = torch.argsort(reference)
    other_order = torch.argsort(other)
    if not torch.equal(reference[ref_order], other[other_order]):
        raise ValueError(f"{name} does not cover the same dataset indices as the training stats")
    permutation = torch.empty_like(ref_order)
    permutation[ref_order] = other_order
    return permutation


@SELECTORS.register("influence")
class InfluenceSelector(BaseSelector):
    """Selector (``.select(stats, epoch=0, seed=0) -> Selection``) by influence on validation loss.

    ``weight`` (C, H), ``bias`` (C,) or None: the classifier's last layer (``model.classifier``);
    ``val_stats``: one inference pass over the validation set, with embeddings;
    ``budget``: a count or a fraction of the training examples; ``variants``: optional
    candidate augmentations, one ``InferenceStats`` per candidate (rows: any order, matched
    by dataset index). ``split`` None picks globally; ``"proportional"``/``"equal"``/
    ``"equal_ceil"`` split the budget over classes as ``augcore.ops.split_budget`` does.
    ``only_improving`` drops picks predicted not to lower the validation loss (score >= 0).
    ``cg_tol``: CG's relative residual (1e-6: scores to about six digits, ample for ranking);
    ``dtype``: of the solve and scores (float64 default; float32 is about 3x faster on the
    CPU, and CG then stops near a relative residual of 1e-4).
    Defaults follow the paper (CG, L_val summed, I_aug); it released no code.
    """

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], val_stats: InferenceStats,
                 budget: Union[int, float], *, variants: Optional[Sequence[InferenceStats]] = None,
                 objective: str = "replace", damping: float = 0.01, solver: str = "cg",
                 val_reduction: str = "sum", split: Optional[str] = None, only_improving: bool = False,
                 loss: str = "ce", cg_tol: float = 1e-6, dtype: torch.dtype = torch.float64,
                 lissa_depth: int = 1000, lissa_batch_size: Optional[int] = 1024):
        check_choice("objective", objective, OBJECTIVES)
        check_choice("solver", solver, SOLVERS)
        check_choice("val_reduction", val_reduction, REDUCTIONS)
        check_choice("split", split, (None,) + tuple(SPLITS))
        check_choice("loss", loss, LOSSES)
        weight, bias = _check_layer(weight, bias)
        _check_stats(val_stats, "val_stats")
        if len(val_stats) == 0:
            raise ValueError("val_stats is empty: influence needs at least one validation example")
        if val_stats.embeddings.shape[1] != weight.shape[1] or val_stats.logits.shape[1] != weight.shape[0]:
            raise ValueError(f"val_stats: embeddings (N, {val_stats.embeddings.shape[1]}) and logits "
                             f"(N, {val_stats.logits.shape[1]}) do not match weight (C, H) = {tuple(weight.shape)}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
        self.weight = weight.detach()
        self.bias = None if bias is None else bias.detach()
        self.val_stats = val_stats
        self.budget = _check_budget(budget)
        self.variants = None if variants is None else _check_variants(variants)
        self.objective = objective
        self.damping = check_number("damping", damping, min=0.0)
        self.solver = solver
        self.val_reduction = val_reduction
        self.split = split
        self.only_improving = check_bool("only_improving", only_improving)
        self.loss = loss
        self.cg_tol = check_number("cg_tol", cg_tol, min=0.0, min_inclusive=False)
        self.dtype = dtype
        self.lissa_depth = check_int("lissa_depth", lissa_depth, min=1)
        self.lissa_batch_size = None if lissa_batch_size is None else check_int("lissa_batch_size",
                                                                               lissa_batch_size, min=1)

    def scores(self, stats: InferenceStats, seed: int = 0,
               variants: Optional[Sequence[InferenceStats]] = None):
        """(scores (N,), best variant (N,) int64 or None, fitted LastLayerInfluence) for the rows of ``stats``."""
        _check_stats(stats, "stats")
        return self._scores(stats, seed, variants)

    def _scores(self, stats: InferenceStats, seed: int, variants: Optional[Sequence[InferenceStats]]):
        seed = check_int("seed", seed, min=0)
        if variants is not None:
            variants = _check_variants(variants)
        embeddings = _require_embeddings(stats, "stats")
        influence = LastLayerInfluence(self.weight, self.bias, embeddings, stats.logits, damping=self.damping,
                                       loss=self.loss, dtype=self.dtype)
        influence.fit(self.val_stats.embeddings, self.val_stats.labels, self.val_stats.logits,
                      reduction=self.val_reduction, solver=self.solver, seed=seed, cg_tol=self.cg_tol,
                      lissa_depth=self.lissa_depth,
                      lissa_batch_size=self.lissa_batch_size)
        base = influence.up_loss(embeddings, stats.labels, stats.logits)
        variants = self.variants if variants is None else list(variants)
        if not variants:
            return base, None, influence
        per_variant = []
        for v, variant in enumerate(variants):
            rows = _align_rows(stats.indices, variant.indices, f"variant {v}")
            variant_embeddings = _require_embeddings(variant, f"variant {v}")[rows]
            if not torch.equal(variant.labels[rows].cpu(), stats.labels.cpu()):
                raise ValueError(f"variant {v} changes labels of some examples; augmented variants keep the label")
            per_variant.append(influence.up_loss(variant_embeddings, stats.labels, variant.logits[rows]))
        variant_scores = torch.stack(per_variant, 1)
        if self.objective == "replace":
            variant_scores = variant_scores - base[:, None]
        best_scores, best_variant = variant_scores.min(1)
        return best_scores, best_variant, influence

    def _pick(self, scores: torch.Tensor, labels: torch.Tensor, total: int) -> torch.Tensor:
        """Rows of the lowest scores (CPU tensors in and out), globally or per class, ascending."""
        order = torch.argsort(scores, stable=True)
        if self.split is None:
            picked = order[:total]
        else:
            num_classes = max(int(labels.max()) + 1, self.weight.shape[0]) if len(labels) else self.weight.shape[0]
            sizes = torch.bincount(labels, minlength=num_classes)
            budgets = split_budget(sizes, total, self.split)
            # Stable sort by class keeps ascending score inside each class: rank = position - class start.
            by_class = order[torch.argsort(labels[order], stable=True)]
            starts = torch.cumsum(sizes, 0) - sizes
            cls = labels[by_class]
            rank = torch.arange(len(by_class)) - starts[cls]
            picked = by_class[rank < budgets[cls]]
            picked = picked[torch.argsort(scores[picked], stable=True)]
        if self.only_improving:
            picked = picked[scores[picked] < 0]
        return picked

    def select(self, stats: InferenceStats, epoch: int = 0, seed: int = 0,
               variants: Optional[Sequence[InferenceStats]] = None) -> Selection:
        """``variants`` here replaces the constructor's for this step (they change with the model)."""
        return self._select(stats, epoch, seed, variants=variants)

    def validate(self, stats: InferenceStats) -> None:
        _check_stats(stats, "stats")

    def pick(self, stats: InferenceStats, *, epoch: int, seed: int,
             variants: Optional[Sequence[InferenceStats]] = None) -> Picks:
        check_int("epoch", epoch, min=0)
        total = _resolve_budget(self.budget, len(stats))
        start = time.perf_counter()
        scores, best_variant, influence = self._scores(stats, seed, variants)
        scores = scores.cpu()  # the pick is a sort of N numbers: CPU, whatever the stats' device
        scored = time.perf_counter()
        labels = stats.labels.cpu()
        picked = self._pick(scores, labels, total)
        info = {
            "score": scores[picked],
            "predicted_val_loss_change": scores[picked] / len(stats),
            "objective": self.objective if best_variant is not None else "upweight",
            "solver": self.solver,
            "solver_iterations": influence.solve.iterations,
            "solver_relative_residual": influence.solve.relative_residual,
        }
        if best_variant is not None:
            info["variant"] = best_variant.cpu()[picked]
        return Picks(picked, timings={"influence": scored - start, "pick": time.perf_counter() - scored}, info=info)
