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


# --- the fixed order and polynomials shared with the CUDA kernel (csrc/common/softmax.h) -------------
F32 = np.float32


def np_exp_nonpositive(x):
    """csrc/common/exp.h in numpy float32, operation for operation."""
    x = np.where(x < F32(-87.0), F32(-87.0), x).astype(F32)
    fn = np.floor(x * F32(1.44269504088896341) + F32(0.5))
    x = x - fn * F32(0.693359375) + fn * F32(2.12194440e-4)
    y = np.full_like(x, F32(1.9875691500e-4))
    for coef in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
        y = y * x + F32(coef)
    y = y * x * x + x + F32(1.0)
    return y * ((fn.astype(np.int32) + 127) << 23).view(F32)


def np_log_at_least_one(x):
    """csrc/common/softmax.h's log_at_least_one in numpy float32, operation for operation."""
    bits = np.asarray(x, F32).view(np.int32)
    e = ((bits >> 23) & 0xFF) - 126
    f = ((bits & 0x007FFFFF) | 0x3F000000).view(F32)
    low = f < F32(0.707106781186547524)
    e = np.where(low, e - 1, e)
    f = np.where(low, f + f - F32(1.0), f - F32(1.0)).astype(F32)
    z = f * f
    y = np.full_like(f, F32(7.0376836292e-2))
    for coef in (-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
                 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1):
        y = y * f + F32(coef)
    y = y * f * z
    fe = e.astype(F32)
    y = y + F32(-2.12194440e-4) * fe
    y = y + F32(-0.5) * z
    f = f + y
    return f + F32(0.693359375) * fe


def np_lane_order_sum(terms):
    """Row sums in the warp order: term c to lane c % 32 in increasing c, then a halving tree."""
    lanes = np.zeros((terms.shape[0], 32), terms.dtype)
    for c in range(terms.shape[1]):
        lanes[:, c % 32] += terms[:, c]
    width = 16
    while width:
        lanes[:, :width] = lanes[:, :width] + lanes[:, width:2 * width]
        width //= 2
    return lanes[:, 0]


def np_grad_proxies(z, y, acc, loss):
    """The kernels' algorithm in numpy: accumulation dtype `acc`, exp/ln always the float32 polynomials."""
    z = z.astype(acc)
    target = np.zeros_like(z)
    target[np.arange(len(y)), y] = 1
    if loss == "mse":
        v = z - target
        sq = np_lane_order_sum(v * v)
        return v.astype(F32), (sq / acc(2)).astype(F32), sq.astype(F32)
    zmax = z.max(axis=1) + acc(0)
    t = np_exp_nonpositive((z - zmax[:, None]).astype(F32)).astype(acc)
    total = np_lane_order_sum(t)
    v = t / total[:, None] - target
    sq = np_lane_order_sum(v * v)
    per_example = np_log_at_least_one(total.astype(F32)).astype(acc) + (zmax - z[np.arange(len(y)), y])
    return v.astype(F32), per_example.astype(F32), sq.astype(F32)


@pytest.mark.parametrize("dtype,acc", [(torch.float32, np.float32), (torch.float16, np.float32),
                                       (torch.float64, np.float64)])
@pytest.mark.parametrize("loss", ["ce", "mse"])
@pytest.mark.parametrize("n,c", [(1, 1), (50, 10), (40, 33), (30, 100), (8, 1000)])
def test_cpu_proxies_follow_the_fixed_order_bit_for_bit(dtype, acc, loss, n, c):
    """The CPU kernel is the reference the CUDA kernel matches bit for bit (bench/gpu_sanitize_driver.py
    checks that on a GPU): here it must equal an independent numpy emulation of the same order and
    polynomials exactly, which a libm exp/log or a sequential sum would not."""
    g = torch.Generator().manual_seed(n * 7 + c)
    logits = (torch.randn(n, c, generator=g) * 4).to(dtype)
    labels = torch.randint(0, c, (n,), generator=g)
    emb = torch.randn(n, 70, generator=g).to(dtype)
    out = augcore.grad_proxies(logits, labels, embeddings=emb, loss=loss)
    e, l, esq = np_grad_proxies(logits.numpy(), labels.numpy(), acc, loss)
    h = emb.numpy().astype(acc)
    for got, want in ((out.errors, e), (out.loss, l), (out.error_sqnorm, esq),
                      (out.embedding_sqnorm, np_lane_order_sum(h * h).astype(F32))):
        np.testing.assert_array_equal(got.numpy().view(np.int32), want.view(np.int32))


def test_fixed_order_emulation_discriminates_order_and_libm():
    """The bit-for-bit test above can fail: a sequential sum with numpy's exp and log (the old CPU
    kernel's arithmetic) gives other bits on a sizeable share of the rows."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2000, 100, generator=g) * 4
    labels = torch.randint(0, 100, (2000,), generator=g)
    out = augcore.grad_proxies(logits, labels)
    z = logits.numpy()
    t = np.exp(z - z.max(axis=1, keepdims=True))
    total = np.zeros(len(z), F32)
    for col in range(z.shape[1]):
        total += t[:, col]
    sequential_loss = (np.log(total) + z.max(axis=1) - z[np.arange(len(z)), labels.numpy()]).astype(F32)
    assert (sequential_loss != out.loss.numpy()).mean() > 0.05


def test_cpu_proxies_within_a_few_ulp_of_float64():
    """Accuracy of the shared polynomials and order against float64: every softmax probability
    p = e + onehot within 4 float32 ulp of float64's, every loss within 4 ulp plus 2^-22
    (ln of the denominator, a value in [0, ln C], carries an absolute error of a few ulp of 1).
    Inputs cover z - max z down to -90 (exp_nonpositive clamps at -87: below that p is 1.6e-38
    instead of a subnormal, an absolute error under 2e-38)."""
    g = torch.Generator().manual_seed(11)
    logits = torch.cat([torch.randn(3000, 10, generator=g) * 5, torch.rand(300, 10, generator=g) * -90])
    labels = torch.randint(0, 10, (len(logits),), generator=g)
    out = augcore.grad_proxies(logits, labels)
    e64, l64, _, _ = reference_grad_proxies(logits.double(), labels, "ce")
    onehot = torch.nn.functional.one_hot(labels, 10).double()
    e, e64 = out.errors.double().numpy(), e64.numpy()
    target = onehot.bool().numpy()
    p64 = e64 + target
    d = (logits - logits.max(1, keepdim=True).values).double().abs().numpy()  # exp's condition number
    ulp = lambda v: np.spacing(np.abs(v).astype(F32)).astype(np.float64)  # noqa: E731
    err = np.abs(e - e64)
    assert (err[~target] <= ((4 + d) * ulp(p64) + 2e-38)[~target]).all()
    assert (err[target] <= (4 * (ulp(p64) + ulp(e64)))[target]).all()
    l = out.loss.double().numpy()
    ulp_l = ulp(l64.numpy())
    assert (np.abs(l - l64.numpy()) <= 4 * ulp_l + 2.0 ** -22).all()
