"""A coreset selection validates its inputs once, at the selector: the ops it calls take the
validated tensors through their unchecked entries, while the public ops keep their own checks."""
import collections
import sys

import pytest
import torch

import augcore
from augcore.checks import check_finite
from augcore.ops._common import check_labels, segments_from_groups
from augcore.ops.budgets import split_budget
from augcore.seeds import derive_seed
from augcore.selection import CoresetSelector
from augcore.selection.synthetic import random_stats


def _calls(fn, watched):
    """How often each function in ``watched`` is entered while ``fn`` runs, with the name its
    ``name`` argument gave (check_finite) or the tensors its ``finite`` argument listed."""
    codes = {f.__code__: f.__name__ for f in watched}
    seen = collections.Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            name = codes[frame.f_code]
            local = frame.f_locals
            detail = local.get("name") if name == "check_finite" else (
                len(local["finite"]) if name == "segments_from_groups" else None)
            seen[(name, detail)] += 1

    sys.setprofile(profile)
    try:
        result = fn()
    finally:
        sys.setprofile(None)
    return result, seen


@pytest.mark.parametrize("proxy", ["logits", "last_layer"])
@pytest.mark.parametrize("classes", [None, torch.tensor([1, 3])])
def test_one_coreset_selection_runs_each_check_once(proxy, classes):
    stats = random_stats(300, 5, embedding_dim=6, seed=1)
    selector = CoresetSelector(0.2, proxy=proxy)
    selection, seen = _calls(lambda: selector.select(stats, epoch=2, seed=3, classes=classes),
                             [split_budget, check_finite, check_labels, segments_from_groups])
    checked = {"stats.losses", "stats.logits"} | ({"stats.embeddings"} if proxy == "last_layer" else set())
    assert seen == collections.Counter({("split_budget", None): 1, ("segments_from_groups", 0): 1,
                                        **{("check_finite", name): 1 for name in checked}})
    # the same picks as the public ops, which check everything again
    budgets = split_budget(torch.bincount(stats.labels, minlength=5), 60, "proportional")
    if classes is not None:
        budgets = torch.where(torch.isin(torch.arange(5), classes), budgets, torch.zeros_like(budgets))
    proxies = augcore.grad_proxies(stats.logits, stats.labels).errors
    expected = augcore.facility_location(proxies, budgets, stats.labels, num_groups=5,
                                         seed=derive_seed(3, 2, "coreset"),
                                         embeddings=stats.embeddings if proxy == "last_layer" else None)
    picked = expected.indices[expected.weights > 0]   # the selector drops zero-weight picks
    assert selection.indices.tolist() == stats.indices[picked].tolist()


def test_public_ops_still_check_their_inputs():
    stats = random_stats(40, 3, embedding_dim=4, seed=0)
    logits = stats.logits.clone()
    logits[5, 1] = float("nan")
    with pytest.raises(ValueError, match="logits"):
        augcore.grad_proxies(logits, stats.labels)
    with pytest.raises(ValueError, match="labels"):
        augcore.grad_proxies(stats.logits, torch.full_like(stats.labels, 7))
    proxies = augcore.grad_proxies(stats.logits, stats.labels).errors
    bad = proxies.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="proxies"):
        augcore.facility_location(bad, 5, stats.labels)
    with pytest.raises(ValueError, match="budget"):
        augcore.facility_location(proxies, 41, stats.labels)
    with pytest.raises(ValueError, match="groups"):
        augcore.facility_location(proxies, 5, stats.labels - 1)
