"""The compiled extension reports what it contains, and refuses what it lacks."""
import pytest
import torch

import augcore


def test_build_info_describes_the_binary():
    info = augcore.build_info()
    assert info["cpu"] is True
    assert info["openmp_threads"] >= 1
    assert isinstance(info["cuda"], bool)
    if info["cuda"]:
        assert info["cuda_archs"]  # e.g. "80,90"
    for op in ("grad_proxies", "pairwise_sqdist", "facility_location"):
        assert hasattr(torch.ops.augcore, op)


def test_unsupported_device_is_named():
    x = torch.empty(4, 3, device="meta")
    with pytest.raises(RuntimeError, match="meta"):
        augcore.facility_location(x, 1)


def test_cpu_kernels_run_whatever_was_compiled():
    """A CUDA-enabled build must still import and run its CPU kernels on a machine with no GPU."""
    out = augcore.grad_proxies(torch.randn(3, 2), torch.tensor([0, 1, 1]))
    assert out.errors.shape == (3, 2) and out.errors.device.type == "cpu"
