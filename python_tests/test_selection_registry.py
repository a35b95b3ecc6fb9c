"""One registry style (augcore.registry.Registry) for selectors, policies and models, and the
BaseSelector that validates, times and assembles every selector's Selection."""
import pytest
import torch

from augcore.registry import Registry
from augcore.selection import SELECTORS, BaseSelector, InferenceStats, Picks, random_stats


def test_registering_sets_the_name_and_refuses_a_second_entry_under_a_taken_name():
    registry = Registry("widget", name_attribute="label")

    @registry.register("a")
    class A:
        pass

    assert registry["a"] is A and A.label == "a"
    assert registry.register("a")(A) is A  # the same entry again is harmless
    with pytest.raises(ValueError, match="a widget named 'a' is already registered \\(A\\)"):
        registry.register("a")(type("B", (), {}))
    with pytest.raises(TypeError, match="non-empty string"):
        registry.register("")


def test_selectors_policies_and_models_share_the_registry():
    import augcore.influence  # noqa: F401  (registers the influence selector)
    from augcore.influence import InfluenceSelector
    from augcore.models import MODELS
    from augcore.train import POLICIES

    assert all(isinstance(r, Registry) for r in (SELECTORS, POLICIES, MODELS))
    assert SELECTORS["influence"] is InfluenceSelector and InfluenceSelector.method == "influence"
    assert all(cls.method == name for name, cls in SELECTORS.items())
    assert all(cls.name == name for name, cls in POLICIES.items())
    assert MODELS["small_cnn"](10, 1, 8)(torch.zeros(2, 1, 8, 8))[0].shape == (2, 10)


class _EveryOther(BaseSelector):
    method = "every_other"

    def pick(self, stats, *, epoch, seed):
        rows = torch.arange(0, len(stats), 2)
        medoid = (torch.arange(len(stats)) // 2) * 2   # each odd row represented by the even row before it
        return Picks(rows, weights=torch.full((rows.numel(),), 2.0), assignment=medoid, timings={"pick": 0.5},
                     info={"note": "x"})


def test_base_selector_assembles_dataset_indices_weights_budgets_and_timings():
    stats = random_stats(10, 3, seed=2)
    stats = InferenceStats(stats.logits, stats.labels, stats.losses, stats.indices + 100)   # dataset indices
    selection = _EveryOther().select(stats, epoch=4)
    assert selection.indices.tolist() == [100, 102, 104, 106, 108] and selection.epoch == 4
    assert selection.method == "every_other" and selection.weights.tolist() == [2.0] * 5
    assert selection.assignment.tolist() == [100, 100, 102, 102, 104, 104, 106, 106, 108, 108]
    assert selection.budgets.tolist() == torch.bincount(stats.labels[::2], minlength=3).tolist()
    assert list(selection.timings) == ["pick", "total"] and selection.timings["total"] >= 0
    assert selection.info == {"fraction": 0.5, "note": "x"}
    bad = InferenceStats(stats.logits, stats.labels, stats.losses.clone().fill_(float("nan")), stats.indices)
    with pytest.raises(ValueError, match="stats.losses contains 10 non-finite"):
        _EveryOther().select(bad)


@pytest.mark.parametrize("selector, embedded", [({}, False), ({"proxy": "last_layer"}, True)])
def test_a_policy_asks_the_inference_pass_for_embeddings_only_when_its_selector_reads_them(small_digits, selector,
                                                                                           embedded):
    from conftest import small_train_config

    from augcore.train import Trainer

    cfg = small_train_config({"mode": "coreset", "fraction": 0.2, "selector": selector},
                             schedule={"epochs": 1, "milestones": []})
    train, test = small_digits
    trainer = Trainer(cfg, train_set=train, test_set=test)
    seen = []
    select = trainer.policy.select
    trainer.policy.select = lambda epoch, stats: seen.append(stats) or select(epoch, stats)
    trainer.fit()
    assert len(seen) == 1 and (seen[0].embeddings is not None) == embedded


def test_the_callbacks_reselector_collects_embeddings_when_its_selector_reads_them(small_digits):
    from augcore.integrations._core import Reselector
    from augcore.models import build_model

    train, _ = small_digits
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, in_channels=1, image_size=8)
    for options, size in (({"features": "embeddings"}, None), ({"fraction": 0.25}, 32)):
        name = "slow_learnable" if "features" in options else "coreset"
        reselector = Reselector(train, selector=name, strong="cutout", **options)
        reselector.begin_epoch(model, 0, "cpu")
        selection = reselector.selections[-1]
        assert reselector.dataset.selection is selection and (size is None or len(selection) == size)
