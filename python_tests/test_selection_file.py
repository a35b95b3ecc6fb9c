"""augment.mode: fixed with augment.selection_file: a saved Selection trained with for the whole run
(the one-shot max-loss baseline of Kuchnik & Smith)."""
import torch
import pytest

from augcore.config import ConfigError
from augcore.selection.base import Selection
from augcore.train import Trainer
from conftest import small_train_config


def _fixed_config(path, **augment):
    return small_train_config({"mode": "fixed", "selection_file": str(path), "reselect_every": 1, **augment},
                              schedule={"epochs": 3, "milestones": [2]})


def test_training_augments_exactly_the_saved_selection_every_epoch(small_digits, tmp_path):
    train, test = small_digits
    picked = torch.tensor([3, 17, 40, 41, 99, 120])
    path = tmp_path / "maxloss.pt"
    Selection(indices=picked, weights=torch.full((6,), 2.0), method="max_loss").save(path)
    seen = []

    def record(trainer, epoch, row):
        view = trainer.policy.view
        seen.append(view.dataset_indices[view.num_originals:].sort().values)

    trainer = Trainer(_fixed_config(path, weighting="gamma"), train_set=train, test_set=test, callbacks=[record])
    result = trainer.fit()
    assert len(seen) == 3
    for copies in seen:
        assert torch.equal(copies, picked)              # the same examples, every epoch, never re-selected
    assert [row["selection_size"] for row in result.rows] == [6, 6, 6]
    assert trainer.selection.method == "fixed:max_loss"
    assert torch.equal(trainer.policy.view.weights[trainer.policy.view.num_originals:], torch.full((6,), 2.0))
    assert trainer.history.num_updates == 1 and int(trainer.history.counts.sum()) == 6
    assert trainer.stats.passes == 0                     # no inference pass: nothing is selected


def test_selection_written_by_augcore_select_is_used(small_digits, tmp_path):
    from augcore.apps.checkpoint_selection import select_from_checkpoint

    train, test = small_digits
    first = small_train_config({"mode": "none"}, schedule={"epochs": 1, "milestones": []},
                               data={"name": "digits"})
    Trainer(first, out_dir=str(tmp_path / "first")).fit()
    selection = select_from_checkpoint(str(tmp_path / "first" / "checkpoint.pt"), method="max_loss", fraction=0.05)
    selection.save(tmp_path / "sel.pt")
    trainer = Trainer(_fixed_config(tmp_path / "sel.pt"))
    copies = trainer.policy.view.dataset_indices[trainer.policy.view.num_originals:]
    assert torch.equal(copies.sort().values, selection.indices.sort().values)


def test_without_the_feature_the_key_is_refused_or_unused(tmp_path):
    path = tmp_path / "s.pt"
    Selection(indices=torch.tensor([0, 1]), weights=torch.ones(2), method="max_loss").save(path)
    with pytest.raises(ConfigError, match="augment.selection_file"):
        small_train_config({"mode": "coreset", "selection_file": str(path)})
    with pytest.raises(ConfigError, match="augment.selection_file"):
        small_train_config({"mode": "fixed"})


@pytest.mark.filterwarnings("ignore:.*no checksum")
@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("corrupt", "not a readable Selection"),
    ("range", "does not fit this training set of 128"),
    ("assignment", "selected from 500 examples"),
])
def test_a_file_that_does_not_fit_is_refused(small_digits, tmp_path, case, message):
    train, test = small_digits
    path = tmp_path / "s.pt"
    if case == "corrupt":
        path.write_bytes(b"not a torch file")
    elif case == "range":
        Selection(indices=torch.tensor([5, 128]), weights=torch.ones(2), method="max_loss").save(path)
    elif case == "assignment":
        Selection(indices=torch.tensor([5]), weights=torch.ones(1), method="coreset",
                  assignment=torch.full((500,), 5)).save(path)
    with pytest.raises(ConfigError, match=f"augment.selection_file.*{message}"):
        Trainer(_fixed_config(path), train_set=train, test_set=test)


def test_a_fixed_run_can_be_selected_from_again(small_digits, tmp_path):
    from augcore.apps.checkpoint_selection import select_from_checkpoint

    Selection(indices=torch.tensor([1, 2, 3]), weights=torch.ones(3), method="max_loss").save(tmp_path / "s.pt")
    cfg = small_train_config({"mode": "fixed", "selection_file": str(tmp_path / "s.pt")},
                             schedule={"epochs": 1, "milestones": []}, data={"name": "digits"})
    Trainer(cfg, out_dir=str(tmp_path / "run")).fit()
    selection = select_from_checkpoint(str(tmp_path / "run" / "checkpoint.pt"), method="random", fraction=0.01)
    assert len(selection) == round(0.01 * 1437)
