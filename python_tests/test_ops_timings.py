"""facility_location timings are wall-clock seconds (issue 17, item 5).

"similarity" and "greedy" are the kernel's two phases; when groups are solved
concurrently on several threads their thread times overlap, and summing them would
exceed the wall-clock time of the call. Wall-clock parts add up to at most the whole.
"""
import time

import pytest
import torch

import augcore

SLACK = 1e-9  # float rounding of the proportional split


@pytest.mark.parametrize("groups,mode", [(1, "dense"), (1, "on_the_fly"), (8, "dense"), (8, "on_the_fly")])
def test_parts_are_wall_clock_and_add_up_to_at_most_the_total(groups, mode):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2400, 6, generator=g)
    labels = torch.arange(2400) % groups  # 8 groups: solved concurrently when there are >= 2 threads
    start = time.perf_counter()
    res = augcore.facility_location(x, 300, labels, mode=mode, method="lazy")
    outside = time.perf_counter() - start
    t = dict(res.timings)
    assert set(t) == {"prepare", "similarity", "greedy", "kernel", "total"}
    assert all(v >= 0 for v in t.values())
    assert t["similarity"] + t["greedy"] <= t["kernel"] + SLACK
    assert t["prepare"] + t["kernel"] <= t["total"] + SLACK
    assert t["total"] <= outside
    assert t["greedy"] > 0


def test_precomputed_similarity_counts_as_greedy_time():
    sim = torch.rand(300, 300, generator=torch.Generator().manual_seed(1))
    res = augcore.facility_location(None, 30, similarity=sim, method="naive")
    assert res.timings["similarity"] == 0.0
    assert 0 < res.timings["greedy"] <= res.timings["kernel"] + SLACK
