"""An eps whose 1/eps overflows (subnormal, below ~5.6e-309) gets a clear error naming eps instead of
a negative sample size (a crash on the CPU, an out-of-bounds write on the GPU); eps just above the
limit still runs (sample size clamped to n)."""
import pytest
import torch

from augcore.ops import facility_location


def test_tiny_eps_is_rejected_clearly():
    x = torch.randn(30, 4)
    labels = torch.zeros(30, dtype=torch.long)
    with pytest.raises(ValueError, match="eps"):
        facility_location(x, 5, labels, method="stochastic", eps=1e-310)
    ptr = torch.tensor([0, 30])
    with pytest.raises(ValueError, match="eps = .* too small"):
        torch.ops.augcore.facility_location(x, None, None, ptr, torch.tensor([5]), 0, 10.0, 1.0, 2, 1e-310, 0, 0,
                                            1 << 30, 0)
    res = facility_location(x, 5, labels, method="stochastic", eps=1e-300)  # sample size clamped to n: naive's picks
    naive = facility_location(x, 5, labels, method="naive")
    assert torch.equal(res.indices, naive.indices)
