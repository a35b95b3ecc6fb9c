"""Selectors by name, for YAML configs and callbacks: ``build_selector(name, **options)``."""
from __future__ import annotations

import inspect
from typing import Any

# the built-in selectors register themselves in SELECTORS when their modules are imported
from augcore.selection import baselines, coreset, slow_learnable  # noqa: F401
from augcore.selection.base import Selector
from augcore.selection.selector import SELECTORS


def build_selector(name: str, **kwargs: Any) -> Selector:
    """``build_selector("coreset", fraction=0.3, method="lazy")``; names are the keys of
    ``SELECTORS``. "none" (no selection) is the trainer's business, not a selector."""
    if name not in SELECTORS:
        hint = {"none": " ('none' means no selection and is handled by the trainer)",
                "influence": " ('influence' registers when augcore.influence is imported)"}.get(name, "")
        raise ValueError(f"unknown selector {name!r}{hint}; choose one of {sorted(SELECTORS)}")
    cls = SELECTORS[name]
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = {p: spec for p, spec in inspect.signature(cls).parameters.items() if spec.kind in named}
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise TypeError(f"selector {name!r} got unknown option(s) {unknown}; it accepts {sorted(params)}")
    missing = [p for p, spec in params.items() if spec.default is inspect.Parameter.empty and p not in kwargs]
    if missing:
        raise TypeError(f"selector {name!r} needs option(s) {missing}")
    return cls(**kwargs)
