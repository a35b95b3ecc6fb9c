"""Segmented facility-location greedy: weighted per-group coresets in one call."""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import torch

from augcore._build import build_info, check_device_supported, compiled_ops
from augcore.checks import check_choice, check_count, check_count_list, check_finite, check_int, check_number
from augcore.ops._common import as_tensor, segments_from_groups
from augcore.ops.budgets import SPLITS, split_budget
from augcore.ops.distances import block_offsets, prepare_points

METHODS = {"naive": 0, "lazy": 1, "stochastic": 2}
SIMILARITIES = {"exp": 0, "craig": 1, "craig_squared": 3}
MODES = {"auto": 0, "dense": 1, "on_the_fly": 2}
TIE_BREAKS = {"low": 0, "high": 1, "apricot": 2}
BACKENDS = ("auto", "cpu", "cuda", "triton")
_PRECOMPUTED = 2


@dataclass
class FacilityLocationResult:
    """What one facility-location call selected, per group, in greedy order.

    Group g's picks are ``indices[group_ptr[g]:group_ptr[g+1]]``.
    """

    indices: torch.Tensor     # (K,) int64 original indices of the selected examples
    gains: torch.Tensor       # (K,) float64 marginal gain of each pick when it was made
    weights: torch.Tensor     # (K,) int64 gamma_j: points whose most similar pick is j
    assignment: torch.Tensor  # (N,) int64 original index of each point's medoid; -1 in budget-0 groups
    budgets: torch.Tensor     # (G,) int64 per-group budgets
    group_ptr: torch.Tensor   # (G+1,) int64 offsets of each group's picks in ``indices``
    objective: torch.Tensor   # (G,) float64 F(S_g) = sum_i max_{j in S_g} s_ij
    timings: Mapping = field(default_factory=dict)  # seconds: prepare, similarity, greedy, kernel, total (Timings)


def facility_location(proxies: Any, budget: Union[int, Any], groups: Any = None, *,
                      embeddings: Any = None, bias: float = 1.0,
                      similarity: Union[str, Any] = "exp", scale: Optional[float] = None,
                      method: str = "stochastic", eps: float = 0.01, seed: int = 0,
                      budget_split: str = "proportional", num_groups: Optional[int] = None,
                      mode: str = "auto", memory_limit: int = 1 << 30,
                      backend: str = "auto", tie_break: str = "low") -> FacilityLocationResult:
    """Greedy facility location, solved for every group (class) in one parallel call.

    Args:
      proxies: (N, D) points: gradient proxies e_i (see ``grad_proxies``), or any
        features. ``None`` when ``similarity`` is a precomputed matrix.
      budget: total number of picks, split over groups by ``budget_split``
        ("proportional", "equal" or "equal_ceil", see ``split_budget``); or a sequence
        of per-group budgets.
      groups: (N,) integer group ids (class labels); ``None`` is one group.
      embeddings: (N, H) penultimate embeddings: distances are then between exact
        last-layer gradients (factored, see ``pairwise_distances``); ``bias`` 1 or 0.
      similarity: "exp" (default, the reference code's): s = exp(-d / p), p =
        ``scale`` or the gradient's dimension (D, or D*(H+b) with embeddings);
        "craig": s = d_max - d with d_max the group's largest distance;
        "craig_squared": s = d2_max - d^2 on squared distances (apricot's "euclidean"),
        each d^2 summed in float64 and rounded once to float32 (what sklearn's float64
        ``euclidean_distances`` gives for float32 points, up to its own float64
        rounding; CPU tensors only); or a precomputed non-negative (N, N) matrix.
      method: "naive", "lazy" (Minoux; returns exactly naive's picks) or
        "stochastic" (each step evaluates ceil(n/k ln(1/eps)) remaining candidates
        drawn by a counter-based generator from ``seed``; (1-1/e-eps) in expectation).
        Exact ties in gain are settled by ``tie_break``.
      tie_break: "low" (default): the smaller index wins an exact tie in gain, and
        "lazy" returns exactly naive's picks. "high": submodlib's rules: the larger
        index wins ("naive" is submodlib's NaiveGreedy on libstdc++, whose ground set
        iterates from the largest index down), and "lazy" is submodlib's LazyGreedy
        step for step (its priority queue takes the popped element when its fresh gain
        is >= the next stale bound, whatever that element's index, so on exact ties it
        can differ from "naive"). "apricot": apricot's rules: "naive" and
        "stochastic" as "low", and "lazy" is apricot's LazyGreedy step for step (its
        queue pops equal bounds in insertion order, and the first element evaluated
        with the step's largest gain is picked). Indices are positions inside the
        group, which keeps the original order. CPU tensors only for "lazy" with "high"
        or "apricot".
      mode: "dense" stores each group's n x n similarities; "on_the_fly" recomputes
        them from the points and needs O(n) memory per group; "auto" picks dense when
        the blocks solved at once fit in ``memory_limit`` bytes. Both give the same
        picks: the similarity of a pair is computed by the same float32 code.

      backend: which kernels run. "cpu": the compiled CPU op (CPU tensors). "cuda": the
        compiled CUDA op (CUDA tensors, a build with CUDA; one launch runs every greedy
        step, docs/gpu.md). "triton": the Triton kernels, on any GPU torch's Triton supports
        (NVIDIA, AMD ROCm, Intel XPU): one persistent program per group runs every step,
        with the CPU op's picks and gains bit for bit; "lazy" with tie_break "high" or
        "apricot" is refused there (docs/backends.md). "auto" (default): "cpu" for CPU
        tensors, "cuda" for CUDA tensors when the extension has CUDA kernels, "triton" on
        any other GPU (ROCm, XPU, or a build without CUDA).

    Gains are exact sums of fixed-point terms (docs/gpu.md, "Determinism"), so the
    same inputs and seed give the same picks and gains on every device, thread count
    and input order within a group.

    Returns a ``FacilityLocationResult``. Weights gamma count, for each pick, the
    points of its group whose most similar pick it is (ties to the earlier pick);
    they sum to each group's size. Turn them into training weights with
    ``augcore.normalize_weights``.
    """
    t0 = time.perf_counter()
    check_choice("method", method, METHODS)
    check_choice("mode", mode, MODES)
    check_choice("budget_split", budget_split, SPLITS)
    check_choice("backend", backend, BACKENDS)
    if isinstance(similarity, str) and proxies is None:
        raise ValueError("proxies are required unless similarity is a precomputed matrix")
    device = as_tensor(proxies if isinstance(similarity, str) else similarity,
                       "proxies" if isinstance(similarity, str) else "similarity").device
    backend = _resolve_backend(backend, device)
    check_choice("tie_break", tie_break, TIE_BREAKS)
    eps = check_number("eps", eps, min=0.0, max=1.0, min_inclusive=False, max_inclusive=False)
    seed = check_int("seed", seed, min=-(1 << 63), max=(1 << 63) - 1)
    memory_limit = check_int("memory_limit", memory_limit, min=0)
    bias = check_number("bias", bias)
    if bias not in (0, 1):
        raise ValueError(f"bias must be 0 (weights only) or 1 (weights and bias), got {bias}")
    if num_groups is not None:
        num_groups = check_int("num_groups", num_groups, min=0)
    if scale is not None:
        scale = check_number("scale", scale, min=0.0, min_inclusive=False)
    budget = _checked_budget(budget)

    precomputed = None
    if isinstance(similarity, str):
        check_choice("similarity", similarity, SIMILARITIES)
        x_sorted, emb_sorted, seg = prepare_points(proxies, embeddings, groups, num_groups,
                                                   compiled=backend != "triton")
        kind, scale = _points_similarity(similarity, backend, x_sorted, emb_sorted, scale, bias)
    else:
        sim = as_tensor(similarity, "similarity")
        if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
            raise ValueError(f"similarity: expected a square (N, N) matrix, got shape {tuple(sim.shape)}")
        if not sim.is_floating_point():
            raise TypeError(f"similarity: expected a floating dtype, got {sim.dtype}")
        if backend != "triton":
            check_device_supported(sim, "similarity")
        if (sim.device.type == "cpu" or backend == "triton") and sim.numel():  # the CUDA op checks with one sync
            # one pass over memory order (a transposed view reads as fast as its base)
            low, high = torch.aminmax(sim.t() if sim.t().is_contiguous() else sim)
            if not bool(torch.isfinite(low) & torch.isfinite(high)):
                check_finite(sim, "similarity")  # names the first non-finite entry
            if float(low) < 0:
                raise ValueError("similarity must be non-negative: facility location assumes s_ij >= 0")
        n = sim.shape[0]
        seg = segments_from_groups(groups, n, sim.device, num_groups)
        precomputed = _gather_blocks(sim, seg).to(torch.float32)
        x_sorted, emb_sorted, kind, scale = sim.new_zeros((n, 0), dtype=torch.float32), None, _PRECOMPUTED, 1.0

    budgets = split_budget(seg.sizes, budget, budget_split)
    return _solve(x_sorted, emb_sorted, precomputed, seg, budgets, kind, scale, bias, method, eps, seed, mode,
                  memory_limit, tie_break, backend, t0)


def _facility_location_unchecked(proxies: torch.Tensor, budgets: torch.Tensor, groups: torch.Tensor, *,
                                 num_groups: int, embeddings: Optional[torch.Tensor] = None, bias: float = 1.0,
                                 similarity: str = "exp", method: str = "stochastic", eps: float = 0.01,
                                 seed: int = 0, tie_break: str = "low") -> FacilityLocationResult:
    """``facility_location`` on points, for callers that validated its inputs (the coreset
    selector, after ``validate_stats`` and ``split_budget``): finite floating ``proxies``
    (N, D) and ``embeddings`` (N, H) on one device, integer ``groups`` in [0, ``num_groups``),
    per-group ``budgets`` (C,) int64 in range, and valid options. Skips the argument checks,
    the pass over the values and the budget split; the group sizes are still counted."""
    t0 = time.perf_counter()
    backend = _resolve_backend("auto", proxies.device)
    x_sorted, emb_sorted, seg = prepare_points(proxies, embeddings, groups, num_groups, compiled=backend != "triton",
                                               check_finite=False)
    kind, scale = _points_similarity(similarity, backend, x_sorted, emb_sorted, None, bias)
    return _solve(x_sorted, emb_sorted, None, seg, budgets, kind, scale, bias, method, eps, seed, "auto", 1 << 30,
                  tie_break, backend, t0)


def _points_similarity(similarity: str, backend: str, x_sorted: torch.Tensor, emb_sorted: Optional[torch.Tensor],
                       scale: Optional[float], bias: float) -> Tuple[int, float]:
    """The kernel's similarity code and scale (default: the gradient's dimension)."""
    if similarity == "craig_squared" and backend == "cuda":
        raise ValueError("similarity='craig_squared' does not run on backend='cuda' (its float64 sums are "
                         "CPU and Triton code); use backend='triton' for CUDA tensors")
    if scale is None:
        dim = x_sorted.shape[1] if emb_sorted is None else x_sorted.shape[1] * (emb_sorted.shape[1] + bias)
        scale = float(max(dim, 1))
    return SIMILARITIES[similarity], scale


def _solve(x_sorted: torch.Tensor, emb_sorted: Optional[torch.Tensor], precomputed: Optional[torch.Tensor], seg,
           budgets: torch.Tensor, kind: int, scale: float, bias: float, method: str, eps: float, seed: int,
           mode: str, memory_limit: int, tie_break: str, backend: str, t0: float) -> FacilityLocationResult:
    """The kernel call on prepared inputs and the result in original indices."""
    t1 = time.perf_counter()
    args = (x_sorted, emb_sorted, precomputed, seg.indptr, budgets, kind, float(scale), float(bias),
            METHODS[method], float(eps), int(seed), MODES[mode], int(memory_limit), TIE_BREAKS[tie_break])
    if backend == "triton":
        from augcore.ops.triton_facility_location import facility_location_triton
        selected, gains, gamma, assign_pos, objective, seconds = facility_location_triton(*args)
    else:
        selected, gains, gamma, assign_pos, objective, seconds = compiled_ops().facility_location(*args)
    t2 = time.perf_counter()

    # back to original indices with gathers and one scatter: no host synchronisation on CUDA
    order = seg.order
    assignment = torch.full_like(order, -1)
    assignment[order] = torch.where(assign_pos >= 0, order[assign_pos.clamp_min(0)], assign_pos)
    group_ptr = torch.zeros(budgets.numel() + 1, dtype=torch.int64)
    torch.cumsum(budgets, 0, out=group_ptr[1:])
    indices = order[selected]
    host = {"prepare": t1 - t0, "kernel": t2 - t1, "total": time.perf_counter() - t0}
    return FacilityLocationResult(
        indices=indices, gains=gains, weights=gamma, assignment=assignment, budgets=budgets,
        group_ptr=group_ptr, objective=objective, timings=Timings(host, seconds))


def _resolve_backend(backend: str, device: torch.device) -> str:
    """The backend that runs for tensors on ``device``: "auto" resolved, the others checked."""
    on_cuda = device.type == "cuda" and torch.version.hip is None  # ROCm devices are "cuda" to torch too
    if backend == "auto":
        if device.type == "cpu":
            return "cpu"
        return "cuda" if on_cuda and _cuda_compiled() else "triton"
    if backend == "cpu" and device.type != "cpu":
        raise ValueError(f"backend='cpu' runs on CPU tensors; the inputs are on {device} (move them with .cpu(), "
                         "or use backend='auto')")
    if backend == "cuda" and not on_cuda:
        raise ValueError(f"backend='cuda' runs on CUDA tensors of an NVIDIA GPU; the inputs are on {device} "
                         "(backend='triton' runs on other GPUs)")
    if backend == "triton":
        try:
            from augcore.ops.triton_facility_location import check_device
        except ImportError as exc:
            raise RuntimeError(f"backend='triton' needs the triton package ({exc}); install it, or use "
                               "backend='cpu'/'cuda'") from exc
        check_device(device, "proxies")
    return backend


def _cuda_compiled() -> bool:
    try:
        return bool(build_info()["cuda"])
    except RuntimeError:  # no compiled extension at all
        return False


def _checked_budget(budget: Any) -> Union[int, list]:
    """A total number of picks or a 1-D list/array/tensor of per-group numbers, as
    ``check_count`` takes them (numpy and 0-d tensors included, 3.0 is 3, 2.5 raises);
    the range is split_budget's check."""
    if getattr(budget, "ndim", 1) > 1:
        raise ValueError(f"budget must be an integer or a 1-D list of per-group integers, got shape "
                         f"{tuple(budget.shape)}")
    if isinstance(budget, (list, tuple)) or getattr(budget, "ndim", 0) == 1:
        return check_count_list("budget", budget, min=None)
    return check_count("budget", budget, min=None)


class Timings(Mapping):
    """Seconds of one call, wall-clock: "prepare" (checks, sorting), "similarity" and
    "greedy" (the kernel's two phases), "kernel" (the whole op call) and "total".

    On the CPU every value is wall-clock and total >= kernel >= similarity + greedy.
    On a GPU (CUDA or Triton) the call returns before the device finishes: "prepare",
    "kernel" and "total" are host seconds, and "similarity" and "greedy" are device
    seconds, read from the GPU (one synchronisation) the first time they are accessed.
    """

    def __init__(self, host: Dict[str, float],
                 device_seconds: Union[torch.Tensor, Callable[[], Tuple[float, float]]]):
        self._host = dict(host)
        self._device = device_seconds
        self._values: Optional[Dict[str, float]] = None

    def _resolve(self) -> Dict[str, float]:
        if self._values is None:
            seconds = self._device() if callable(self._device) else self._device.cpu().tolist()
            similarity, greedy = (float(v) for v in seconds)
            self._values = {"prepare": self._host["prepare"], "similarity": similarity, "greedy": greedy,
                            "kernel": self._host["kernel"], "total": self._host["total"]}
        return self._values

    def __getitem__(self, key: str) -> float:
        return self._resolve()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("prepare", "similarity", "greedy", "kernel", "total"))

    def __len__(self) -> int:
        return 5

    def __repr__(self) -> str:
        return f"Timings({self._resolve()!r})"


def _gather_blocks(sim: torch.Tensor, seg) -> torch.Tensor:
    """Each sorted group's diagonal block of the (N, N) matrix, transposed to the
    kernel's candidate-major layout (entry [c, i] = s_ic), back to back."""
    if seg.num_groups == 1:
        return sim.t().contiguous().reshape(-1)
    areas = (seg.sizes * seg.sizes).to(sim.device)
    n_of_entry = torch.repeat_interleave(seg.sizes.to(sim.device), areas)
    start_of_entry = torch.repeat_interleave(seg.indptr[:-1].to(sim.device), areas)
    offset_of_entry = torch.repeat_interleave(block_offsets(seg.sizes)[:-1].to(sim.device), areas)
    local = torch.arange(n_of_entry.numel(), device=sim.device) - offset_of_entry
    candidate = seg.order[start_of_entry + local // n_of_entry]
    point = seg.order[start_of_entry + local % n_of_entry]
    return sim[point, candidate].contiguous()
