"""augcore: pick the few training examples whose augmentation buys most of the gain.

The compiled selection core (``augcore._C``) is exposed through ``augcore.ops``;
the most used entry points are re-exported here.
"""
from augcore._build import build_info
from augcore.ops import (FacilityLocationResult, GroupedMatrices, Proxies, facility_location, grad_proxies,
                         normalize_weights, pairwise_distances, split_budget)

__version__ = "0.1.0"

__all__ = ["FacilityLocationResult", "GroupedMatrices", "Proxies", "build_info", "facility_location",
           "grad_proxies", "normalize_weights", "pairwise_distances", "split_budget", "__version__"]
