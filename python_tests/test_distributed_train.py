"""DDP training on digits with 2 gloo ranks against single-process runs of the same global batch."""
import os

import pytest
import torch
from torch import nn

from augcore.data import load_dataset
from augcore.data.transforms import eval_transform
from augcore.train import Trainer, config_from_dict
from test_distributed import _launch


class MLP(nn.Module):
    """No BatchNorm: per-rank batch statistics would make DDP differ from one process."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        h = self.body(x)
        return self.head(h), h


def _data():
    train = load_dataset("digits", train=True)
    test = load_dataset("digits", train=False)
    g = torch.Generator().manual_seed(0)
    return train.subset(torch.randperm(len(train), generator=g)[:128]), test.subset(torch.arange(64))


def _config(**optim):
    return config_from_dict({
        "schedule": {"epochs": 2, "name": "constant"},
        "optim": {"lr": 0.1, "batch_size": 32, **optim},
        "augment": {"mode": "coreset", "fraction": 0.1, "reselect_every": 1, "strong": "cutout"},
        "run": {"progress": False, "device": "cpu", "eval_batch_size": 256, "num_threads": 1}})


def _build(cls, cfg, **kw):
    train, test = _data()
    torch.manual_seed(0)
    # deterministic per-item transforms: the comparison isolates batching and gradients
    fixed = eval_transform(train)
    return cls(cfg, model=MLP(), train_set=train, test_set=test, transforms=(fixed, fixed), **kw)


class _Stop(Exception):
    pass


def _stop_after_first_epoch(trainer, epoch, row):
    raise _Stop


def _train_worker(rank, world, out_dir):
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    from augcore.distributed import DistributedTrainer
    out = {}
    t = _build(DistributedTrainer, _config())
    result = t.fit()
    out["sgd"] = {k: v.clone() for k, v in t.model.state_dict().items()}
    out["rows"] = result.rows
    out["selection"] = t.selection.indices

    calls = {"n": 0}

    def counting_hook(state, bucket):
        calls["n"] += 1
        return allreduce_hook(None, bucket)

    t = _build(DistributedTrainer, _config(sam_rho=0.05))
    t.strategy.ddp.register_comm_hook(None, counting_hook)
    t.fit()
    out["sam"] = {k: v.clone() for k, v in t.model.state_dict().items()}
    out["sam_allreduces"] = calls["n"]
    out["steps"] = len(t._loader(t.policy.view, 0).sampler) * t.config.schedule.epochs  # same view each epoch

    t = _build(DistributedTrainer, _config(), out_dir=out_dir, callbacks=[_stop_after_first_epoch])
    with pytest.raises(_Stop):
        t.fit()
    t = _build(DistributedTrainer, _config(), out_dir=out_dir)
    t.fit(resume=True)
    out["resumed"] = {k: v.clone() for k, v in t.model.state_dict().items()}
    out["files"] = sorted(os.listdir(out_dir))
    return out


def test_ddp_two_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    results = _launch(tmp_path, _train_worker, str(tmp_path / "run"))
    single = _build(Trainer, _config())
    ref = single.fit()
    for res in results:
        for name, value in single.model.state_dict().items():
            assert torch.allclose(res["sgd"][name], value, atol=1e-5), name
            # resumed from rank 0's checkpoint after epoch 1: the same model as the uninterrupted run
            assert torch.allclose(res["resumed"][name], res["sgd"][name], atol=1e-6), name
        assert torch.equal(res["selection"], single.selection.indices)
        for got, want in zip(res["rows"], ref.rows):
            assert got["train_examples"] == want["train_examples"]
            assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5)
            assert got["test_top1"] == pytest.approx(want["test_top1"])
    a, b = results
    for name in a["sam"]:
        assert torch.equal(a["sam"][name], b["sam"][name])
    # SAM: one gradient all-reduce per step (the second pass); the first runs under no_sync
    assert a["sam_allreduces"] == a["steps"]
    assert "checkpoint.pt" in a["files"] and "result.json" in a["files"]
