"""Loads the compiled extension and reports what it was built with."""
from __future__ import annotations

import json
from typing import Any, Dict

import torch

try:
    from augcore import _C  # noqa: F401  (importing registers torch.ops.augcore.*)
    _IMPORT_ERROR = None
except ImportError as exc:  # the package is usable for its pure-Python parts
    _C = None
    _IMPORT_ERROR = exc


def compiled_ops():
    """``torch.ops.augcore``; raises with the fix when the extension is missing."""
    if _C is None:
        raise RuntimeError(
            "augcore's compiled extension (augcore._C) is not built or failed to load: "
            f"{_IMPORT_ERROR}. Build it with `pip install -e . --no-build-isolation` "
            "(see README.md, 'Building')."
        )
    return torch.ops.augcore


def build_info() -> Dict[str, Any]:
    """What the extension was compiled with: CPU kernels, OpenMP threads, CUDA and its archs."""
    return json.loads(compiled_ops().build_info())


def check_device_supported(t: torch.Tensor, name: str) -> None:
    """Raises when a tensor lives on a device this build has no kernels for."""
    if t.device.type == "cpu":
        return
    if t.device.type == "cuda":
        if not build_info()["cuda"]:
            raise RuntimeError(
                f"{name} is on {t.device}, but augcore was built without CUDA kernels "
                "(build_info()['cuda'] is False): rebuild where nvcc is available, or pass CPU tensors"
            )
        return
    raise RuntimeError(f"{name} is on {t.device}: augcore has kernels for CPU and CUDA tensors only")
