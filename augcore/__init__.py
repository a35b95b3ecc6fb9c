"""augcore: pick the few training examples whose augmentation buys most of the gain.

The compiled selection core (``augcore._C``) is exposed through ``augcore.ops``; the
most used entry points are re-exported here. The subpackages (``augcore.selection``,
``augcore.train``, ``augcore.data``, ``augcore.models``, ``augcore.generate``,
``augcore.influence``, ``augcore.distributed``, ``augcore.compat``,
``augcore.integrations``) are imported on first use, so ``import augcore`` stays fast.
"""
import importlib

from augcore._build import build_info
from augcore.ops import (FacilityLocationResult, GroupedMatrices, Proxies, facility_location, grad_proxies,
                         normalize_weights, pairwise_distances, split_budget)

__version__ = "0.1.0"

_SUBPACKAGES = ("apps", "checks", "compat", "config", "configs", "data", "distributed", "generate", "influence",
                "integrations", "io", "models", "ops", "selection", "train")

__all__ = ["FacilityLocationResult", "GroupedMatrices", "Proxies", "build_info", "facility_location",
           "grad_proxies", "normalize_weights", "pairwise_distances", "split_budget", "__version__",
           *_SUBPACKAGES]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        module = importlib.import_module(f"augcore.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'augcore' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))
