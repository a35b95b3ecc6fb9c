"""Backend use: the selection ops take numpy arrays and any DLPack producer without a copy."""
import numpy as np
import torch

from augcore.ops import facility_location, grad_proxies, pairwise_distances
from augcore.ops._common import as_tensor


class DLPackOnly:
    """A foreign array (as JAX or CuPy hand out): only the DLPack protocol, backed by numpy."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def _inputs(n=120, c=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c)).astype(np.float32), rng.integers(0, c, n).astype(np.int64)


def test_numpy_and_dlpack_inputs_share_memory():
    x, _ = _inputs()
    for source in (x, DLPackOnly(x)):
        t = as_tensor(source, "x")
        assert t.data_ptr() == x.ctypes.data and t.dtype == torch.float32 and tuple(t.shape) == x.shape
    t = as_tensor(DLPackOnly(x), "x")
    x[0, 0] = 123.0  # a view, not a copy: writes show through
    assert float(t[0, 0]) == 123.0


def test_ops_give_the_same_answer_for_torch_numpy_and_dlpack_inputs():
    logits, labels = _inputs()
    ref = grad_proxies(torch.from_numpy(logits.copy()), torch.from_numpy(labels.copy()))
    for lg, lb in ((logits, labels), (DLPackOnly(logits), DLPackOnly(labels))):
        got = grad_proxies(lg, lb)
        assert torch.equal(got.errors, ref.errors) and torch.equal(got.loss, ref.loss)
        sel = facility_location(ref.errors.numpy(), 12, lb, method="lazy")
        want = facility_location(ref.errors, 12, torch.from_numpy(labels), method="lazy")
        assert torch.equal(sel.indices, want.indices) and torch.equal(sel.weights, want.weights)
        d = pairwise_distances(DLPackOnly(ref.errors.numpy()), lb)
        assert torch.equal(d.values, pairwise_distances(ref.errors, torch.from_numpy(labels)).values)


def test_strided_numpy_views_are_accepted():
    logits, labels = _inputs(n=240)
    view = logits[::2]  # non-contiguous: the op makes its own contiguous copy
    got = facility_location(view, 10, labels[::2], method="lazy")
    want = facility_location(np.ascontiguousarray(view), 10, labels[::2].copy(), method="lazy")
    assert torch.equal(got.indices, want.indices)
