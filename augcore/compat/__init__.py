"""Drop-in replacements for the facility-location parts of submodlib and apricot.

``augcore.compat.submodlib.FacilityLocationFunction`` and
``augcore.compat.apricot.FacilityLocationSelection`` take the same arguments and
return the same picks and gains as the originals (same similarity conventions,
same tie rules) but run on augcore's compiled kernel. Swapping the import is the
whole migration; see docs/compat.md.

The two submodules are imported on use only; neither needs submodlib or apricot.
"""
__all__ = ["apricot", "submodlib"]
