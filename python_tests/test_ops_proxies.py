"""grad_proxies against the float64 reference, over shapes, dtypes and losses."""
import numpy as np
import pytest
import torch

import augcore
from augcore.ops.reference import reference_grad_proxies

TOL = {torch.float32: 2e-6, torch.float64: 2e-6, torch.float16: 2e-6, torch.bfloat16: 2e-6}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("loss", ["ce", "mse"])
@pytest.mark.parametrize("n,c", [(1, 1), (1, 3), (7, 2), (300, 10), (65, 100)])
def test_matches_float64_reference(dtype, loss, n, c):
    g = torch.Generator().manual_seed(n * 1000 + c)
    logits = (torch.randn(n, c, generator=g) * 3).to(dtype)
    labels = torch.randint(0, c, (n,), generator=g)
    emb = torch.randn(n, 5, generator=g).to(dtype)
    out = augcore.grad_proxies(logits, labels, embeddings=emb, loss=loss)
    # the reference sees exactly the (rounded) values the kernel saw
    e, l, esq, hsq = reference_grad_proxies(logits.double(), labels, loss, emb.double())
    assert out.errors.dtype == torch.float32 and out.errors.shape == (n, c)
    scale = 1 + l.abs().max().item()
    torch.testing.assert_close(out.errors.double(), e, atol=TOL[dtype] * 10, rtol=1e-5)
    torch.testing.assert_close(out.loss.double(), l, atol=TOL[dtype] * 10 * scale, rtol=1e-5)
    torch.testing.assert_close(out.error_sqnorm.double(), esq, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.embedding_sqnorm.double(), hsq, atol=1e-4, rtol=1e-5)


def test_ce_proxy_is_the_logit_gradient_of_the_loss():
    logits = torch.randn(20, 6, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 6, (20,))
    torch.nn.functional.cross_entropy(logits, labels, reduction="sum").backward()
    out = augcore.grad_proxies(logits.detach(), labels)
    torch.testing.assert_close(out.errors.double(), logits.grad, atol=1e-6, rtol=1e-6)


def test_extreme_logits_stay_finite():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-3e4, 3e4, 3e4]])
    out = augcore.grad_proxies(logits, torch.tensor([1, 0]))
    assert torch.isfinite(out.errors).all() and torch.isfinite(out.loss).all()
    # CE = logsumexp(z) - z_y, worked by hand: 1e4 - (-1e4) and (3e4 + ln 2) - (-3e4)
    expected = torch.tensor([2e4, 6e4 + np.log(2)], dtype=torch.float64)
    torch.testing.assert_close(out.loss.double(), expected, rtol=1e-6, atol=0)


def test_numpy_dlpack_and_non_contiguous_inputs():
    logits = torch.randn(10, 4)
    labels = torch.randint(0, 4, (10,))
    ref = augcore.grad_proxies(logits, labels)
    from_numpy = augcore.grad_proxies(logits.numpy(), labels.numpy())

    class DLPackOnly:  # what a JAX or CuPy array looks like to augcore
        def __init__(self, a):
            self.a = a

        def __dlpack__(self, **kw):
            return self.a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self.a.__dlpack_device__()

    from_dlpack = augcore.grad_proxies(DLPackOnly(logits.numpy()), DLPackOnly(labels.numpy()))
    strided = augcore.grad_proxies(logits.t().contiguous().t(), labels)
    for other in (from_numpy, from_dlpack, strided):
        assert torch.equal(other.errors, ref.errors) and torch.equal(other.loss, ref.loss)


@pytest.mark.parametrize("logits,labels,match", [
    (torch.randn(4), torch.zeros(4, dtype=torch.long), "2-D"),
    (torch.randint(0, 3, (4, 3)), torch.zeros(4, dtype=torch.long), "floating dtype"),
    (torch.randn(4, 3), torch.zeros(5, dtype=torch.long), r"shape \(4,\)"),
    (torch.randn(4, 3), torch.tensor([0, 1, 2, 3]), "out of range"),
    (torch.randn(4, 3), torch.tensor([0, 1, -1, 2]), ">= 0"),
    (torch.randn(4, 3), torch.zeros(4), "integer dtype"),
    (torch.tensor([[0.0, float("nan")], [1.0, 2.0]]), torch.tensor([0, 1]), "non-finite"),
])
def test_bad_inputs_raise_clear_errors(logits, labels, match):
    with pytest.raises((ValueError, TypeError), match=match):
        augcore.grad_proxies(logits, labels)


def test_unknown_loss_and_bad_embeddings():
    with pytest.raises(ValueError, match="loss must be"):
        augcore.grad_proxies(torch.randn(3, 2), torch.tensor([0, 1, 0]), loss="hinge")
    with pytest.raises(ValueError, match="expected 3 rows"):
        augcore.grad_proxies(torch.randn(3, 2), torch.tensor([0, 1, 0]), embeddings=torch.randn(4, 5))
    with pytest.raises(TypeError, match="expected a torch tensor"):
        augcore.grad_proxies("logits", torch.tensor([0]))
