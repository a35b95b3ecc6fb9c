"""Scale-out: environment checks, two-process (gloo) selection, GreeDi and DDP training.

Multi-process tests spawn 2 ranks with torchrun's environment variables, one CPU
thread each; every rank writes its results to a file that the test compares with an
independent single-process computation.
"""
import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from augcore.distributed import (ShardedBatchSampler, global_batches, greedi_facility_location, init_distributed,
                                 read_env, selection_digest, shard_bounds)
from augcore.ops.facility_location import facility_location
from augcore.selection import CoresetSelector, Selection, collect_stats

WORLD = 2


# ---------------------------------------------------------------------------- launching

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, world, port, out, fn, args):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist
    init_distributed("gloo", expected_world_size=world, timeout_s=60)
    try:
        torch.save(fn(rank, world, *args), os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _launch(tmp_path, fn, *args, world=WORLD):
    mp.start_processes(_entry, args=(world, _free_port(), str(tmp_path), fn, args), nprocs=world,
                       start_method="spawn", join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world)]


# ---------------------------------------------------------------------------- environment

def test_read_env_absent_is_a_plain_run():
    assert read_env({}) is None


def test_half_configured_env_names_the_missing_variables():
    with pytest.raises(RuntimeError, match="MASTER_PORT, WORLD_SIZE missing"):
        read_env({"MASTER_ADDR": "127.0.0.1", "RANK": "0"})


def test_bad_env_values_are_rejected():
    base = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "RANK": "0", "WORLD_SIZE": "2"}
    with pytest.raises(ValueError, match=r"RANK=2 is outside \[0, WORLD_SIZE=2\)"):
        read_env({**base, "RANK": "2"})
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not an integer"):
        read_env({**base, "WORLD_SIZE": "two"})
    env = read_env(base)
    assert (env.rank, env.world_size, env.local_rank, env.master_port) == (0, 2, 0, 29500)


def test_world_size_mismatch_and_missing_launch_are_clear(monkeypatch):
    for v in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(RuntimeError, match="not a distributed launch"):
        init_distributed()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(RuntimeError, match="world size mismatch: WORLD_SIZE=1 but 2"):
        init_distributed(expected_world_size=2)


def test_shard_bounds_cover_every_item_once():
    for n in (7, 8, 101):
        for world in (1, 2, 3):
            spans = [shard_bounds(n, r, world) for r in range(world)]
            assert spans[0][0] == 0 and spans[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
            assert max(e - s for s, e in spans) - min(e - s for s, e in spans) <= 1


def test_sharded_batches_reassemble_the_single_process_order():
    n, batch, seed = 37, 8, 5
    from augcore.data import load_dataset
    from augcore.train import Trainer, config_from_dict
    train = load_dataset("digits", train=True).subset(torch.arange(n))
    cfg = config_from_dict({"augment": {"mode": "none"}, "optim": {"batch_size": batch},
                            "run": {"progress": False, "device": "cpu", "seed": 0}})
    trainer = Trainer(cfg, train_set=train, test_set=train)
    seen = []
    trainer.update = lambda x, y, w, **kw: seen.append(y) or (0.0, torch.zeros(y.numel(), 10), None)
    trainer._train_epoch(0, False)  # the order the single-process loop really sees (its labels)
    labels = train.targets
    expected = [b.tolist() for b in global_batches(n, batch, 1)]  # epoch_seed(0, 0, 1) == 1
    assert [labels[b].tolist() for b in expected] == [y.tolist() for y in seen]
    seed = 1
    assert [b.tolist() for b in global_batches(n, batch, seed)] == expected
    shards = [list(ShardedBatchSampler(n, batch, r, 2, seed)) for r in range(2)]
    assert [a + b for a, b in zip(*shards)] == expected
    s0 = ShardedBatchSampler(n, batch, 0, 2, seed)
    assert s0.local_loss_scale(len(expected) - 1, 3) == pytest.approx(3 * 2 / 5)
    with pytest.raises(ValueError, match="last global batch has 1 examples"):
        ShardedBatchSampler(33, 8, 0, 2, seed)


# ---------------------------------------------------------------------------- selection

def _digits_and_model():
    from augcore.data import load_dataset
    from augcore.data.transforms import eval_transform
    from augcore.models import build_model
    train = load_dataset("digits", train=True)
    train = train.subset(torch.arange(400))
    torch.manual_seed(3)
    model = build_model("small_cnn", train.num_classes, in_channels=train.channels, image_size=train.image_size[0])
    return train.with_transform(eval_transform(train)), model


def _select_worker(rank, world):
    from augcore.distributed import collect_stats_distributed, select_distributed
    data, model = _digits_and_model()
    selection = select_distributed(CoresetSelector(fraction=0.1), model, data, epoch=0, seed=1, batch_size=64)
    stats = collect_stats_distributed(model, data, batch_size=64)
    return {"selection": selection.to_state(), "logits": stats.logits, "indices": stats.indices,
            "embeddings": stats.embeddings}


def test_two_ranks_select_the_same_coreset_as_one_process(tmp_path):
    results = _launch(tmp_path, _select_worker)
    data, model = _digits_and_model()
    stats = collect_stats(model, data, batch_size=64, progress=False)
    reference = CoresetSelector(fraction=0.1).select(stats, epoch=0, seed=1)
    for res in results:
        assert torch.equal(res["indices"], stats.indices)
        assert torch.allclose(res["logits"], stats.logits, atol=1e-5)
        assert torch.allclose(res["embeddings"], stats.embeddings, atol=1e-5)
        got = Selection.from_state(res["selection"])
        assert torch.equal(got.indices, reference.indices)
        assert torch.allclose(got.weights, reference.weights)
    assert len({selection_digest(Selection.from_state(r["selection"])) for r in results}) == 1


# ---------------------------------------------------------------------------- GreeDi

def _clustered(n=480, d=8, clusters=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(clusters, d, generator=g) * 3
    return centers[torch.randint(0, clusters, (n,), generator=g)] + torch.randn(n, d, generator=g) * 0.7


def _objective(x, picks):
    sim = torch.exp(-torch.cdist(x.double(), x.double()) / x.shape[1])
    return float(sim[:, picks].max(1).values.sum())


def _greedi_worker(rank, world, budget):
    x = _clustered()
    start, end = shard_bounds(x.shape[0], rank, world)
    # interleaved partition: every rank sees every cluster only partially
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(9))
    mine = perm[start:end]
    res = greedi_facility_location(x[mine], mine, budget, method="lazy")
    return res.__dict__


@pytest.mark.parametrize("budget", [5, 20])
def test_greedi_is_within_its_guarantee_of_centralised_greedy(tmp_path, budget):
    results = _launch(tmp_path, _greedi_worker, budget)
    x = _clustered()
    a, b = results
    assert torch.equal(a["indices"], b["indices"]) and torch.equal(a["weights"], b["weights"])
    assert a["objective"] == b["objective"]
    picks = a["indices"]
    assert picks.numel() == budget and torch.unique(picks).numel() == budget
    assert int(a["weights"].sum()) == x.shape[0]
    assert a["objective"] == pytest.approx(_objective(x, picks), rel=1e-9)
    central = facility_location(x, budget, method="lazy")
    f_central = _objective(x, central.indices)
    assert a["bound"] == pytest.approx((1 - 1 / math.e) ** 2 / min(WORLD, budget))
    assert a["objective"] >= a["bound"] * f_central
    # in practice far better than the worst case on clustered data
    assert a["objective"] >= 0.95 * f_central
    # round 2 is naive greedy over the candidates with the full objective (numpy float64 reference)
    cand = a["candidates"].numpy()
    sim = np.exp(-np.linalg.norm(x.double().numpy()[:, None] - x.double().numpy()[None, cand], axis=2) / x.shape[1])
    best, chosen = np.zeros(x.shape[0]), []
    for _ in range(budget):
        gains = np.maximum(sim - best[:, None], 0).sum(0)
        gains[chosen] = -np.inf
        chosen.append(int(np.argmax(gains)))
        best = np.maximum(best, sim[:, chosen[-1]])
    assert a["round2_objective"] == pytest.approx(best.sum(), rel=1e-9)
    if a["source"] == "round2":
        assert picks.tolist() == cand[chosen].tolist()


def test_greedi_single_rank_rejects_bad_input():
    with pytest.raises(ValueError, match="budget must be a positive integer"):
        greedi_facility_location(torch.randn(4, 2), torch.arange(4), 0)
    with pytest.raises(ValueError, match=r"local_points must be \(n, D\)"):
        greedi_facility_location(torch.randn(4, 2), torch.arange(3), 2)
