"""Trainer: schedules, refinement switch, weighted loss, exact resume, max-loss steps."""
import math

import pytest
import torch
from conftest import small_train_config

from augcore.train import (LRSchedule, RefinementPlan, Trainer, per_example_cross_entropy,
                           weighted_cross_entropy)


# ---------------------------------------------------------------------------- schedules

def test_multistep_schedule_with_warmup_matches_formula():
    s = LRSchedule("multistep", 0.1, 10, warmup_epochs=2, milestones=[5, 8], gamma=0.2)
    steps = 4
    for epoch in range(10):
        for step in range(steps):
            progress = epoch + step / steps
            if progress < 2:
                expected = 0.1 * (progress + 1 / steps) / 2
            else:
                expected = 0.1 * 0.2 ** ((epoch >= 5) + (epoch >= 8))
            assert s.lr(epoch, step, steps) == pytest.approx(expected, rel=1e-12)
    assert s.final_lr() == pytest.approx(0.1 * 0.04)


def test_default_milestones_are_half_and_three_quarters():
    s = LRSchedule("multistep", 0.1, 200)
    assert s.milestones == [100, 150]
    assert s.lr(99) == pytest.approx(0.1) and s.lr(100) == pytest.approx(0.01) and s.lr(150) == pytest.approx(0.001)


def test_cosine_schedule_matches_formula():
    s = LRSchedule("cosine", 0.2, 6, warmup_epochs=1, min_lr=0.01)
    for epoch in range(1, 6):
        for step in range(3):
            t = (epoch + step / 3 - 1) / 5
            assert s.lr(epoch, step, 3) == pytest.approx(0.01 + 0.19 * 0.5 * (1 + math.cos(math.pi * t)), rel=1e-12)


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="schedule must be one of"):
        LRSchedule("step", 0.1, 10)
    with pytest.raises(ValueError, match="milestones"):
        LRSchedule("multistep", 0.1, 10, milestones=[8, 5])
    with pytest.raises(ValueError, match="warmup_epochs"):
        LRSchedule("cosine", 0.1, 10, warmup_epochs=10)


def test_refinement_plan_epochs_and_lr():
    step = LRSchedule("multistep", 0.1, 8, milestones=[4, 6])
    extra = RefinementPlan.build(step, True, 2, "extra")
    assert extra.total_epochs == 10 and extra.first_refine_epoch == 8
    assert [extra.is_refining(e) for e in range(10)] == [False] * 8 + [True] * 2
    assert extra.lr == pytest.approx(0.1 * 0.01)  # the final epoch's LR of the step schedule
    last = RefinementPlan.build(step, True, 2, "last")
    assert last.total_epochs == 8 and last.first_refine_epoch == 6
    cosine = RefinementPlan.build(LRSchedule("cosine", 0.1, 8), True, 2, cosine_lr=3e-4)
    assert cosine.lr == 3e-4
    off = RefinementPlan.build(step, False, 2)
    assert off.total_epochs == 8 and not any(off.is_refining(e) for e in range(8))


# ---------------------------------------------------------------------------- loss

def test_weighted_cross_entropy_matches_float64_hand_computation():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (6,), generator=g)
    weights = torch.rand(6, generator=g, dtype=torch.float64) * 3
    log_p = logits - torch.log(torch.exp(logits).sum(1, keepdim=True))
    hard = -log_p[torch.arange(6), labels]
    got = weighted_cross_entropy(logits, labels, weights.float())
    assert float(got) == pytest.approx(float((hard * weights).sum() / 6), rel=1e-6)
    soft = torch.softmax(torch.randn(6, 4, generator=g, dtype=torch.float64), 1)
    assert torch.allclose(per_example_cross_entropy(logits, soft).double(), -(soft * log_p).sum(1), rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        per_example_cross_entropy(logits, soft[:, :3])


# ---------------------------------------------------------------------------- the trainer

@pytest.fixture
def digits(small_digits):
    return small_digits


def _config(**sections):
    return small_train_config(**sections)


def _trainer(cfg, digits, **kw):
    train, test = digits
    return Trainer(cfg, train_set=train, test_set=test, **kw)


def test_refinement_switches_data_and_lr_at_the_right_epoch(digits):
    cfg = _config(augment={"mode": "full", "placement": "append"},
                  schedule={"epochs": 3, "milestones": [1, 2], "gamma": 0.5},
                  refinement={"enabled": True, "epochs": 1, "mode": "extra"})
    rows = _trainer(cfg, digits).fit().rows
    n = len(digits[0])
    assert [r["phase"] for r in rows] == ["augment"] * 3 + ["refine"]
    for r in rows[:3]:  # every example plus one strong copy of each
        assert r["train_examples"] == 2 * n and r["num_augmented"] == n
    # then weak-only data at the final epoch's LR
    assert rows[3]["train_examples"] == n and rows[3]["num_augmented"] == 0
    assert rows[3]["lr"] == pytest.approx(0.05 * 0.25)
    assert [r["lr"] for r in rows[:3]] == pytest.approx([0.05, 0.025, 0.0125])


def test_refinement_last_mode_keeps_total_and_uses_cosine_lr(digits):
    cfg = _config(augment={"mode": "random", "reselect_every": 1},
                  schedule={"epochs": 3, "name": "cosine", "milestones": []},
                  refinement={"enabled": True, "epochs": 1, "mode": "last", "cosine_lr": 2e-4})
    trainer = _trainer(cfg, digits)
    rows = trainer.fit().rows
    assert [r["phase"] for r in rows] == ["augment", "augment", "refine"]
    assert rows[2]["lr"] == 2e-4 and rows[2]["num_augmented"] == 0 and rows[2]["selection_time"] == 0.0
    assert trainer.selection_epochs == [0, 1]  # no re-selection during refinement


def test_random_mode_reselects_every_r_epochs_and_logs(digits, tmp_path):
    cfg = _config(schedule={"epochs": 3, "milestones": [2]}, augment={"reselect_every": 2})
    trainer = _trainer(cfg, digits, out_dir=str(tmp_path))
    rows = trainer.fit().rows
    assert trainer.selection_epochs == [0, 2]
    k = round(0.25 * len(digits[0]))
    assert all(r["selection_size"] == k and r["num_augmented"] == k for r in rows)
    assert rows[0]["selection_time"] > 0 and rows[1]["selection_time"] == 0
    assert rows[2]["overlap_previous"] is not None and rows[1]["overlap_previous"] is None
    for name in ("metrics.csv", "metrics.jsonl", "checkpoint.pt", "accuracy.png", "result.json",
                 "selection_history.json", "selection.pt", "config.yaml"):
        assert (tmp_path / name).is_file(), name
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 4


def test_max_loss_batch_augments_the_top_loss_fraction_of_every_batch(digits):
    cfg = _config(augment={"mode": "max_loss_batch", "fraction": 0.25}, schedule={"epochs": 1, "milestones": []})
    trainer = _trainer(cfg, digits)
    row = trainer.fit().rows[0]
    n, batch = len(digits[0]), 32
    sizes = [min(batch, n - s) for s in range(0, n, batch)]
    expected = sum(round(0.25 * b) for b in sizes)
    assert row["num_augmented"] == expected and row["train_examples"] == n + expected


def _final_weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


class _Killed(Exception):
    pass


def test_killed_and_resumed_run_matches_uninterrupted_run_bitwise(digits, tmp_path):
    cfg = _config(schedule={"epochs": 3, "milestones": [2], "warmup_epochs": 0.5},
                  augment={"mode": "random", "reselect_every": 2, "batch_aug": "mixup", "strong": "autoaugment"},
                  optim={"sam_rho": 0.05, "nesterov": True})
    torch.manual_seed(0)  # the same initial model for both runs
    full = _trainer(cfg, digits, out_dir=str(tmp_path / "full"))
    reference = full.fit()
    reference_weights = _final_weights(full)

    def kill_after_epoch_0(trainer, epoch, row):
        if epoch == 0:
            raise _Killed()

    torch.manual_seed(0)
    first = _trainer(cfg, digits, out_dir=str(tmp_path / "cut"), callbacks=[kill_after_epoch_0])
    with pytest.raises(_Killed):
        first.fit()
    torch.manual_seed(123)  # a fresh process would have other RNG states and another initial model
    resumed = _trainer(cfg, digits, out_dir=str(tmp_path / "cut"))
    result = resumed.fit(resume=True)
    for k, v in reference_weights.items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    timing = ("selection_time", "selector_time", "epoch_time")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in result.rows]
    assert strip == [{k: v for k, v in r.items() if k not in timing} for r in reference.rows]
    assert torch.equal(resumed.history.counts, full.history.counts)
    assert [r["overlap_previous"] for r in resumed.history.records] == \
        [r["overlap_previous"] for r in full.history.records]
    assert (tmp_path / "cut" / "metrics.jsonl").read_text().count("\n") == 3


def test_resume_refuses_a_changed_config(digits, tmp_path):
    cfg = _config(schedule={"epochs": 1, "milestones": []})
    _trainer(cfg, digits, out_dir=str(tmp_path)).fit()
    changed = _config(schedule={"epochs": 1, "milestones": []}, optim={"lr": 0.01})
    with pytest.raises(ValueError, match=r"optim\.lr"):
        _trainer(changed, digits, out_dir=str(tmp_path)).fit(resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        _trainer(cfg, digits, out_dir=str(tmp_path / "empty")).fit(resume=True)


def test_bf16_autocast_and_clipping_train_on_cpu(digits):
    cfg = _config(run={"amp": "bf16"}, optim={"grad_clip": 1.0}, schedule={"epochs": 1, "milestones": []})
    rows = _trainer(cfg, digits).fit().rows
    assert math.isfinite(rows[0]["train_loss"]) and 0 <= rows[0]["test_top1"] <= 100
    with pytest.raises(ValueError, match="fp16"):
        _trainer(_config(run={"amp": "fp16"}), digits)
