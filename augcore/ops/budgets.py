"""Splitting a selection budget over groups (classes).

Our rules (exact totals except ``equal_ceil``):

* ``"proportional"`` (default): budget_g = B * n_g / N, rounded by largest
  remainder so the total is exactly B. Ties in the remainder go to the smaller
  group id.
* ``"equal"``: the same share for every non-empty group, exact total B; a group
  smaller than its share gives all of itself and the surplus is shared among the
  others (water filling). Leftover units go to the largest groups (ties: smaller id).
* ``"equal_ceil"``: ceil(B / G) per group, capped at the group's size; the total can
  exceed B. This is the released coreset code's ``equal_num`` share *without* its
  surplus hand-off (see ``"reference_equal"``).

The released coreset code's rules (tianyu139/data-efficient-augmentation,
``utils/craig.py``), for reproducing it (``CoresetSelector(preset="reference")``):

* ``"reference_equal"`` (its default, ``equal_num=True``): every group gets
  s = ceil(B / G); when some groups hold fewer than s examples, each of the other
  groups gets ceil(extra / m) more, where extra is the minority groups' total
  shortfall and m the number of minority groups (the released formula divides by m,
  not by the number of receiving groups). The released code then asks submodlib for
  more picks than a small group holds, which raises; here every budget is capped at
  its group's size instead. The total can exceed B.
* ``"reference_proportional"`` (``--no_equal_num``): ceil(n_g / N * B) per group
  (float64, as numpy computes it), then the excess over B is removed one pick at a
  time from distinct groups drawn uniformly among those with a positive budget.
  The draw uses the ``generator`` passed in (the released code uses numpy's global
  random state).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Union

import torch

from augcore.checks import check_count, check_count_list, check_finite
from augcore.ops._common import as_tensor

SPLITS = ("proportional", "equal", "equal_ceil")
# the released code's rules; not offered by facility_location, whose totals stay at most B
REFERENCE_SPLITS = ("reference_equal", "reference_proportional")
WEIGHTINGS = ("raw", "normalized", "unit")


def split_budget(sizes: Union[torch.Tensor, Sequence[int]], budget: Union[int, torch.Tensor, Sequence[int]],
                 split: str = "proportional", generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Per-group budgets (int64, CPU) for groups of the given sizes.

    ``budget`` is either a total (a count: a Python or numpy integer, an integral float
    such as 3.0, or a 0-d tensor/array) split by ``split`` (one of ``SPLITS`` or
    ``REFERENCE_SPLITS``), or per-group budgets (a list, tuple, or 1-D array/tensor of
    counts), which are validated (0 <= b_g <= n_g) and returned as given. Sizes and
    budgets must be whole numbers: 1.9 raises naming the entry, it is never truncated.
    ``generator`` (a CPU ``torch.Generator``) is required by ``"reference_proportional"``,
    the only rule that draws at random.
    """
    sizes_list = check_count_list("sizes (the group sizes)", sizes)
    total = sum(sizes_list)
    if isinstance(budget, (list, tuple)) or getattr(budget, "ndim", 0) >= 1:  # per-group budgets
        per_group = check_count_list("budget (per-group budgets)", budget, min=None, length=len(sizes_list))
        for g, (b, n) in enumerate(zip(per_group, sizes_list)):
            if b < 0 or b > n:
                raise ValueError(f"budget {b} of group {g} out of range [0, {n}] (the group's size)")
        return torch.tensor(per_group, dtype=torch.int64)
    budget = check_count("budget (a number of examples)", budget, min=None)
    if budget < 0 or budget > total:
        raise ValueError(f"budget {budget} out of range [0, {total}] (the number of examples)")
    if split not in SPLITS + REFERENCE_SPLITS:
        raise ValueError(f"budget_split must be one of {SPLITS + REFERENCE_SPLITS}, got {split!r}")
    if split == "reference_equal":
        return torch.tensor(_reference_equal(sizes_list, budget), dtype=torch.int64)
    if split == "reference_proportional":
        if generator is None:
            raise ValueError("budget_split='reference_proportional' removes picks at random: pass generator= "
                             "(a seeded CPU torch.Generator, e.g. augcore.seeds.cpu_generator)")
        return torch.tensor(_reference_proportional(sizes_list, budget, generator), dtype=torch.int64)
    G = len(sizes_list)
    if split == "proportional":
        # integer arithmetic: floors and remainders of B * n_g / N are exact
        out = [budget * n // total if total else 0 for n in sizes_list]
        remainder = [budget * n - f * total for n, f in zip(sizes_list, out)]
        for g in sorted(range(G), key=lambda g: (-remainder[g], g))[: budget - sum(out)]:
            out[g] += 1
    elif split == "equal":
        out = [0] * G
        active = [g for g in range(G) if sizes_list[g] > 0]
        remaining = budget
        while active:
            small = [g for g in active if sizes_list[g] * len(active) <= remaining]
            if not small:
                break
            for g in small:
                out[g] = sizes_list[g]
                remaining -= sizes_list[g]
            active = [g for g in active if g not in small]
        if active:
            share = remaining // len(active)
            for g in active:
                out[g] = share
            extra = remaining - share * len(active)
            for g in sorted(active, key=lambda g: (-sizes_list[g], g))[:extra]:
                out[g] += 1
    else:  # equal_ceil
        share = math.ceil(budget / G) if G else 0
        out = [min(n, share) for n in sizes_list]
    return torch.tensor(out, dtype=torch.int64)


def _reference_equal(sizes: list, budget: int) -> list:
    """``equal_num`` of the released ``get_orders_and_weights``, each budget capped at its group's size."""
    groups = len(sizes)
    if groups == 0:
        return []
    share = math.ceil(budget / groups)
    out = [share] * groups
    minority = [n < share for n in sizes]
    if any(minority):
        extra = sum(max(0, share - n) for n in sizes)
        bonus = math.ceil(extra / sum(minority))
        out = [b if small else b + bonus for b, small in zip(out, minority)]
    return [min(b, n) for b, n in zip(out, sizes)]


def _reference_proportional(sizes: list, budget: int, generator: torch.Generator) -> list:
    """``--no_equal_num`` of the released ``get_orders_and_weights``: round every share up, then
    take one pick each from ``excess`` distinct groups with a positive budget, drawn uniformly
    (the released loop redraws until it hits an unchosen positive group: the same distribution)."""
    total = sum(sizes)
    if total == 0:
        return [0] * len(sizes)
    ceiled = [math.ceil(n / total * budget) for n in sizes]  # float64, in numpy's order of operations
    # float rounding can lift a share past its group (54.00000000000001 of 54): the released code
    # then asks submodlib for more than the class holds and fails; such a group is capped (taken
    # whole, as the reference preset does) and keeps its budget
    out = [min(b, n) for b, n in zip(ceiled, sizes)]
    excess = sum(out) - budget
    if excess > 0:
        eligible = [g for g, b in enumerate(out) if b > 0 and b == ceiled[g]]
        for pos in torch.randperm(len(eligible), generator=generator)[:excess].tolist():
            out[eligible[pos]] -= 1
    return out


def normalize_weights(gamma: Any, how: str = "normalized") -> torch.Tensor:
    """Turns medoid counts gamma (a 1-D tensor or array, e.g. ``FacilityLocationResult.weights``)
    into float32 training weights.

    * ``"raw"``: gamma itself (float32).
    * ``"normalized"`` (the reference code): zero counts set to 1, then scaled over
      the whole selection to mean 1: ``w = gamma / sum(gamma) * |S|``.
    * ``"unit"``: all ones.

    Counts must be finite and non-negative: a negative, NaN or infinite count raises
    ``ValueError`` naming its position (it would give negative, NaN or zero weights).
    The zero-count rule means an all-zero gamma gives all ones, so no sum is ever zero.
    """
    if not isinstance(how, str) or how not in WEIGHTINGS:
        raise ValueError(f"weights must be 'raw', 'normalized' or 'unit', got {how!r}")
    tensor = as_tensor(gamma, "gamma")
    if tensor.dim() != 1:
        raise ValueError(f"gamma must be a 1-D tensor of counts (one per pick), got shape {tuple(tensor.shape)}")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"gamma must hold real counts, got {tensor.dtype}")
    gamma = tensor.to(torch.float32)
    if tensor.is_floating_point():
        check_finite(tensor, "gamma")
    if gamma.numel() and float(gamma.min()) < 0:
        at = int(torch.argmin(gamma))
        raise ValueError(f"gamma must hold non-negative counts, found {float(gamma[at])} at index {at}")
    if how == "raw":
        return gamma
    if how == "unit":
        return torch.ones_like(gamma)
    if gamma.numel() == 0:
        return gamma
    g = torch.where(gamma == 0, torch.ones_like(gamma), gamma)
    return g / g.sum() * g.numel()
