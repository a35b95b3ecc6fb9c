"""Wu et al. candidate scoring (augcore.train.candidates) against brute force, and in the loop."""
import copy
import csv
import json
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from augcore.data import ImageDataset
from augcore.data.datasets import _TensorImages
from augcore.data.wu2020 import Wu2020Augment
from augcore.seeds import derive_seed
from augcore.train import Trainer
from augcore.train.candidates import CandidateCopies, choose_candidates, score_candidates
from conftest import small_train_config


class SmallNet(nn.Module):
    """Conv + BatchNorm + dropout: eval mode and train mode give different outputs."""

    def __init__(self, pair=False, classes=3):
        super().__init__()
        self.pair = pair
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.5))
        self.fc = nn.Linear(24, classes)

    def forward(self, x):
        h = self.features(x)
        return (self.fc(h), h) if self.pair else self.fc(h)


def _trained_bn(model):
    """Non-trivial running statistics, then back to train mode."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 3, 8, 8) * 2 + 1)
    return model


def _brute_force_losses(model, images, soft):
    """Each candidate alone, float64, eval mode: -sum_c y_c log softmax(z)_c."""
    ref = copy.deepcopy(model).double().eval()
    out = []
    for x, y in zip(images.double(), soft.double()):
        z = ref(x[None])
        z = z[0] if isinstance(z, tuple) else z
        out.append(-(y[None] * F.log_softmax(z, dim=1)).sum())
    return torch.stack(out)


@pytest.mark.parametrize("pair", [False, True])
def test_one_pass_scores_equal_brute_force_and_freeze_bn(pair):
    torch.manual_seed(0)
    model = _trained_bn(SmallNet(pair=pair))
    images = torch.randn(24, 3, 8, 8)
    soft = torch.softmax(torch.randn(24, 3), dim=1)
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    losses = score_candidates(model, images, soft)
    assert model.training                                            # mode restored
    for k, v in model.state_dict().items():                          # running statistics untouched
        assert torch.equal(v, stats[k]), k
    expected = _brute_force_losses(model, images, soft)
    torch.testing.assert_close(losses.double(), expected, rtol=1e-5, atol=1e-6)
    # train-mode BN (batch statistics) would give other scores: the check above can fail
    with torch.no_grad():
        model.train()
        train_mode = -(soft * F.log_softmax(model(images)[0] if pair else model(images), 1)).sum(1)
    assert not torch.allclose(train_mode.double(), expected, atol=1e-3)


def test_max_choice_is_the_brute_force_argmax():
    torch.manual_seed(1)
    model = _trained_bn(SmallNet())
    k, per = 10, 4
    images, soft = torch.randn(k * per, 3, 8, 8), torch.softmax(torch.randn(k * per, 3) * 3, dim=1)
    chosen = choose_candidates(score_candidates(model, images, soft).view(k, per), "max")
    expected = _brute_force_losses(model, images, soft).view(k, per).argmax(1)
    assert torch.equal(chosen, expected)


def test_sampling_is_proportional_to_loss():
    losses = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 0.0]])
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(3, 4)
    draws = 4000
    for _ in range(draws):
        counts[torch.arange(3), choose_candidates(losses, "sample", gen)] += 1
    torch.testing.assert_close(counts[0] / draws, losses[0] / losses[0].sum(), atol=0.03, rtol=0)
    torch.testing.assert_close(counts[1] / draws, torch.full((4,), 0.25), atol=0.03, rtol=0)  # all zero: uniform
    assert counts[2, 1] == draws


def test_choose_rejects_bad_input():
    with pytest.raises(ValueError, match="choice"):
        choose_candidates(torch.ones(2, 3), "min")
    with pytest.raises(ValueError, match="non-negative"):
        choose_candidates(torch.tensor([[1.0, -1.0]]))


def _rgb_dataset(n=12):
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return ImageDataset(_TensorImages(images), torch.arange(n) % 3, ["a", "b", "c"], name="toy",
                        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def test_kept_copy_is_the_top_candidate_and_costs_are_counted():
    torch.manual_seed(2)
    model = _trained_bn(SmallNet())
    ds = _rgb_dataset()
    copies = CandidateCopies(Wu2020Augment(ds), per_example=4, choice="max")
    x, y = copies.make(model, [1, 5, 7], torch.Generator().manual_seed(9), device=torch.device("cpu"))
    # the same candidates again, scored one by one
    images, soft = Wu2020Augment(ds).candidates([1, 5, 7], 4, torch.Generator().manual_seed(9))
    best = _brute_force_losses(model, images, soft).view(3, 4).argmax(1)
    rows = torch.arange(3) * 4 + best
    assert torch.equal(x, images[rows]) and torch.equal(y, soft[rows])
    costs = copies.pop_costs()
    assert costs["candidate_copies"] == 3 and costs["candidate_forward_examples"] == 12
    assert costs["candidate_forward_seconds"] > 0 and costs["candidate_augment_seconds"] > 0
    assert copies.pop_costs()["candidate_copies"] == 0   # counters restart


def test_one_candidate_runs_no_scoring_pass():
    class Exploding(nn.Module):
        def forward(self, x):
            raise AssertionError("no forward pass expected")

    copies = CandidateCopies(Wu2020Augment(_rgb_dataset()), per_example=1)
    x, _ = copies.make(Exploding(), [0, 1], torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert x.shape[0] == 2 and copies.pop_costs()["candidate_forward_examples"] == 0


def test_in_the_loop_copies_are_scored_candidates_logged_per_epoch(small_digits, tmp_path):
    train, test = small_digits
    cfg = small_train_config({"mode": "random", "strong": "wu2020", "fraction": 0.25, "candidates": 3,
                              "candidate_choice": "max"}, schedule={"epochs": 2, "milestones": [1]})
    trainer = Trainer(cfg, train_set=train, test_set=test, out_dir=str(tmp_path))
    result = trainer.fit()
    for row in result.rows:
        assert row["candidate_copies"] == row["num_augmented"] == 32
        assert row["candidate_forward_examples"] == 3 * 32
        assert row["candidate_forward_seconds"] > 0
    with open(os.path.join(tmp_path, "metrics.csv")) as fh:
        assert int(next(csv.DictReader(fh))["candidate_forward_examples"]) == 96
    with open(os.path.join(tmp_path, "metrics.jsonl")) as fh:
        assert json.loads(fh.readline())["candidate_copies"] == 32

    # finish_batch: copy rows replaced by the top-loss candidate, soft targets; originals kept
    policy = trainer.policy
    view = policy.view
    rows = torch.tensor([0, 1, view.num_originals, view.num_originals + 1])
    batch = [view[int(r)] for r in rows]
    x = torch.stack([b[0] for b in batch])
    y = torch.tensor([b[1] for b in batch])
    idx = torch.tensor([b[3] for b in batch])
    is_aug = torch.tensor([b[4] for b in batch])
    assert is_aug.tolist() == [False, False, True, True]
    policy.begin_epoch(5)   # not a re-selection epoch (R = 2 ... 5 is odd): the selection stays
    new_x, targets = policy.finish_batch(x, y, idx, is_aug)
    assert torch.equal(new_x[:2], x[:2]) and torch.equal(targets[:2], F.one_hot(y[:2], 10).float())
    gen = torch.Generator().manual_seed(derive_seed(cfg.run.seed, 5, "wu2020/0/0"))
    images, soft = Wu2020Augment(train, num_comp=2).candidates(idx[2:].tolist(), 3, gen)
    best = _brute_force_losses_model(trainer.model, images, soft).view(2, 3).argmax(1)
    assert torch.equal(new_x[2:], images[torch.arange(2) * 3 + best])
    torch.testing.assert_close(targets[2:], soft[torch.arange(2) * 3 + best])


def _brute_force_losses_model(model, images, soft):
    ref = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        out = [ref(x[None].double()) for x in images]
    logits = torch.cat([o[0] if isinstance(o, tuple) else o for o in out])
    return -(soft.double() * F.log_softmax(logits, 1)).sum(1)


def test_config_keys_are_checked():
    from augcore.config import ConfigError
    with pytest.raises(ConfigError, match="augment.candidates"):
        small_train_config({"strong": "wu2020", "candidates": 0})
    with pytest.raises(ConfigError, match="augment.candidate_choice"):
        small_train_config({"strong": "wu2020", "candidate_choice": "min"})
    with pytest.raises(ConfigError, match="augment.wu2020_ops"):
        small_train_config({"strong": "wu2020", "wu2020_ops": 0})
    with pytest.raises(ConfigError, match="augment.strong.*learned augmentation"):
        small_train_config({"mode": "influence", "strong": "wu2020", "selector": {"augmenter": "learned"}})


class _Killed(Exception):
    pass


@pytest.mark.parametrize("mode", ["coreset", "max_loss_batch"])
def test_wu2020_runs_resume_bitwise(small_digits, tmp_path, mode):
    """Candidates are drawn from (seed, epoch, batch) generators: a killed run resumes exactly;
    max_loss_batch's per-step copies are scored candidates too."""
    train, test = small_digits
    cfg = small_train_config({"mode": mode, "strong": "wu2020", "fraction": 0.2, "reselect_every": 2},
                             schedule={"epochs": 2, "milestones": [1]})
    full = Trainer(cfg, train_set=train, test_set=test, out_dir=str(tmp_path / "full")).fit()

    def kill(trainer, epoch, row):
        raise _Killed()

    with pytest.raises(_Killed):
        Trainer(cfg, train_set=train, test_set=test, out_dir=str(tmp_path / "cut"), callbacks=[kill]).fit()
    torch.manual_seed(99)
    resumed = Trainer(cfg, train_set=train, test_set=test, out_dir=str(tmp_path / "cut")).fit(resume=True)

    def comparable(rows):
        return [{k: v for k, v in r.items() if not k.endswith("_time") and not k.endswith("_seconds")} for r in rows]
    assert comparable(resumed.rows) == comparable(full.rows)
    assert all(row["candidate_copies"] == row["num_augmented"] > 0 for row in full.rows)
