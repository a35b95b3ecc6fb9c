"""Selection policies in the loop: each against an independent reference, exact resume for
every policy, a policy added without touching the loop, and typed config errors."""
import json

import pytest
import torch
from conftest import small_train_config

from augcore.config import ConfigError
from augcore.selection import Selection
from augcore.train import POLICIES, SelectionPolicy, Trainer, register_policy


@pytest.fixture
def digits(small_digits):
    return small_digits


def _config(**sections):
    augment = {"mode": "coreset", "fraction": 0.2, **sections.pop("augment", {})}
    return small_train_config(augment, **sections)


def _trainer(cfg, digits, **kw):
    train, test = digits
    torch.manual_seed(0)
    return Trainer(cfg, train_set=train, test_set=test, **kw)


def _spy_selections(trainer):
    """Records (stats, selection) of every re-selection the policy makes."""
    seen = []
    select = trainer.policy.select

    def spy(epoch, stats):
        selection = select(epoch, stats)
        seen.append((epoch, stats, selection))
        return selection
    trainer.policy.select = spy
    return seen


def test_max_loss_reselects_the_global_top_b_every_r_epochs(digits):
    cfg = _config(augment={"mode": "max_loss", "fraction": 0.2, "reselect_every": 2},
                  schedule={"epochs": 5, "milestones": []})
    trainer = _trainer(cfg, digits)
    seen = _spy_selections(trainer)
    rows = trainer.fit().rows
    assert [epoch for epoch, _, _ in seen] == [0, 2, 4] == trainer.selection_epochs
    n = len(digits[0])
    budget = round(0.2 * n)
    for epoch, stats, selection in seen:
        losses = stats.losses.double().tolist()
        brute = sorted(range(n), key=lambda i: (-losses[i], i))[:budget]   # global, ties to the smaller row
        assert selection.indices.tolist() == [int(stats.indices[i]) for i in brute]
        assert torch.equal(selection.weights, torch.ones(budget))
    # the same selection is trained on between re-selections: B copies every epoch (not per batch)
    assert [r["num_augmented"] for r in rows] == [budget] * 5
    assert [r["overlap_previous"] is not None for r in rows] == [False, False, True, False, True]


def test_random_policy_runs_no_inference_pass(digits, monkeypatch):
    import augcore.selection as selection_pkg
    import augcore.selection.inference as inference

    def forbidden(*args, **kwargs):
        raise AssertionError("the random policy must not run an inference pass")
    monkeypatch.setattr(inference, "collect_stats", forbidden)
    monkeypatch.setattr(selection_pkg, "collect_stats", forbidden)
    cfg = _config(augment={"mode": "random", "reselect_every": 1})
    trainer = _trainer(cfg, digits)
    seen = _spy_selections(trainer)
    result = trainer.fit()
    assert result.inference_passes == 0
    assert all(r["inference_time"] == 0.0 for r in result.rows)
    assert trainer.selection_epochs == [0, 1, 2]
    budget = round(0.2 * len(digits[0]))
    for epoch, stats, selection in seen:
        assert len(selection) == budget and torch.unique(selection.indices).numel() == budget
    # fresh draws per epoch, reproducible from (seed, epoch)
    assert not torch.equal(seen[0][2].indices, seen[1][2].indices)


def test_coreset_policy_matches_the_selector_on_the_same_stats(digits):
    from augcore.selection import CoresetSelector
    cfg = _config(augment={"mode": "coreset", "selector": {"method": "lazy"}})
    trainer = _trainer(cfg, digits)
    seen = _spy_selections(trainer)
    trainer.fit()
    for epoch, stats, selection in seen:
        direct = CoresetSelector(0.2, method="lazy").select(stats, epoch=epoch, seed=0)
        assert torch.equal(selection.indices, direct.indices)
        # the policy logs the overlap with the max-loss set of the same size (the paper's Fig. 7)
    record = trainer.history.records[-1]
    stats, selection = seen[-1][1], seen[-1][2]
    top = torch.sort(stats.losses, descending=True, stable=True).indices[:len(selection)]
    expected = torch.isin(selection.indices, stats.indices[top]).double().mean().item()
    assert record["overlap_max_loss"] == pytest.approx(expected)


@pytest.mark.parametrize("mode", ["slow_learnable", "misclassified", "high_loss"])
def test_other_selector_policies_match_their_selector(digits, mode):
    from augcore.selection import build_selector
    cfg = _config(augment={"mode": mode, "reselect_every": 2}, schedule={"epochs": 2, "milestones": []})
    trainer = _trainer(cfg, digits)
    seen = _spy_selections(trainer)
    trainer.fit()
    assert [e for e, _, _ in seen] == [0]
    _, stats, selection = seen[0]
    kwargs = {} if mode in ("slow_learnable", "misclassified") else {"fraction": 0.2}
    direct = build_selector(mode, **kwargs).select(stats, epoch=0, seed=0)
    assert torch.equal(selection.indices, direct.indices)


def test_random_subset_setting_redraws_the_subset_and_selects_from_all_data(digits):
    cfg = _config(augment={"mode": "random", "train_on": "random_subset", "random_subset_fraction": 0.5,
                           "reselect_every": 1}, schedule={"epochs": 3, "milestones": []})
    trainer = _trainer(cfg, digits)
    subsets, picks = [], []
    trainer.callbacks.append(lambda t, e, r: (subsets.append(t.policy.subset.clone()),
                                              picks.append(t.selection.indices.clone())))
    trainer.fit()
    n = len(digits[0])
    assert all(s.numel() == n // 2 for s in subsets)
    assert not torch.equal(subsets[0], subsets[1]) and not torch.equal(subsets[1], subsets[2])
    # the copies come from all data, so some lie outside the epoch's training subset
    assert any(not bool(torch.isin(p, s).all()) for p, s in zip(picks, subsets))
    fixed = _trainer(_config(augment={"mode": "random", "train_on": "random_subset", "random_subset_fraction": 0.5,
                                      "reselect_every": 1, "random_subset_redraw": False, "select_from": "subset"},
                             schedule={"epochs": 2, "milestones": []}), digits)
    kept = []
    fixed.callbacks.append(lambda t, e, r: kept.append((t.policy.subset.clone(), t.selection.indices.clone())))
    fixed.fit()
    assert torch.equal(kept[0][0], kept[1][0])
    assert all(bool(torch.isin(p, s).all()) for s, p in kept)


def test_in_epoch_statistics_replace_the_inference_pass_after_epoch_0(digits):
    from augcore.selection import CoresetSelector
    cfg = _config(augment={"mode": "coreset", "stats": "in_epoch", "reselect_every": 1},
                  schedule={"epochs": 3, "milestones": []})
    trainer = _trainer(cfg, digits)
    seen = _spy_selections(trainer)
    recorded = []
    model_forward = trainer.model.forward

    def recording_forward(x):   # an independent record of what training computed, in train mode
        logits, embedding = model_forward(x)
        if trainer.model.training and torch.is_grad_enabled():
            recorded.append(logits.detach().clone())
        return logits, embedding
    trainer.model.forward = recording_forward
    result = trainer.fit()
    assert result.inference_passes == 1                          # epoch 0 only
    assert [r["inference_time"] > 0 for r in result.rows] == [True, False, False]
    train = digits[0]
    for epoch, stats, selection in seen[1:]:
        assert torch.equal(stats.indices, torch.arange(len(train)))  # every original exactly once
        assert torch.equal(stats.labels, train.targets)
        direct = CoresetSelector(0.2).select(stats, epoch=epoch, seed=0)
        assert torch.equal(selection.indices, direct.indices)
    # the stats of the selection at epoch 1 are logits that epoch 0's training steps computed
    steps = len(trainer._loader(trainer.policy.view, 0))
    epoch0 = torch.cat(recorded[:steps])
    stats1 = seen[1][1]
    assert all(bool((epoch0 == row).all(1).any()) for row in stats1.logits)


def test_influence_policy_holds_out_validation_and_selects_lowest_scores(digits):
    from augcore.influence.selector import InfluenceSelector
    cfg = _config(augment={"mode": "influence", "fraction": 0.1, "reselect_every": 2,
                           "selector": {"val_fraction": 0.2}}, schedule={"epochs": 2, "milestones": []})
    trainer = _trainer(cfg, digits)
    seen = _spy_selections(trainer)
    rows = trainer.fit().rows
    policy = trainer.policy
    n = len(digits[0])
    assert policy.val_rows.numel() + policy.train_rows.numel() == n
    assert rows[0]["train_examples"] == policy.train_rows.numel() + len(trainer.selection)
    _, stats, selection = seen[0]
    assert not bool(torch.isin(selection.indices, policy.val_rows).any())
    assert torch.equal(stats.indices.sort().values, policy.train_rows)
    # the same choice recomputed from scratch (the model is the epoch-0 model only at epoch 0, so
    # compare scores' order on the recorded stats with an independent selector instance)
    val_stats = trainer.stats.model_stats(policy.val_rows)
    layer = trainer.model.classifier
    scores, _, _ = InfluenceSelector(layer.weight, layer.bias, val_stats, 0.1).scores(stats)
    assert len(selection) == round(0.1 * len(stats))
    assert set(selection.indices.tolist()) <= set(stats.indices.tolist())
    assert scores.numel() == len(stats)


def test_influence_policy_learns_the_augmentation_and_resumes_it(digits, tmp_path):
    from augcore.influence.transforms import ImageAugmenter
    options = {"val_fraction": 0.2, "augmenter": "learned", "augmenter_epochs": 2}
    cfg = _config(augment={"mode": "influence", "fraction": 0.1, "reselect_every": 1, "selector": options},
                  schedule={"epochs": 2, "milestones": []})
    trainer = _trainer(cfg, digits, out_dir=str(tmp_path / "full"))
    initial = {k: v.clone() for k, v in trainer.policy.augmenter.state_dict().items()}
    trainer.fit()
    learned = trainer.policy.augmenter
    assert isinstance(learned, ImageAugmenter)
    assert any(not torch.equal(initial[k], v) for k, v in learned.state_dict().items())   # E was trained
    view = trainer.policy.view
    row = view.num_originals   # the first strong copy
    index = int(view.dataset_indices[row])
    torch.manual_seed(7)
    copy = view[row][0]
    torch.manual_seed(7)
    expected = learned(trainer.parts.weak(trainer.train_base.image(index)).unsqueeze(0))[0][0]
    torch.testing.assert_close(copy, expected.detach())

    class Killed(Exception):
        pass

    def kill(t, epoch, row):
        raise Killed()
    cut = _trainer(cfg, digits, out_dir=str(tmp_path / "cut"), callbacks=[kill])
    with pytest.raises(Killed):
        cut.fit()
    resumed = _trainer(cfg, digits, out_dir=str(tmp_path / "cut"))
    resumed.fit(resume=True)
    for k, v in learned.state_dict().items():
        assert torch.equal(resumed.policy.augmenter.state_dict()[k], v), k
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k


def test_influence_runs_end_to_end_from_the_shipped_config(tmp_path):
    from augcore.apps.cli import main
    out = tmp_path / "influence"
    assert main(["train", "--config", "digits_influence", "--out", str(out), "--set", "schedule.epochs=1",
                 "--set", "run.progress=false"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["policy"] == "influence" and result["inference_passes"] >= 1
    history = json.loads((out / "selection_history.json").read_text())
    assert history["records"][0]["method"] == "influence"


class _Killed(Exception):
    pass


@pytest.mark.parametrize("mode", sorted(POLICIES))
def test_every_policy_resumes_bitwise_after_a_kill(digits, tmp_path, mode):
    if mode == "first_k":   # registered by another test of this module
        pytest.skip("test-local policy")
    extra = {}
    if mode == "fixed":   # trains with a saved Selection
        Selection(indices=torch.arange(0, 40, 3), weights=torch.ones(14), method="max_loss").save(tmp_path / "s.pt")
        extra = {"selection_file": str(tmp_path / "s.pt")}
    cfg = _config(augment={"mode": mode, "reselect_every": 2, "fraction": 0.2, **extra},
                  schedule={"epochs": 3, "milestones": [2]})
    full = _trainer(cfg, digits, out_dir=str(tmp_path / "full"))
    reference = full.fit()

    def kill_after_epoch_0(trainer, epoch, row):
        if epoch == 0:
            raise _Killed()

    first = _trainer(cfg, digits, out_dir=str(tmp_path / "cut"), callbacks=[kill_after_epoch_0])
    with pytest.raises(_Killed):
        first.fit()
    torch.manual_seed(123)  # another initial model: the checkpoint must restore everything
    resumed = Trainer(cfg, train_set=digits[0], test_set=digits[1], out_dir=str(tmp_path / "cut"))
    result = resumed.fit(resume=True)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    timing = ("selection_time", "selector_time", "epoch_time", "inference_time")

    def comparable(rows):  # timings differ between runs; NaN (empty selections' weights) != NaN
        return [{k: ("nan" if v != v else v) for k, v in r.items() if k not in timing} for r in rows]
    assert comparable(result.rows) == comparable(reference.rows)
    assert torch.equal(resumed.history.counts, full.history.counts)


def test_a_new_policy_plugs_in_without_touching_the_loop(digits):
    @register_policy("first_k")
    class FirstK(SelectionPolicy):
        """Augments the first K dataset rows (a stand-in for a user's policy)."""
        needs_model_stats = False

        def select(self, epoch, stats):
            k = round(self.ctx.augment.fraction * len(stats))
            return Selection(indices=stats.indices[:k].clone(), weights=torch.ones(k), method=self.name, epoch=epoch)

    try:
        cfg = _config(augment={"mode": "first_k", "reselect_every": 1}, schedule={"epochs": 2, "milestones": []})
        trainer = _trainer(cfg, digits)
        rows = trainer.fit().rows
        k = round(0.2 * len(digits[0]))
        assert torch.equal(trainer.selection.indices, torch.arange(k))
        assert [r["num_augmented"] for r in rows] == [k, k]
    finally:
        POLICIES.pop("first_k")


@pytest.mark.parametrize("section, key, value, message", [
    ("augment", "selector", {"eps": 2.0}, r"augment\.selector\.eps"),
    ("augment", "selector", {"method": 3}, r"augment\.selector\.method: expected a string"),
    ("augment", "selector", {"epsilon": 0.1}, r"augment\.selector\.epsilon"),
    ("augment", "mode", "maxloss", r"augment\.mode"),
    ("augment", "stats", "in_epoch_x", r"augment\.stats"),
    ("schedule", "gamma", -0.1, r"schedule\.gamma"),
    ("schedule", "min_lr", -1.0, r"schedule\.min_lr"),
    ("data", "image_size", 0, r"data\.image_size"),
    ("data", "imbalance_factor", float("inf"), r"data\.imbalance_factor"),
])
def test_config_errors_name_the_key(section, key, value, message):
    with pytest.raises(ConfigError, match=message):
        _config(**{section: {key: value}})


@pytest.mark.parametrize("override, message", [
    ("optim.lr=[1, 2", r"--set optim\.lr: the value"),
    ("optim=3", r"dotted"),
    ("optim.lr.x=3", r"optim\.lr is"),
    ("augment.selector.eps=2", r"augment\.selector\.eps"),
    ("lr", r"expected KEY=VALUE"),
])
def test_malformed_set_values_name_the_key(override, message):
    from augcore.train import load_config
    with pytest.raises(ConfigError, match=message):
        load_config("digits_demo", [override])


def _cli(argv):
    """(exit code, stderr lines) of ``augcore argv``, argparse exits included."""
    from augcore.apps.cli import main
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv", [
    ["train", "--config", "digits_demo", "--set", "optim.lr=[1,"],
    ["train", "--config", "digits_demo", "--set", "optim=3"],
    ["train", "--config", "digits_demo", "--set", "augment=3"],
    ["train", "--config", "no_such_config"],
    ["train", "--mode", "maxloss"],
    ["demo", "--seeds", "0"],
    ["select", "--checkpoint", "missing.pt", "--out", "x.pt", "--fraction", "2"],
])
def test_cli_errors_are_one_line_with_exit_2(argv, capsys):
    assert _cli(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("options", [{"method": "lazy"}, {"method": "stochastic"}, {"preset": "reference"},
                                     {"method": "lazy", "budget_split": "equal", "weights": "raw"}])
def test_class_sharded_coreset_pieces_merge_to_the_full_selection(options):
    """What each DDP rank solves (its classes, the global budgets), merged, is the one-process selection."""
    from augcore.distributed import merge_class_selections
    from augcore.selection import CoresetSelector, random_stats
    stats = random_stats(600, 7, seed=3)
    selector = CoresetSelector(0.1, **options)
    full = selector.select(stats, epoch=2, seed=5)
    for world in (2, 3):
        pieces = [selector.select(stats, epoch=2, seed=5, classes=torch.arange(r, 7, world)) for r in range(world)]
        merged = merge_class_selections(pieces, stats, weighting=selector.weights)
        order = torch.argsort(stats.labels[full.indices], stable=True)   # the full selection in class order
        assert torch.equal(merged.indices, full.indices[order])
        torch.testing.assert_close(merged.weights, full.weights[order])
        assert torch.equal(merged.budgets, torch.bincount(stats.labels[full.indices], minlength=7))


def test_import_augcore_reaches_every_subpackage_lazily():
    import subprocess
    import sys
    code = ("import sys, augcore\n"
            "eager = sorted(m for m in sys.modules if m.startswith('augcore.') and m.split('.')[1] in "
            "('selection', 'train', 'data', 'generate', 'influence', 'distributed', 'models'))\n"
            "assert not eager, eager\n"
            "assert augcore.selection.CoresetSelector(0.1).fraction == 0.1\n"
            "assert augcore.train.Trainer and augcore.generate and augcore.influence and augcore.distributed\n"
            "assert 'selection' in dir(augcore)\n")
    subprocess.run([sys.executable, "-c", code], check=True)
