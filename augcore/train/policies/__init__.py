"""Selection policies: when to select and what to augment, selectable by name (``augment.mode``).

See ``augcore.train.policies.base`` for the interface and ``builtin`` for the list.
"""
from augcore.train.policies.base import (POLICIES, PolicyContext, SelectionEvent, SelectionPolicy, empty_selection,
                                         policy_options, register_policy)
from augcore.train.policies import builtin as _builtin  # noqa: F401  (registers the built-in policies)
from augcore.train.policies import influence as _influence  # noqa: F401
from augcore.train.policies import fixed as _fixed  # noqa: F401  (augment.mode: fixed)
from augcore.train.policies.builtin import MaxLossBatchPolicy, SelectorPolicy
from augcore.train.policies.influence import InfluencePolicy

__all__ = ["InfluencePolicy", "MaxLossBatchPolicy", "POLICIES", "PolicyContext", "SelectionEvent", "SelectionPolicy",
           "SelectorPolicy", "empty_selection", "policy_options", "register_policy"]
