"""The training loop: epochs, steps and evaluation, with a selection policy and a strategy.

Per epoch of the intensive phase::

    policy.begin_epoch(epoch)            # re-selects at 0, R, 2R, ... (its own business)
    for batch in strategy.loader(policy.view):
        batch = policy.augment_batch(batch)     # per-step policies only
        Mixup/CutMix; update (SGD or SAM, AMP, clipping, loss scale from the loader's sampler)
    policy.end_epoch(epoch); evaluate; one log row; checkpoint; callbacks

Refinement epochs (He et al.) train on the weak-only view of the whole data at a
constant small learning rate. The pieces: ``build.build_run`` (data, transforms, model,
views), ``policies`` (what to augment), ``update.UpdateStep`` (one update),
``strategy`` (one process or DDP), ``stats`` (where statistics come from),
``reporting`` (files). The loop itself knows none of their details.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from augcore.data.transforms import StrongOrWeak
from augcore.io import atomic_torch_save
from augcore.selection.base import Selection
from augcore.selection.inference import logits_of
from augcore.train.build import build_run
from augcore.train.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, rng_state, set_rng_state
from augcore.train.config import TrainConfig, config_from_dict
from augcore.train.metrics import minibatch_gradient_variance, topk_correct
from augcore.train.policies import POLICIES, PolicyContext, empty_selection, policy_options
from augcore.train.reporting import Reporter
from augcore.train.sam import bn_stats_frozen
from augcore.train.schedules import LRSchedule, RefinementPlan, set_lr
from augcore.train.stats import StatsProvider
from augcore.train.strategy import LoaderAndSampler, SingleProcess, Strategy
from augcore.train.update import UpdateStep, build_optimizer

EpochCallback = Callable[["Trainer", int, Dict[str, Any]], None]
CHECKPOINT_NAME = "checkpoint.pt"
# run settings that may differ between a run and its resumption
_RESUMABLE_RUN_KEYS = ("out", "progress", "num_threads", "device")


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """Independent, reproducible seeds per (run seed, epoch, purpose)."""
    return (seed * 1_000_003 + epoch * 7919 + stream) % (2 ** 63 - 1)


@dataclass
class TrainResult:
    best_top1: float
    best_epoch: int
    last_top1: float
    last_top5: float
    train_time: float        # seconds of training + selection (no evaluation)
    selection_time: float    # seconds spent in inference passes and selectors
    selector_time: float     # of which in the selectors themselves
    num_augmented: int       # strong copies trained on, summed over epochs
    rows: List[Dict[str, Any]]
    out_dir: Optional[str]
    inference_passes: int = 0   # eval-mode passes run for selection
    policy: str = ""


class Trainer:
    """Trains one model as ``config`` says; ``fit(resume=...)`` runs it.

    ``model``, ``train_set`` and ``test_set`` override what the config would build
    (tests, custom data); ``model`` may be any ``nn.Module`` returning logits or
    ``(logits, embedding)`` (docs/models.md); ``transforms`` = (weak, strong) replaces the configured
    transforms. ``callbacks`` run at the end of every epoch, after the
    checkpoint is written, as ``callback(trainer, epoch, row)``. ``out_dir=None``
    keeps everything in memory. ``strategy`` runs the loop on one process (default) or
    under DDP (``augcore.distributed.DDPStrategy``).
    """

    def __init__(self, config: TrainConfig, *, out_dir: Optional[str] = None, model: Optional[nn.Module] = None,
                 train_set=None, test_set=None, transforms=None, callbacks: Sequence[EpochCallback] = (),
                 strategy: Optional[Strategy] = None):
        self.strategy: Strategy = strategy if strategy is not None else SingleProcess()
        parts = build_run(config, model=model, train_set=train_set, test_set=test_set, transforms=transforms)
        self.config = cfg = parts.config
        self.parts = parts
        self.out_dir = out_dir
        self.reporter = Reporter(out_dir if self.strategy.is_writer else None)
        self.callbacks = list(callbacks)
        self.device = parts.device
        self.model = parts.model
        self.train_base = parts.train_base
        self.test_set = parts.test_set
        self.inference_set = parts.inference_set
        self.num_classes = parts.num_classes
        self.forward_model = self.strategy.wrap_model(self.model)
        if cfg.run.compile:
            self.forward_model = torch.compile(self.forward_model)

        o, s, r = cfg.optim, cfg.schedule, cfg.refinement
        self.optimizer = build_optimizer(self.model, o)
        # in-epoch statistics record each step's embeddings (a logits-only model's via a hook)
        self.update = UpdateStep(self.model, self.forward_model, self.optimizer, device=self.device, amp=cfg.run.amp,
                                 grad_clip=o.grad_clip, embeddings=cfg.augment.stats == "in_epoch")
        self.schedule = LRSchedule(s.name, o.lr, s.epochs, warmup_epochs=s.warmup_epochs, milestones=s.milestones,
                                   gamma=s.gamma, min_lr=s.min_lr)
        self.plan = RefinementPlan.build(self.schedule, r.enabled, r.epochs, r.mode, r.lr, r.cosine_lr,
                                         refine_schedule=r.schedule, milestones=r.milestones, gamma=r.gamma,
                                         min_lr=r.min_lr, weaken_epochs=r.weaken_epochs)
        self.total_epochs = self.plan.total_epochs
        self._check_batch_mix()

        a = cfg.augment
        if cfg.run.grad_variance and self.strategy.world_size > 1:
            raise ValueError("run.grad_variance is single-process; turn it off under DDP")
        if a.stats == "in_epoch" and self.strategy.world_size > 1:
            raise ValueError("augment.stats='in_epoch' is single-process; use 'eval' under DDP")
        self.stats = StatsProvider(self.model, self.inference_set, self.train_base.targets, self.num_classes,
                                   strategy=self.strategy, batch_size=cfg.run.eval_batch_size, device=self.device,
                                   num_workers=cfg.data.num_workers, source=a.stats)
        ctx = PolicyContext(dataset=self.train_base, make_view=parts.make_view, strong_view=parts.strong_view,
                            weak=parts.weak,
                            model=self.model, stats=self.stats, augment=a, seed=cfg.run.seed, device=self.device,
                            strategy=self.strategy, autocast=self.update.autocast)
        self.policy = POLICIES[a.mode](ctx, policy_options(a.mode, a.policy_options))

        self.start_epoch = 0
        self.rows: List[Dict[str, Any]] = []

    def _check_batch_mix(self) -> None:
        """Fails now, naming the key, where the epoch's batch augmentation could not be built."""
        if self.config.augment.batch_aug == "manifold_mixup":
            from augcore.config import ConfigError

            try:
                self._batch_mix(0)
            except ValueError as exc:
                raise ConfigError(f"augment.batch_aug: manifold_mixup: {exc}") from None

    def _batch_mix(self, epoch: int):
        """The epoch's batch augmentation (None: none), its draws seeded by (run seed, epoch), weakened by
        the epoch's strength: Mixup and Manifold Mixup alpha x strength, CutMix probability x strength."""
        from augcore.data.transforms import CutMix, ManifoldMixup, Mixup

        mixing = self.config.augment.mixing
        strength = self.plan.strength(epoch)
        if mixing.batch_aug == "none" or strength == 0.0:
            return None
        seed = epoch_seed(self.config.run.seed, epoch, 2)
        if mixing.batch_aug == "cutmix":
            return CutMix(mixing.mix_alpha, seed=seed, prob=mixing.mix_prob * strength)
        if mixing.batch_aug == "mixup":
            return Mixup(mixing.mix_alpha * strength, seed=seed, prob=mixing.mix_prob)
        layers = mixing.manifold_mixup_layers
        return ManifoldMixup(self.model, mixing.mix_alpha * strength, seed=seed, prob=mixing.mix_prob,
                             **({} if layers is None else {"layers": layers}))

    # -------------------------------------------------------------- what the policy holds
    @property
    def history(self):
        return self.policy.history

    @property
    def selection(self) -> Optional[Selection]:
        return self.policy.selection

    @property
    def selection_epochs(self) -> List[int]:
        return self.policy.selection_epochs

    # -------------------------------------------------------------- one epoch
    def _loader(self, view, epoch: int) -> LoaderAndSampler:
        return self.strategy.loader(view, batch_size=self.config.optim.batch_size,
                                    seed=epoch_seed(self.config.run.seed, epoch, 1),
                                    num_workers=self.config.data.num_workers,
                                    pin_memory=self.device.type == "cuda")

    def _train_epoch(self, epoch: int, refining: bool) -> Dict[str, Any]:
        cfg = self.config
        view = self.parts.refine_view if refining else self.policy.view
        batches = self._loader(view, epoch)
        steps = len(batches)
        if steps == 0:
            raise RuntimeError(f"epoch {epoch}: the training view is empty (train_on={cfg.augment.train_on!r})")
        mix = None if refining else self._batch_mix(epoch)
        record = not refining and self.stats.records_in_epoch
        if record:
            self.stats.start_epoch()
        self.model.train()
        total_loss, correct, seen, augmented = 0.0, 0, 0, 0
        lr = 0.0
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{self.total_epochs}" + (" (refine)" if refining else ""),
                   unit="batch", leave=False, disable=not cfg.run.progress)
        for step, (x, y, w, idx, is_aug) in enumerate(bar):
            lr = self.plan.refine_lr(epoch, step, steps) if refining else self.schedule.lr(epoch, step, steps)
            set_lr(self.optimizer, lr)
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            w = w.to(self.device, dtype=torch.float32, non_blocking=True)
            scale = batches.loss_scale(step, x.shape[0])
            augmented += int(is_aug.sum())
            if not refining:
                x, y, w, picked = self.policy.augment_batch(x, y, w, idx)
                if picked.numel():   # per-step copies joined the batch
                    augmented += picked.numel()
                    is_aug = torch.cat([is_aug, torch.ones(picked.numel(), dtype=torch.bool)])
                    idx = torch.cat([idx, picked])
            # copies the loader cannot make (wu2020 candidates, scored by the model) and soft labels
            x, targets = (x, y) if refining else self.policy.finish_batch(x, y, idx, is_aug)
            if mix is not None:
                x, targets = mix(x, targets if targets.dim() == 2 else F.one_hot(y, self.num_classes).float())
            with mix.forward_context() if mix is not None else contextlib.nullcontext():
                loss, logits, embeddings = self.update(x, targets, w, scale=scale,
                                                       first_pass=self.strategy.sam_first_pass)
            if not math.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch}, step {step}: the training loss is {loss}; "
                                         "lower optim.lr or enable optim.grad_clip")
            if record:
                self.stats.record(idx, logits, y, embeddings, is_aug)
            total_loss += loss * x.shape[0]
            correct += int((logits.argmax(1) == y).sum())
            seen += x.shape[0]
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.3g}")
        if record:
            self.stats.finish_epoch()
        row = {"train_loss": total_loss / seen, "train_acc": 100.0 * correct / seen, "lr": lr,
               "train_examples": seen, "num_augmented": augmented, **self.policy.epoch_costs()}
        return self.strategy.reduce_row(row)

    def gradient_variance(self, epoch: int, refining: bool = False) -> float:
        """E||g_B - g||^2 at the current weights over the epoch's training view, in mini-batches of
        ``optim.batch_size`` with the training loss (``metrics.minibatch_gradient_variance``).

        Train mode (batch statistics) with BatchNorm's running statistics untouched; every random
        generator is restored afterwards, so logging it leaves the training run unchanged."""
        view = self.parts.refine_view if refining else self.policy.view
        loader = DataLoader(view, batch_size=self.config.optim.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(epoch_seed(self.config.run.seed, epoch, 3)),
                            num_workers=self.config.data.num_workers)

        def batch_loss(batch):
            x, y, w = (t.to(self.device) for t in batch[:3])
            return self.update._loss(x, y, w.float())[0]

        saved = rng_state()
        was_training = self.model.training
        self.model.train()
        try:
            with bn_stats_frozen(self.model):
                return minibatch_gradient_variance(list(self.model.parameters()), loader, batch_loss,
                                                   batch_size=self.config.optim.batch_size)
        finally:
            self.model.train(was_training)
            set_rng_state(saved)

    @torch.no_grad()
    def _eval_pass(self, dataset) -> Tuple[float, int, int, int]:
        """Summed cross-entropy, top-1 and top-5 counts and the number of examples of ``dataset``,
        in eval mode (the model's mode is restored)."""
        loader = DataLoader(dataset, batch_size=self.config.run.eval_batch_size, shuffle=False,
                            num_workers=self.config.data.num_workers)
        was_training = self.model.training
        self.model.eval()
        total_loss, top1, top5, n = 0.0, 0, 0, 0
        try:
            for x, y in loader:
                x, y = x.to(self.device), torch.as_tensor(y).to(self.device)
                with self.update.autocast():
                    logits = logits_of(self.forward_model(x)).float()
                total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
                c1, c5 = topk_correct(logits, y, (1, 5))
                top1, top5, n = top1 + c1, top5 + c5, n + y.numel()
        finally:
            self.model.train(was_training)
        return total_loss, top1, top5, n

    def clean_training_loss(self) -> Dict[str, float]:
        """The training loss on clean data, R^(f|P) of the refinement paper's Table 2: mean cross-entropy
        (unweighted) and accuracy over every training example under the eval transform (no crop, flip
        or strong augmentation), in eval mode, as the function f is tested. Random generators are
        restored afterwards, so logging it leaves the training run unchanged."""
        saved = rng_state()
        try:
            total_loss, top1, _, n = self._eval_pass(self.inference_set)
        finally:
            set_rng_state(saved)
        return {"train_loss_clean": total_loss / n, "train_acc_clean": 100.0 * top1 / n}

    def evaluate(self) -> Dict[str, float]:
        """Test loss and top-1 / top-5 accuracy (%) in eval mode."""
        total_loss, top1, top5, n = self._eval_pass(self.test_set)
        return {"test_loss": total_loss / n, "test_top1": 100.0 * top1 / n, "test_top5": 100.0 * top5 / n}

    # -------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Optional[str]:
        return os.path.join(self.out_dir, CHECKPOINT_NAME) if self.out_dir else None

    def state_dict(self, next_epoch: int) -> Dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "config": self.config.to_dict(), "epoch": next_epoch,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.update.scaler.state_dict(), "schedule": self.schedule.state_dict(),
                "rng": rng_state(), "policy": self.policy.state_dict(), "rows": self.rows,
                "inference_passes": self.stats.passes}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        saved = config_from_dict(state["config"]).to_dict()
        current = self.config.to_dict()
        for key in _RESUMABLE_RUN_KEYS:
            saved["run"].pop(key)
            current["run"].pop(key)
        if saved != current:
            diff = [f"{section}.{k}" for section in current for k in current[section]
                    if current[section][k] != saved[section].get(k)]
            raise ValueError(f"cannot resume: the config differs from the checkpoint's in {diff}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.update.scaler.load_state_dict(state["scaler"])
        self.policy.load_state_dict(state["policy"])
        self.stats.passes = int(state.get("inference_passes", 0))
        self.rows = list(state["rows"])
        self.start_epoch = int(state["epoch"])
        set_rng_state(state["rng"])

    def resume_from(self, path: str) -> None:
        self.load_state_dict(load_checkpoint(path))

    # -------------------------------------------------------------- the run
    def fit(self, resume: bool = False, *, stop_after: Optional[int] = None) -> TrainResult:
        """Runs the epochs (from the checkpoint in ``out_dir`` when ``resume``); ``stop_after``
        ends the run after that many epochs in all (the schedule still spans the config's)."""
        cfg = self.config
        if resume:
            if not self.checkpoint_path:
                raise ValueError("resume needs an output folder holding a checkpoint (out_dir)")
            self.strategy.barrier()  # the writer has finished before anyone reads
            self.resume_from(self.checkpoint_path)
        self.reporter.start(cfg.to_dict())
        end = self.total_epochs if stop_after is None else min(stop_after, self.total_epochs)
        for epoch in range(self.start_epoch, end):
            refining = self.plan.is_refining(epoch)
            t0 = time.perf_counter()
            updates_before = self.history.num_updates
            row: Dict[str, Any] = {"epoch": epoch, "phase": "refine" if refining else "augment"}
            if isinstance(self.parts.strong, StrongOrWeak):   # before the policy makes any copy
                self.parts.strong.set_strength(self.plan.strength(epoch))
                row["augment_strength"] = self.plan.strength(epoch)
            event = None if refining else self.policy.begin_epoch(epoch)
            row.update(self._train_epoch(epoch, refining))
            current = None if refining else self.policy.end_epoch(epoch)
            epoch_time = time.perf_counter() - t0
            if cfg.run.grad_variance:
                row["grad_variance"] = self.gradient_variance(epoch, refining)
            if cfg.run.clean_loss:
                row.update(self.clean_training_loss())
            row.update(self.evaluate())
            if current is None:
                current = empty_selection("refine" if refining else cfg.augment.mode)
            reselected = self.history.num_updates > updates_before
            row["epoch_time"] = epoch_time
            row.update(self.policy.log_columns(event, current, reselected))
            self.rows.append(row)
            if self.reporter.out_dir:
                self.reporter.epoch(self.rows)
                atomic_torch_save(self.state_dict(epoch + 1), self.checkpoint_path)
            for callback in self.callbacks:
                callback(self, epoch, row)
        result = self._finish()
        self.strategy.barrier()  # the writer's files are complete when any process returns
        return result

    def _finish(self) -> TrainResult:
        if not self.rows:
            raise RuntimeError("no epoch was run (the checkpoint is already at the final epoch?)")
        best = max(self.rows, key=lambda r: r["test_top1"])
        result = TrainResult(best_top1=best["test_top1"], best_epoch=best["epoch"],
                             last_top1=self.rows[-1]["test_top1"], last_top5=self.rows[-1]["test_top5"],
                             train_time=sum(r["epoch_time"] for r in self.rows),
                             selection_time=sum(r["selection_time"] for r in self.rows),
                             selector_time=sum(r["selector_time"] for r in self.rows),
                             num_augmented=sum(r["num_augmented"] for r in self.rows), rows=self.rows,
                             out_dir=self.out_dir, inference_passes=self.stats.passes, policy=self.policy.name)
        self.reporter.finish(result, history=self.history, selection=self.selection,
                             title=f"{self.config.model.name} on {self.config.data.name}, "
                                   f"augment={self.config.augment.mode}",
                             refine_start=self.plan.first_refine_epoch, selection_epochs=self.selection_epochs)
        return result
