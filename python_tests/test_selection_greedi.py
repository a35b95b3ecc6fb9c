"""GreeDi as a solver of the coreset selector (``CoresetSelector(greedi=True)``): one process,
two ranks through the strategy's ``select_by_class``, the coreset policy's option, and its refusals."""
import pytest
import torch
from conftest import small_train_config
from test_distributed import _launch

from augcore.config import ConfigError
from augcore.ops import split_budget
from augcore.selection import CoresetSelector, Selection, budget_from_fraction, random_stats


def _objective(points: torch.Tensor, picks: torch.Tensor) -> float:
    """Facility-location value of ``picks`` over ``points`` with exp(-d / D), float64 brute force."""
    x = points.double()
    sim = torch.exp(-torch.cdist(x, x) / x.shape[1])
    return float(sim[:, picks].max(1).values.sum()) if picks.numel() else 0.0


def _proxies(stats):
    return (torch.softmax(stats.logits.double(), 1)
            - torch.nn.functional.one_hot(stats.labels, stats.num_classes).double())


def test_one_process_greedi_is_at_least_centralised_greedy_per_class():
    stats = random_stats(240, 4, seed=3)
    greedi = CoresetSelector(0.1, greedi=True, method="lazy", weights="raw").select(stats, epoch=1, seed=2)
    plain = CoresetSelector(0.1, method="lazy", weights="raw").select(stats, epoch=1, seed=2)
    sizes = torch.bincount(stats.labels, minlength=4)
    expected = split_budget(sizes, budget_from_fraction(0.1, len(stats)), "proportional")
    assert torch.equal(greedi.budgets, expected) and greedi.info["greedi_ranks"] == 1
    proxies, labels = _proxies(stats), stats.labels
    for c in range(4):
        rows = (labels == c).nonzero().flatten()
        local = {int(i): j for j, i in enumerate(rows)}
        picks = torch.tensor([local[int(i)] for i in greedi.indices if int(i) in local])
        base = torch.tensor([local[int(i)] for i in plain.indices if int(i) in local])
        # m = 1: the returned set is the better of round 2 and the local greedy, on the full objective
        assert _objective(proxies[rows], picks) >= _objective(proxies[rows], base) - 1e-9
        # raw weights count the points each medoid represents: every point of the class once
        assert int(greedi.weights[labels[greedi.indices] == c].sum()) == rows.numel()


def _two_rank_worker(rank, world):
    from augcore.distributed import select_by_class_distributed

    stats = random_stats(200, 3, seed=5)
    selection = select_by_class_distributed(CoresetSelector(0.1, greedi=True, method="lazy", weights="raw"), stats,
                                            epoch=0, seed=4)
    return selection.to_state()


def test_a_collective_selector_is_not_sharded_by_class(monkeypatch):
    """Under DDP, select_by_class hands a GreeDi selector the whole stats on every rank (it shares
    every class itself) instead of a class shard; no collective of its own is run around it."""
    import augcore.distributed.selection as distributed_selection

    monkeypatch.setattr(distributed_selection, "rank_and_world", lambda: (1, 2))
    stats = random_stats(60, 3, seed=1)
    calls = []

    class Recording(CoresetSelector):
        def select(self, stats, epoch=0, seed=0, classes=None):
            calls.append(classes)
            return super().select(stats, epoch=epoch, seed=seed, classes=classes)

    got = distributed_selection.select_by_class_distributed(Recording(0.2, greedi=True), stats, epoch=1, seed=3)
    assert calls == [None]
    assert torch.equal(got.indices, CoresetSelector(0.2, greedi=True).select(stats, epoch=1, seed=3).indices)


@pytest.mark.long
def test_two_ranks_share_every_class_and_agree(tmp_path):
    """A collective selector runs on every rank through the strategy's select_by_class (not sharded by class)."""
    a, b = (Selection.from_state(state) for state in _launch(tmp_path, _two_rank_worker))
    assert torch.equal(a.indices, b.indices) and torch.equal(a.weights, b.weights)
    assert a.info["greedi_ranks"] == 2
    stats = random_stats(200, 3, seed=5)
    sizes = torch.bincount(stats.labels, minlength=3)
    assert torch.equal(a.budgets, split_budget(sizes, budget_from_fraction(0.1, 200), "proportional"))
    assert torch.equal(torch.bincount(stats.labels[a.indices], weights=a.weights.double(), minlength=3).long(),
                       sizes)


def test_greedi_option_checks_name_the_key():
    with pytest.raises(ValueError, match="greedi: preset='reference'"):
        CoresetSelector(0.1, preset="reference", greedi=True)
    with pytest.raises(ValueError, match="greedi supports proxy='logits' with similarity='exp'"):
        CoresetSelector(0.1, similarity="craig", greedi=True)
    with pytest.raises(TypeError, match="greedi"):
        CoresetSelector(0.1, greedi="yes")
    with pytest.raises(ValueError, match="classes"):
        CoresetSelector(0.1, greedi=True).select(random_stats(40, 2), classes=torch.tensor([0]))
    with pytest.raises(ConfigError, match=r"augment\.selector\.greedi: preset='reference'"):
        small_train_config({"mode": "coreset", "selector": {"greedi": True, "preset": "reference"}})


def test_coreset_policy_with_greedi_trains(small_digits):
    from augcore.train import Trainer

    cfg = small_train_config({"mode": "coreset", "fraction": 0.2, "selector": {"greedi": True}},
                             schedule={"epochs": 1, "milestones": []})
    train, test = small_digits
    torch.manual_seed(0)
    trainer = Trainer(cfg, train_set=train, test_set=test)
    trainer.fit()
    selection = trainer.policy.selection
    assert selection.info["greedi_ranks"] == 1
    assert len(selection) == budget_from_fraction(0.2, len(train))
