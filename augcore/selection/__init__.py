"""Selectors: one inference pass over the training set in, a ``Selection`` out.

``collect_stats`` runs the pass; ``CoresetSelector``, ``RandomSelector``,
``MaxLossSelector``, ``SlowLearnableSelector``, ``MisclassifiedSelector`` and
``HighLossSelector`` turn its ``InferenceStats`` into a ``Selection``;
``SelectionHistory`` keeps the bookkeeping across re-selections. See
docs/selection.md.
"""
from augcore.seeds import derive_seed
from augcore.selection._common import budget_from_fraction, unit_selection, validate_stats
from augcore.selection.base import InferenceStats, Selection, Selector
from augcore.selection.baselines import HighLossSelector, MaxLossSelector, MisclassifiedSelector, RandomSelector
from augcore.selection.coreset import CoresetSelector
from augcore.selection.factory import build_selector
from augcore.selection.history import SelectionHistory
from augcore.selection.inference import StatsAccumulator, base_indices, collect_stats, find_classifier
from augcore.selection.kmeans import KMeansResult, batched_kmeans
from augcore.selection.selector import SELECTORS, BaseSelector, Picks
from augcore.selection.slow_learnable import SlowLearnableSelector
from augcore.selection.synthetic import random_stats

__all__ = ["BaseSelector", "CoresetSelector", "HighLossSelector", "InferenceStats", "KMeansResult", "MaxLossSelector",
           "MisclassifiedSelector", "Picks", "RandomSelector", "SELECTORS", "Selection", "SelectionHistory", "Selector",
           "SlowLearnableSelector", "StatsAccumulator", "base_indices", "batched_kmeans", "budget_from_fraction",
           "build_selector", "collect_stats", "derive_seed", "find_classifier", "random_stats", "unit_selection",
           "validate_stats"]
