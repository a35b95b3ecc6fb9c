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
    assert "grad_proxies" in dir(torch.ops.augcore)


def test_unsupported_device_is_named():
    x = torch.empty(4, 3, device="meta")
    with pytest.raises(RuntimeError, match="meta"):
        augcore.facility_location(x, 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a CPU-only machine gives")
def test_cuda_build_imports_and_runs_cpu_kernels_without_a_gpu():
    out = augcore.grad_proxies(torch.randn(3, 2), torch.tensor([0, 1, 1]))
    assert out.errors.shape == (3, 2)
