from augcore.ops.budgets import normalize_weights, split_budget
from augcore.ops.distances import GroupedMatrices, pairwise_distances
from augcore.ops.facility_location import FacilityLocationResult, facility_location
from augcore.ops.proxies import Proxies, grad_proxies

__all__ = ["FacilityLocationResult", "GroupedMatrices", "Proxies", "facility_location", "grad_proxies",
           "normalize_weights", "pairwise_distances", "split_budget"]
