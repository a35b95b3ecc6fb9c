"""Float64 pure-torch references for every compiled kernel.

They are the executable form of the contracts in ARCHITECTURE.md: slow, simple,
written straight from the math, and used by the tests as the independent check
of the C++/CUDA kernels. The exact last-layer distance here forms the
C*(H+b)-dimensional gradients explicitly, so it also checks the factored formula.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch

MASK64 = (1 << 64) - 1


# --- counter-based random numbers (identical in C++ and CUDA) -----------------------
def splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def counter_hash(seed: int, group: int, step: int, j: int) -> int:
    """The j-th 64-bit draw of greedy step ``step`` in group ``group``."""
    return splitmix64(splitmix64(splitmix64(splitmix64(seed & MASK64) ^ group) ^ step) ^ j)


def uniform_below(h: int, r: int) -> int:
    """Maps a 64-bit draw to [0, r) by a 64x64->128 multiply-high (no modulo bias worth noting)."""
    return (h * r) >> 64


def stochastic_sample_size(n: int, k: int, eps: float) -> int:
    """ceil(n / k * ln(1 / eps)): candidates evaluated per stochastic-greedy step."""
    return math.ceil(n / k * math.log(1.0 / eps))


# --- kernels -------------------------------------------------------------------------
def reference_grad_proxies(logits: torch.Tensor, labels: torch.Tensor, loss: str = "ce",
                           embeddings: Optional[torch.Tensor] = None):
    """(errors, per-example loss, ``|e|^2``, ``|h|^2`` or None), all float64."""
    z = logits.to(torch.float64)
    onehot = torch.nn.functional.one_hot(labels.long(), z.shape[1]).to(torch.float64)
    if loss == "ce":
        errors = torch.softmax(z, 1) - onehot
        per_example = torch.logsumexp(z, 1) - (z * onehot).sum(1)
    elif loss == "mse":
        errors = z - onehot
        per_example = 0.5 * (errors ** 2).sum(1)
    else:
        raise ValueError(loss)
    emb_sq = None if embeddings is None else (embeddings.to(torch.float64) ** 2).sum(1)
    return errors, per_example, (errors ** 2).sum(1), emb_sq


def explicit_last_layer_gradients(errors: torch.Tensor, embeddings: torch.Tensor, bias: float) -> torch.Tensor:
    """g_i = [e_i (x) h_i, e_i] (bias=1) or e_i (x) h_i (bias=0), formed explicitly."""
    e = errors.to(torch.float64)
    h = embeddings.to(torch.float64)
    g = (e[:, :, None] * h[:, None, :]).reshape(e.shape[0], -1)
    if bias:
        g = torch.cat([g, math.sqrt(bias) * e], 1)
    return g


def reference_sqdist(x: torch.Tensor, embeddings: Optional[torch.Tensor] = None, bias: float = 1.0) -> torch.Tensor:
    """Squared Euclidean distances between rows (float64, by explicit differences)."""
    g = x.to(torch.float64) if embeddings is None else explicit_last_layer_gradients(x, embeddings, bias)
    return ((g[:, None, :] - g[None, :, :]) ** 2).sum(-1)


def gradient_dim(x: torch.Tensor, embeddings: Optional[torch.Tensor], bias: float) -> int:
    return x.shape[1] if embeddings is None else x.shape[1] * (embeddings.shape[1] + (1 if bias else 0))


def reference_similarity(sqdist: torch.Tensor, kind: str, scale: float) -> torch.Tensor:
    d = sqdist.clamp_min(0).sqrt()
    if kind == "exp":
        return torch.exp(-d / scale)
    if kind == "craig":
        return (d.max() if d.numel() else d.new_zeros(())) - d
    if kind == "craig_squared":
        d2 = sqdist.clamp_min(0)
        return (d2.max() if d2.numel() else d2.new_zeros(())) - d2
    raise ValueError(kind)


def reference_greedy(sim: torch.Tensor, k: int, method: str = "naive", eps: float = 0.01, seed: int = 0,
                     group: int = 0) -> Tuple[List[int], List[float], torch.Tensor, float]:
    """Facility-location greedy on one group's (n, n) similarity matrix, sim[i, j] = s_ij.

    Returns (selected positions in greedy order, marginal gains, assignment of
    each point to a selected position, objective). ``lazy`` has no separate
    reference: by contract it returns exactly what ``naive`` returns.
    """
    sim = sim.to(torch.float64)
    n = sim.shape[0]
    m = torch.zeros(n, dtype=torch.float64)
    remaining = list(range(n))
    selected: List[int] = []
    gains: List[float] = []
    sample_size = stochastic_sample_size(n, k, eps) if (method == "stochastic" and k > 0) else n
    for step in range(k):
        r = len(remaining)
        s = min(r, sample_size)
        if method == "stochastic":
            for j in range(s):
                t = j + uniform_below(counter_hash(seed, group, step, j), r - j)
                remaining[j], remaining[t] = remaining[t], remaining[j]
        candidates = remaining[:s]
        cand_gains = (sim[:, candidates] - m[:, None]).clamp_min(0).sum(0)
        best_q = min(range(s), key=lambda q: (-float(cand_gains[q]), candidates[q]))
        best = candidates[best_q]
        selected.append(best)
        gains.append(float(cand_gains[best_q]))
        m = torch.maximum(m, sim[:, best])
        remaining[best_q] = remaining[-1]
        remaining.pop()
    if selected:
        assignment = torch.tensor(selected)[sim[:, selected].argmax(1)]  # argmax: first (earliest) maximum
    else:
        assignment = torch.full((n,), -1, dtype=torch.int64)
    return selected, gains, assignment, float(m.sum())


def facility_location_value(sim: torch.Tensor, selected) -> float:
    """F(S) = sum_i max_{j in S} s_ij (0 for S empty)."""
    if len(selected) == 0:
        return 0.0
    return float(sim.to(torch.float64)[:, list(selected)].max(1).values.sum())
