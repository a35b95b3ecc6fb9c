"""Triton kernels for CUDA tensors (also runnable on the CPU under ``TRITON_INTERPRET=1``).

``facility_location_triton`` is the stepwise, all-groups-per-launch greedy with a fused
distance + similarity + marginal-gain reduction; ``augcore.ops.facility_location(...,
backend="triton")`` routes to it. The compiled CUDA op (one launch runs every step) is
the default backend for CUDA tensors; see docs/gpu.md for when each is used.
"""
from augcore.ops.triton.facility_location import facility_location_triton, fisher_yates_targets

__all__ = ["facility_location_triton", "fisher_yates_targets"]
