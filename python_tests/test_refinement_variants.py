"""The refinement paper's variants (issue 22, item 4): refinement with its own LR schedule, gradual
weakening of the strong augmentation before refinement, the clean-data training loss; exact resume."""
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import small_train_config

from augcore.config import ConfigError
from augcore.data.transforms import eval_transform, weak_transform
from augcore.train import LRSchedule, RefinementPlan, Trainer
from augcore.train.config import load_config


def _trainer(cfg, digits, **kw):
    train, test = digits
    return Trainer(cfg, train_set=train, test_set=test, **kw)


# ---------------------------------------------------------------------------- the plan

def test_refinement_schedules_start_at_the_given_lr_and_decay_over_m_epochs():
    step = LRSchedule("multistep", 0.1, 6, milestones=[3])
    constant = RefinementPlan.build(step, True, 4, lr=0.05)
    assert [constant.refine_lr(e, s, 3) for e in range(6, 10) for s in range(3)] == [0.05] * 12
    cosine = RefinementPlan.build(step, True, 4, lr=0.05, refine_schedule="cosine", min_lr=0.001)
    for e in range(6, 10):
        for s in range(3):
            t = (e - 6 + s / 3) / 4
            assert cosine.refine_lr(e, s, 3) == pytest.approx(0.001 + 0.049 * 0.5 * (1 + math.cos(math.pi * t)))
    multistep = RefinementPlan.build(step, True, 4, lr=0.08, refine_schedule="multistep", milestones=[1, 3],
                                     gamma=0.5)
    assert [multistep.refine_lr(e) for e in range(6, 10)] == pytest.approx([0.08, 0.04, 0.04, 0.02])
    last = RefinementPlan.build(step, True, 2, "last", lr=0.02, refine_schedule="multistep", milestones=[1])
    assert [last.refine_lr(e) for e in (4, 5)] == pytest.approx([0.02, 0.002])
    with pytest.raises(ValueError, match="not a refinement epoch"):
        cosine.refine_lr(5)


@pytest.mark.parametrize("enabled, mode", [(True, "extra"), (True, "last"), (False, "extra")])
def test_strength_falls_linearly_over_the_weakening_epochs(enabled, mode):
    plan = RefinementPlan.build(LRSchedule("constant", 0.1, 8), enabled, 2, mode, weaken_epochs=3)
    end = plan.first_refine_epoch if enabled else plan.total_epochs
    expected = [1.0] * (end - 3) + [3 / 4, 2 / 4, 1 / 4] + [0.0] * (plan.total_epochs - end)
    assert [plan.strength(e) for e in range(plan.total_epochs)] == pytest.approx(expected)
    none = RefinementPlan.build(LRSchedule("constant", 0.1, 8), enabled, 2, mode)
    assert all(none.strength(e) == (0.0 if none.is_refining(e) else 1.0) for e in range(none.total_epochs))


@pytest.mark.parametrize("override, key", [
    ("refinement.schedule=step", "refinement.schedule"),
    ("refinement.milestones=[10]", "refinement.milestones"),   # schedule constant
    ("refinement.gamma=0", "refinement.gamma"),
    ("refinement.min_lr=-1", "refinement.min_lr"),
    ("refinement.weaken_epochs=-1", "refinement.weaken_epochs"),
    ("refinement.weaken_epochs=200", "refinement.weaken_epochs"),
    ("run.clean_loss=1", "run.clean_loss"),
])
def test_refinement_variant_errors_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])
    with pytest.raises(ConfigError, match=r"refinement\.milestones"):
        load_config(None, ["refinement.enabled=true", "refinement.epochs=4", "refinement.schedule=multistep",
                           "refinement.milestones=[4]"])
    with pytest.raises(ConfigError, match=r"refinement\.weaken_epochs.*wu2020"):
        load_config(None, ["augment.strong=wu2020", "refinement.weaken_epochs=2"])


# ---------------------------------------------------------------------------- the loop

def test_refinement_epochs_follow_their_own_schedule(small_digits):
    cfg = small_train_config(schedule={"epochs": 2, "milestones": [1]},
                             refinement={"enabled": True, "epochs": 3, "lr": 0.04, "schedule": "multistep",
                                         "milestones": [1, 2], "gamma": 0.5})
    rows = _trainer(cfg, small_digits).fit().rows
    assert [r["phase"] for r in rows] == ["augment"] * 2 + ["refine"] * 3
    assert [r["lr"] for r in rows[2:]] == pytest.approx([0.04, 0.02, 0.01])
    cosine = small_train_config(schedule={"epochs": 1, "milestones": []},
                                refinement={"enabled": True, "epochs": 2, "lr": 0.04, "schedule": "cosine"})
    rows = _trainer(cosine, small_digits).fit().rows
    steps = math.ceil(len(small_digits[0]) / 32)   # the row's lr is the epoch's last step's
    for e, row in enumerate(rows[1:]):
        t = (e + (steps - 1) / steps) / 2
        assert row["lr"] == pytest.approx(0.02 * (1 + math.cos(math.pi * t)))


class _CountingStrong:
    """A strong transform that counts its calls (and returns the weak image)."""

    def __init__(self, weak):
        self.weak, self.calls = weak, 0

    def __call__(self, image):
        self.calls += 1
        return self.weak(image)


def test_weakening_lowers_the_share_of_strong_copies_and_the_mixing(small_digits):
    train, _ = small_digits
    n = len(train)
    cfg = small_train_config(augment={"mode": "full", "batch_aug": "mixup", "mix_alpha": 0.8},
                             schedule={"epochs": 4, "milestones": []},
                             refinement={"enabled": True, "epochs": 1, "weaken_epochs": 2})
    weak = weak_transform(train)
    strong = _CountingStrong(weak)
    calls = []

    def record(trainer, epoch, row):
        calls.append(strong.calls)
        strong.calls = 0

    trainer = _trainer(cfg, small_digits, transforms=(weak, strong), callbacks=[record])
    rows = trainer.fit().rows
    strengths = [1.0, 1.0, 2 / 3, 1 / 3, 0.0]
    assert [r["augment_strength"] for r in rows] == pytest.approx(strengths)
    assert calls[:2] == [n, n] and calls[4] == 0   # every copy strong, then refinement has none
    for count, s in zip(calls[2:4], strengths[2:4]):
        assert abs(count - s * n) < 4.5 * math.sqrt(n * s * (1 - s))   # Binomial(n, s)
    assert all(r["train_examples"] == 2 * n for r in rows[:4])   # weakened copies stay, weak
    alphas = [trainer._batch_mix(e) for e in range(5)]
    assert [m.alpha for m in alphas[:4]] == pytest.approx([0.8 * s for s in strengths[:4]]) and alphas[4] is None
    cutmix = small_train_config(augment={"batch_aug": "cutmix"}, schedule={"epochs": 4, "milestones": []},
                                refinement={"weaken_epochs": 3})
    mixes = [_trainer(cutmix, small_digits)._batch_mix(e) for e in range(4)]
    assert [m.prob for m in mixes] == pytest.approx([0.5, 0.375, 0.25, 0.125])
    assert all(m.alpha == 1.0 for m in mixes)


def test_clean_loss_matches_a_brute_force_loop_and_leaves_training_unchanged(small_digits):
    train, _ = small_digits
    cfg = small_train_config(augment={"batch_aug": "cutmix", "strong": "autoaugment"},
                             schedule={"epochs": 2, "milestones": []}, run={"clean_loss": True})
    torch.manual_seed(0)
    trainer = _trainer(cfg, small_digits)
    rows = trainer.fit().rows
    model = trainer.model.eval().double()
    to_input = eval_transform(train)
    losses, correct = [], 0
    with torch.no_grad():
        for i in range(len(train)):
            logits = model(to_input(train.image(i)).double().unsqueeze(0))[0]
            label = int(train.targets[i])
            losses.append(float(F.cross_entropy(logits, torch.tensor([label]))))
            correct += int(logits.argmax(1)) == label
    assert rows[-1]["train_loss_clean"] == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    assert rows[-1]["train_acc_clean"] == pytest.approx(100 * correct / len(train))
    assert all(0 < r["train_loss_clean"] for r in rows)

    off = small_train_config(augment={"batch_aug": "cutmix", "strong": "autoaugment"},
                             schedule={"epochs": 2, "milestones": []})
    torch.manual_seed(0)
    plain = _trainer(off, small_digits)
    plain_rows = plain.fit().rows
    assert "train_loss_clean" not in plain_rows[-1]
    trainer.model.float()
    for key, value in plain.model.state_dict().items():
        assert torch.equal(value, trainer.model.state_dict()[key]), key


class _Killed(Exception):
    pass


def test_resume_is_exact_with_every_variant(small_digits, tmp_path):
    cfg = small_train_config(augment={"batch_aug": "manifold_mixup", "strong": "perturb", "batch_aug_prob": 0.7},
                             schedule={"epochs": 3, "milestones": [2]}, run={"clean_loss": True},
                             refinement={"enabled": True, "epochs": 2, "lr": 0.03, "schedule": "cosine",
                                         "weaken_epochs": 2})
    torch.manual_seed(0)
    full = _trainer(cfg, small_digits, out_dir=str(tmp_path / "full"))
    reference = full.fit()

    def kill(trainer, epoch, row):
        if epoch == 1:
            raise _Killed()

    torch.manual_seed(0)
    with pytest.raises(_Killed):
        _trainer(cfg, small_digits, out_dir=str(tmp_path / "cut"), callbacks=[kill]).fit()
    torch.manual_seed(99)
    resumed = _trainer(cfg, small_digits, out_dir=str(tmp_path / "cut"))
    result = resumed.fit(resume=True)
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    timing = ("selection_time", "selector_time", "epoch_time", "inference_time")
    assert [{k: v for k, v in r.items() if k not in timing} for r in result.rows] == \
        [{k: v for k, v in r.items() if k not in timing} for r in reference.rows]
    assert [r["augment_strength"] for r in result.rows] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0, 0.0])
