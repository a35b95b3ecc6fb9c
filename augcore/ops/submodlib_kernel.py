"""submodlib's dense "euclidean" kernel, value for value (decile-team/submodlib 0.0.3,
``create_square_kernel_dense``): the similarity the coreset paper's released code selects
with (``CoresetSelector(preset="reference")``) and ``augcore.compat.submodlib``'s ``sijs``."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Callable, Optional

import torch

_KERNEL_ROW_BLOCK = 2048  # rows of the similarity matrix built at once (bounds the temporaries)


def submodlib_dense_kernel(points: torch.Tensor) -> torch.Tensor:
    """submodlib's dense "euclidean" similarity, value for value: s_ij = exp(-d_ij * (1/p)) with
    d_ij = sqrt of the float32 sum of squared differences accumulated feature by feature,
    1/p the float32 reciprocal of the dimension, and s_ii = 1 (``create_square_kernel_dense``).

    ``points`` (n, p); returns (n, n) float32 on the CPU."""
    x = points.detach().to(device="cpu", dtype=torch.float32)
    n, dim = x.shape
    inv_dim = torch.tensor(1.0 / max(dim, 1), dtype=torch.float32)
    sim = torch.empty(n, n, dtype=torch.float32)
    for r0 in range(0, n, _KERNEL_ROW_BLOCK):
        block = x[r0:r0 + _KERNEL_ROW_BLOCK]
        acc = torch.zeros(block.shape[0], n, dtype=torch.float32)
        for f in range(dim):  # one feature at a time: the C++ loop's rounding order
            diff = block[:, f, None] - x[None, :, f]
            acc.add_(diff.mul_(diff))
        # sqrt in float64 rounded once is correctly rounded, as C's sqrtf (torch's float32
        # sqrt is not, on every CPU)
        dist = acc.double().sqrt_().float()
        sim[r0:r0 + block.shape[0]] = _expf(dist.mul_(inv_dim).neg_())
    sim.fill_diagonal_(1.0)
    return sim


@functools.lru_cache(maxsize=1)
def _libm_expf() -> Optional[Callable[[float], float]]:
    """The C library's expf, which submodlib's kernel calls; None where it cannot be loaded."""
    name = ctypes.util.find_library("m")
    try:
        fn = ctypes.CDLL(name).expf if name else None
    except (OSError, AttributeError):
        return None
    if fn is not None:
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
    return fn


def _expf(x: torch.Tensor) -> torch.Tensor:
    """expf of a float32 tensor as the C library computes it. exp in float64 rounded to float32
    is correctly rounded; glibc's expf errs by up to 0.502 ulp, so it can round the other way
    when the exact value lies within 0.002 ulp of a midpoint between two floats. Those few
    values (about 0.5%) are recomputed by the C library's expf itself."""
    exact = x.double().exp()
    out = exact.float()
    expf = _libm_expf()
    if expf is None:
        return out
    # rounding to float32 drops the low 29 of float64's 52 mantissa bits, and a midpoint
    # drops exactly 2^28: shift the window 2^28 +- w to [0, 2w) modulo 2^29, in place
    window = int(0.003 * (1 << 29))
    bits = exact.view(torch.int64).add_((1 << 29) - (1 << 28) + window).bitwise_and_((1 << 29) - 1)
    near_midpoint = bits < 2 * window
    near_midpoint |= out < 2.0 ** -126  # float32 subnormals sit on another grid
    where = near_midpoint.nonzero(as_tuple=True)
    if where[0].numel():
        out[where] = torch.tensor([expf(v) for v in x[where].tolist()], dtype=torch.float32)
    return out
