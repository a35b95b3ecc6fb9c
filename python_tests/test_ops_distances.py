"""Within-group distances against explicit float64 computations."""
import pytest
import torch

import augcore
from augcore.ops.reference import explicit_last_layer_gradients, reference_sqdist


def _random_problem(n, d, groups, seed, h=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) * 0.5
    labels = torch.randint(0, groups, (n,), generator=g)
    emb = None if h is None else torch.randn(n, h, generator=g)
    return x, labels, emb


@pytest.mark.parametrize("n,d,groups", [(1, 3, 1), (2, 1, 1), (50, 10, 3), (300, 7, 5), (129, 33, 2)])
@pytest.mark.parametrize("exact,bias", [(False, 1), (True, 1), (True, 0)])
def test_matches_reference_per_group(n, d, groups, exact, bias):
    x, labels, emb = _random_problem(n, d, groups, seed=n + d, h=6 if exact else None)
    out = augcore.pairwise_distances(x, labels, embeddings=emb, bias=bias, squared=True, num_groups=groups)
    for g in range(groups):
        members = (labels == g).nonzero().flatten()
        assert torch.equal(out.members(g), members)
        block = out.block(g)
        ref = reference_sqdist(x[members], None if emb is None else emb[members], bias)
        # factored float32 distances lose relative precision near 0 only
        torch.testing.assert_close(block.double(), ref, atol=2e-4 * (1 + ref.abs().max().item()), rtol=1e-4)
        assert torch.equal(block, block.t()), "d(i, j) must equal d(j, i) exactly"
        assert torch.all(block.diagonal() == 0), "d(i, i) must be exactly 0"


def test_factored_identity_is_the_explicit_gradient_inner_product():
    """<g_i, g_j> = <e_i, e_j>(<h_i, h_j> + b): the identity the factored kernels rely on."""
    e, h = torch.randn(9, 4, dtype=torch.float64), torch.randn(9, 5, dtype=torch.float64)
    for bias in (0, 1):
        gr = explicit_last_layer_gradients(e, h, bias)
        torch.testing.assert_close(gr @ gr.t(), (e @ e.t()) * (h @ h.t() + bias))


def test_unsquared_and_empty_groups():
    x, labels, _ = _random_problem(40, 4, 2, seed=1)
    out = augcore.pairwise_distances(x, labels, num_groups=4)
    assert out.block(2).shape == (0, 0) and out.block(3).shape == (0, 0)
    members = out.members(1)
    ref = torch.cdist(x[members].double(), x[members].double())
    torch.testing.assert_close(out.block(1).double(), ref, atol=1e-5, rtol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="2-D"):
        augcore.pairwise_distances(torch.randn(5))
    with pytest.raises(ValueError, match="non-finite"):
        augcore.pairwise_distances(torch.tensor([[0.0], [float("inf")]]))
    with pytest.raises(ValueError, match="expected 3 rows"):
        augcore.pairwise_distances(torch.randn(3, 2), embeddings=torch.randn(2, 2))
