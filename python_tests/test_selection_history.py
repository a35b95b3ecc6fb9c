"""SelectionHistory bookkeeping against Python sets and counters; the selector factory."""
import collections
import csv
import json
import os

import pytest
import torch

from augcore.selection import (SELECTORS, CoresetSelector, MaxLossSelector, RandomSelector, Selection,
                               SelectionHistory, SlowLearnableSelector, build_selector, random_stats)


def random_selection(n, k, seed, epoch):
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(n, generator=gen)[:k]
    return Selection(indices=idx, weights=torch.rand(k, generator=gen) + 0.5, method="random", epoch=epoch,
                     timings={"total": 0.01})


def test_counts_never_selected_and_overlaps_match_sets(tmp_path):
    n = 200
    history = SelectionHistory(n)
    counter, previous = collections.Counter(), None
    for t in range(6):
        sel = random_selection(n, 30 + 5 * t, seed=t, epoch=t)
        max_loss = torch.randperm(n, generator=torch.Generator().manual_seed(100 + t))[:40]
        record = history.update(sel, max_loss_indices=max_loss)
        current = set(sel.indices.tolist())
        counter.update(current)
        assert torch.equal(history.counts, torch.tensor([counter[i] for i in range(n)]))
        assert history.never_selected_fraction() == (n - len(counter)) / n
        ml = set(max_loss.tolist())
        assert record["overlap_max_loss"] == len(current & ml) / len(current)
        assert record["jaccard_max_loss"] == len(current & ml) / len(current | ml)
        if previous is None:
            assert history.overlap_with_previous() is None
        else:
            assert history.overlap_with_previous() == len(current & previous) / len(current)
            assert record["jaccard_previous"] == len(current & previous) / len(current | previous)
        previous = current
        assert record["weight_min"] == pytest.approx(float(sel.weights.min()))
    assert history.num_updates == 6
    torch.testing.assert_close(history.selection_frequency(), history.counts.double() / 6)

    path = tmp_path / "run" / "selection_history.json"
    history.save(path)
    assert sorted(os.listdir(path.parent)) == ["selection_history.json"]  # no temp file left behind
    loaded = SelectionHistory.load(path)
    assert torch.equal(loaded.counts, history.counts) and loaded.records == history.records
    # a resumed run keeps measuring overlap with the last selection before the save
    nxt = random_selection(n, 30, seed=50, epoch=6)
    assert loaded.update(nxt)["overlap_previous"] == len(set(nxt.indices.tolist()) & previous) / 30
    assert json.loads(path.read_text())["num_examples"] == n

    csv_path = tmp_path / "history.csv"
    history.save_csv(csv_path)
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 6 and rows[0]["overlap_previous"] == ""
    assert float(rows[3]["overlap_max_loss"]) == pytest.approx(history.records[3]["overlap_max_loss"])


def test_history_with_real_selectors_and_max_loss_selection():
    stats = random_stats(500, 5, seed=2)
    history = SelectionHistory(500)
    coreset, max_loss = RandomSelector(0.2), MaxLossSelector(0.2)
    for epoch in range(3):
        sel = coreset.select(stats, epoch=epoch)
        ml = max_loss.select(stats, epoch=epoch)
        history.update(sel, max_loss_indices=ml)
    assert history.overlap_with_max_loss() == len(set(sel.indices.tolist()) & set(ml.indices.tolist())) / 100


def test_history_errors(tmp_path):
    with pytest.raises(ValueError, match="num_examples"):
        SelectionHistory(0)
    history = SelectionHistory(10)
    with pytest.raises(ValueError, match=r"must lie in \[0, 10\)"):
        history.update(Selection(torch.tensor([3, 10]), torch.ones(2), "random"))
    with pytest.raises(FileNotFoundError, match="no selection history"):
        SelectionHistory.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ValueError, match="unsupported SelectionHistory format"):
        SelectionHistory.load(bad)


def test_build_selector():
    builtin = {"coreset", "random", "max_loss", "slow_learnable", "misclassified", "high_loss"}
    assert builtin <= set(SELECTORS) <= builtin | {"influence"}  # influence registers when augcore.influence loads
    selector = build_selector("coreset", fraction=0.3, method="lazy", weights="unit")
    assert isinstance(selector, CoresetSelector) and selector.greedy == "lazy" and selector.fraction == 0.3
    assert isinstance(build_selector("slow_learnable", features="logits"), SlowLearnableSelector)
    for name, cls in SELECTORS.items():
        if name == "influence":
            continue
        kwargs = {} if name in ("slow_learnable", "misclassified") else {"fraction": 0.1}
        assert type(build_selector(name, **kwargs)) is cls
    with pytest.raises(ValueError, match="handled by the trainer"):
        build_selector("none")
    with pytest.raises(ValueError, match="unknown selector 'kcenter'"):
        build_selector("kcenter")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['fractoin'\]"):
        build_selector("random", fractoin=0.1)
    with pytest.raises(TypeError, match=r"needs option\(s\) \['fraction'\]"):
        build_selector("max_loss")
