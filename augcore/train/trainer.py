"""The training loop: re-selection every R epochs, weighted loss, SAM, AMP, refinement, exact resume.

One epoch:

1. in the intensive phase, at epoch 0 and every R epochs (coreset / random modes):
   one eval-mode inference pass with test transforms -> selector -> the training
   view's ``set_selection`` (the coreset paper's loop);
2. training over the view: originals under the weak transform plus strong copies
   of the selection (items carry their weights), optional Mixup/CutMix with the
   soft-label loss; in ``max_loss`` mode the top-loss fraction of every batch gets
   a strong copy inside the step (Kuchnik & Smith);
3. evaluation (top-1/top-5), one log row, an atomic checkpoint, the callbacks.

Refinement epochs (He et al.) train on the weak-only view at a constant small LR.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from augcore.selection.base import Selection
from augcore.train.checkpoint import (CHECKPOINT_FORMAT, atomic_torch_save, load_checkpoint, rng_state,
                                      seed_everything, set_rng_state)
from augcore.train.config import TrainConfig, config_from_dict
from augcore.train.losses import per_example_cross_entropy
from augcore.train.metrics import (atomic_write_text, plot_training_curves, summarize_weights, topk_correct,
                                   write_rows)
from augcore.train.sam import SAM, bn_stats_frozen
from augcore.train.schedules import LRSchedule, RefinementPlan, set_lr

EpochCallback = Callable[["Trainer", int, Dict[str, Any]], None]
CHECKPOINT_NAME = "checkpoint.pt"
# run settings that may differ between a run and its resumption
_RESUMABLE_RUN_KEYS = ("out", "progress", "num_threads", "device")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"run.device={name!r} but CUDA is not available; use 'auto' or 'cpu'")
    return device


def empty_selection(method: str, epoch: int = 0) -> Selection:
    return Selection(indices=torch.empty(0, dtype=torch.int64), weights=torch.empty(0), method=method, epoch=epoch)


def _epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """Independent, reproducible seeds per (run seed, epoch, purpose)."""
    return (seed * 1_000_003 + epoch * 7919 + stream) % (2 ** 63 - 1)


def _seed_worker(worker_id: int) -> None:
    import random

    import numpy as np
    seed = torch.initial_seed() % (2 ** 32)  # set by the DataLoader from its generator: reproducible
    np.random.seed(seed)
    random.seed(seed)


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


class Trainer:
    """Trains one model as ``config`` says; ``fit(resume=...)`` runs it.

    ``model``, ``train_set`` and ``test_set`` override what the config would build
    (tests, custom data). ``callbacks`` run at the end of every epoch, after the
    checkpoint is written, as ``callback(trainer, epoch, row)``. ``out_dir=None``
    keeps everything in memory (no checkpoints, logs or plots).
    """

    def __init__(self, config: TrainConfig, *, out_dir: Optional[str] = None, model: Optional[nn.Module] = None,
                 train_set=None, test_set=None, callbacks: Sequence[EpochCallback] = ()):
        from augcore.data import AugmentedSubsetDataset, load_dataset, random_subset_indices
        from augcore.data.transforms import CutMix, Mixup, eval_transform, strong_transform, weak_transform

        self.config = config.validate()
        cfg = self.config
        self.out_dir = out_dir
        self.callbacks = list(callbacks)
        if cfg.run.num_threads:
            torch.set_num_threads(cfg.run.num_threads)
        self.device = resolve_device(cfg.run.device)
        seed_everything(cfg.run.seed)

        data_kw = dict(root=cfg.data.root, seed=cfg.run.seed)
        if cfg.data.image_size is not None:
            data_kw["image_size"] = cfg.data.image_size
        self.train_base = train_set if train_set is not None else load_dataset(
            cfg.data.name, train=True, imbalance_factor=cfg.data.imbalance_factor, label_noise=cfg.data.label_noise,
            **data_kw)
        test_base = test_set if test_set is not None else load_dataset(cfg.data.name, train=False, **data_kw)
        self.test_set = test_base.with_transform(eval_transform(test_base))
        self.inference_set = self.train_base.with_transform(eval_transform(self.train_base))
        weak = weak_transform(self.train_base)
        strong = strong_transform(cfg.augment.strong, self.train_base)
        self.strong_view = self.train_base.with_transform(strong)
        self.num_classes = self.train_base.num_classes

        if model is None:
            from augcore.models import build_model
            model = build_model(cfg.model.name, self.num_classes, in_channels=self.train_base.channels,
                                image_size=self.train_base.image_size[0])
        self.model = model.to(self.device)
        self.forward_model = torch.compile(self.model) if cfg.run.compile else self.model

        a = cfg.augment
        self.subset_indices = (random_subset_indices(self.train_base, a.random_subset_fraction, seed=cfg.run.seed)
                               if a.train_on == "random_subset" else None)
        self.selector = None
        if a.mode in ("coreset", "random"):
            from augcore.selection import build_selector
            self.selector = build_selector(a.mode, fraction=a.fraction, **a.selector)
        self.selection = self._initial_selection()
        self.max_loss_selection: Optional[Selection] = None  # the epoch's per-step picks, for bookkeeping only
        view_kw = dict(weak=weak, strong=strong, copies=a.copies, weighting=a.weighting, placement=a.placement)
        self.train_view = AugmentedSubsetDataset(self.train_base, self.selection, train_on=a.train_on,
                                                 random_subset_indices=self.subset_indices, **view_kw)
        # refinement: the standard crop/flip on the whole data, nothing else
        self.refine_view = AugmentedSubsetDataset(self.train_base, None, weak=weak, strong=strong)
        from augcore.selection import SelectionHistory
        self.history = SelectionHistory(len(self.train_base))

        o = cfg.optim
        sgd_kw = dict(lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
        if o.sam_rho > 0:
            self.optimizer = SAM(self.model.parameters(), torch.optim.SGD, rho=o.sam_rho, adaptive=o.sam_adaptive,
                                 **sgd_kw)
        else:
            self.optimizer = torch.optim.SGD(self.model.parameters(), **sgd_kw)
        s = cfg.schedule
        self.schedule = LRSchedule(s.name, o.lr, s.epochs, warmup_epochs=s.warmup_epochs, milestones=s.milestones,
                                   gamma=s.gamma, min_lr=s.min_lr)
        r = cfg.refinement
        self.plan = RefinementPlan.build(self.schedule, r.enabled, r.epochs, r.mode, r.lr, r.cosine_lr)
        self.total_epochs = self.plan.total_epochs

        amp = cfg.run.amp
        self.autocast_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        if amp == "fp16" and self.device.type == "cpu":
            raise ValueError("run.amp='fp16' needs a GPU; use 'bf16' on the CPU")
        # fp16 needs loss scaling; bf16 has float32's range and does not
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.batch_mix_cls = {"none": None, "mixup": Mixup, "cutmix": CutMix}[a.batch_aug]

        self.start_epoch = 0
        self.rows: List[Dict[str, Any]] = []
        self.selection_epochs: List[int] = []

    # ------------------------------------------------------------------ selection
    def _initial_selection(self) -> Optional[Selection]:
        mode = self.config.augment.mode
        n = len(self.train_base)
        if mode == "full":  # augment everything (the "full strong augmentation" baseline)
            pool = self.subset_indices if self.subset_indices is not None else torch.arange(n)
            return Selection(indices=pool.clone(), weights=torch.ones(pool.numel()), method="full")
        if mode in ("none", "max_loss"):
            return empty_selection(mode)
        # coreset/random: chosen at epoch 0 by _maybe_reselect; until then nothing is augmented
        return None if self.config.augment.train_on != "selection" else empty_selection(mode)

    def _reselect(self, epoch: int) -> Tuple[float, float]:
        """One inference pass + the selector; returns (seconds in all, seconds in the selector)."""
        t0 = time.perf_counter()
        source = self.inference_set if self.subset_indices is None else Subset(self.inference_set,
                                                                             self.subset_indices.tolist())
        stats = self._collect_stats(source)
        t1 = time.perf_counter()
        self.selection = self._select(stats, epoch)
        selector_time = time.perf_counter() - t1
        self.train_view.set_selection(self.selection)
        self.history.update(self.selection)
        self.selection_epochs.append(epoch)
        return time.perf_counter() - t0, selector_time

    def _collect_stats(self, source):
        """The inference pass of a selection step (the distributed trainer shards it)."""
        from augcore.selection import collect_stats
        return collect_stats(self.model, source, batch_size=self.config.run.eval_batch_size, device=self.device,
                             num_workers=self.config.data.num_workers, progress=False)

    def _select(self, stats, epoch: int) -> Selection:
        """The selector on the stats (the distributed trainer runs it on rank 0 and broadcasts)."""
        return self.selector.select(stats, epoch=epoch, seed=self.config.run.seed)

    def _selection_due(self, epoch: int) -> bool:
        return (self.selector is not None and not self.plan.is_refining(epoch)
                and epoch % self.config.augment.reselect_every == 0)

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _loss(self, x: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            logits, _ = self.forward_model(x)
        losses = per_example_cross_entropy(logits, targets)
        return (losses * weights).mean(), logits.detach().float()

    def _max_loss_batch(self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                        idx: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Appends strong copies of the batch's top-loss fraction (Kuchnik & Smith's
        loss policy, re-selected at every step). The ranking pass runs in train mode
        without gradients and without touching BatchNorm running statistics."""
        k = int(round(self.config.augment.fraction * x.shape[0]))
        if k == 0:
            return x, y, w, idx[:0]
        with torch.no_grad(), bn_stats_frozen(self.model), self._autocast():
            logits, _ = self.forward_model(x)
        losses = F.cross_entropy(logits.float(), y, reduction="none")
        top = torch.sort(losses, descending=True, stable=True).indices[:k].cpu()
        picked = idx.cpu()[top]
        strong = torch.stack([self.strong_view[int(i)][0] for i in picked]).to(self.device)
        return (torch.cat([x, strong]), torch.cat([y, y[top.to(y.device)]]),
                torch.cat([w, torch.ones(k, device=w.device, dtype=w.dtype)]), picked)

    def _optimise(self, x: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> Tuple[float, torch.Tensor]:
        """One update (SGD or SAM's two passes); returns the loss and the logits at w."""
        clip = self.config.optim.grad_clip
        sam = isinstance(self.optimizer, SAM)
        scale = self._loss_scale()
        with self._sam_first_pass() if sam else contextlib.nullcontext():
            loss, logits = self._loss(x, targets, weights)
            self.scaler.scale(loss * scale).backward()
        if sam:
            self.optimizer.first_step(grad_scaler=self.scaler)
            with bn_stats_frozen(self.model):  # running statistics see only the first pass
                second, _ = self._loss(x, targets, weights)
            self.scaler.scale(second * scale).backward()
            base = self.optimizer.base_optimizer
            if clip:
                self.scaler.unscale_(base)
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.second_step(grad_scaler=self.scaler)
        else:
            if clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.optimizer.zero_grad(set_to_none=True)
        self.scaler.update()
        return float(loss.detach()), logits

    def _loss_scale(self) -> float:
        """Factor on the batch loss before backward: 1 here; the distributed trainer
        turns each rank's mean into its share of the global-batch mean."""
        return 1.0

    def _sam_first_pass(self):
        """Context of SAM's first forward/backward: plain here; ``no_sync`` under DDP."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ epochs
    def _loader(self, view, epoch: int) -> DataLoader:
        generator = torch.Generator().manual_seed(_epoch_seed(self.config.run.seed, epoch, 1))
        workers = self.config.data.num_workers
        return DataLoader(view, batch_size=self.config.optim.batch_size, shuffle=True, generator=generator,
                          num_workers=workers, worker_init_fn=_seed_worker if workers else None,
                          pin_memory=self.device.type == "cuda", drop_last=False)

    def _train_epoch(self, epoch: int, refining: bool) -> Dict[str, Any]:
        cfg = self.config
        view = self.refine_view if refining else self.train_view
        loader = self._loader(view, epoch)
        steps = len(loader)
        if steps == 0:
            raise RuntimeError(f"epoch {epoch}: the training view is empty (train_on={cfg.augment.train_on!r})")
        mix = None
        if self.batch_mix_cls is not None and not refining:
            mix = self.batch_mix_cls(cfg.augment.mix_alpha, seed=_epoch_seed(cfg.run.seed, epoch, 2))
        max_loss = cfg.augment.mode == "max_loss" and not refining
        self.model.train()
        total_loss, correct, seen, augmented = 0.0, 0, 0, 0
        max_loss_picked: List[torch.Tensor] = []
        lr = 0.0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.total_epochs}" + (" (refine)" if refining else ""),
                   unit="batch", leave=False, disable=not cfg.run.progress)
        for step, (x, y, w, idx, is_aug) in enumerate(bar):
            lr = self.plan.lr if refining else self.schedule.lr(epoch, step, steps)
            set_lr(self.optimizer, lr)
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            w = w.to(self.device, dtype=torch.float32, non_blocking=True)
            augmented += int(is_aug.sum())
            if max_loss:
                x, y, w, picked = self._max_loss_batch(x, y, w, idx)
                augmented += picked.numel()
                max_loss_picked.append(picked)
            targets = y
            if mix is not None:
                x, targets = mix(x, F.one_hot(y, self.num_classes).float())
            loss, logits = self._optimise(x, targets, w)
            if not math.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch}, step {step}: the training loss is {loss}; "
                                         "lower optim.lr or enable optim.grad_clip")
            total_loss += loss * x.shape[0]
            correct += int((logits.argmax(1) == y).sum())
            seen += x.shape[0]
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.3g}")
        row = {"train_loss": total_loss / seen, "train_acc": 100.0 * correct / seen, "lr": lr,
               "train_examples": seen, "num_augmented": augmented}
        if max_loss and max_loss_picked:
            picked = torch.unique(torch.cat(max_loss_picked))
            self.max_loss_selection = Selection(indices=picked, weights=torch.ones(picked.numel()),
                                                method="max_loss", epoch=epoch)
            self.history.update(self.max_loss_selection)
        return row

    @torch.no_grad()
    def evaluate(self) -> Dict[str, float]:
        """Test loss and top-1 / top-5 accuracy (%) in eval mode."""
        loader = DataLoader(self.test_set, batch_size=self.config.run.eval_batch_size, shuffle=False,
                            num_workers=self.config.data.num_workers)
        was_training = self.model.training
        self.model.eval()
        total_loss, top1, top5, n = 0.0, 0, 0, 0
        try:
            for x, y in loader:
                x, y = x.to(self.device), torch.as_tensor(y).to(self.device)
                with self._autocast():
                    logits, _ = self.forward_model(x)
                logits = logits.float()
                total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
                c1, c5 = topk_correct(logits, y, (1, 5))
                top1, top5, n = top1 + c1, top5 + c5, n + y.numel()
        finally:
            self.model.train(was_training)
        return {"test_loss": total_loss / n, "test_top1": 100.0 * top1 / n, "test_top5": 100.0 * top5 / n}

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Optional[str]:
        return os.path.join(self.out_dir, CHECKPOINT_NAME) if self.out_dir else None

    def state_dict(self, next_epoch: int) -> Dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "config": self.config.to_dict(), "epoch": next_epoch,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "schedule": self.schedule.state_dict(),
                "rng": rng_state(), "selection": None if self.selection is None else self.selection.to_state(),
                "history": self.history.to_json(), "rows": self.rows, "selection_epochs": self.selection_epochs}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        from augcore.selection import SelectionHistory
        saved = config_from_dict(state["config"]).to_dict()
        current = self.config.to_dict()
        for key in _RESUMABLE_RUN_KEYS:
            saved["run"].pop(key)
            current["run"].pop(key)
        if saved != current:
            diff = [f"{section}.{k}" for section in current for k in current[section]
                    if current[section][k] != saved[section][k]]
            raise ValueError(f"cannot resume: the config differs from the checkpoint's in {diff}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.selection = None if state["selection"] is None else Selection.from_state(state["selection"])
        if self.selector is not None and self.selection is not None:
            self.train_view.set_selection(self.selection)
        self.history = SelectionHistory.from_json(state["history"])
        self.rows = list(state["rows"])
        self.selection_epochs = list(state["selection_epochs"])
        self.start_epoch = int(state["epoch"])
        set_rng_state(state["rng"])

    # ------------------------------------------------------------------ the run
    def fit(self, resume: bool = False) -> TrainResult:
        cfg = self.config
        if resume:
            if not self.checkpoint_path:
                raise ValueError("resume needs an output folder holding a checkpoint (out_dir)")
            self.load_state_dict(load_checkpoint(self.checkpoint_path))
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            atomic_write_text(os.path.join(self.out_dir, "config.yaml"), yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        for epoch in range(self.start_epoch, self.total_epochs):
            refining = self.plan.is_refining(epoch)
            t0 = time.perf_counter()
            updates_before = self.history.num_updates
            selection_time, selector_time = self._reselect(epoch) if self._selection_due(epoch) else (0.0, 0.0)
            row: Dict[str, Any] = {"epoch": epoch, "phase": "refine" if refining else "augment"}
            row.update(self._train_epoch(epoch, refining))
            epoch_time = time.perf_counter() - t0
            row.update(self.evaluate())
            current = self.max_loss_selection if cfg.augment.mode == "max_loss" else self.selection
            if refining or current is None:
                current = empty_selection("refine" if refining else cfg.augment.mode)
            reselected = self.history.num_updates > updates_before
            row.update({"selection_time": selection_time, "selector_time": selector_time, "epoch_time": epoch_time, "selection_size": len(current),
                        **summarize_weights(current.weights),
                        "never_selected_fraction": self.history.never_selected_fraction(),
                        "overlap_previous": self.history.overlap_with_previous() if reselected else None})
            self.rows.append(row)
            if self.out_dir:
                write_rows(self.rows, os.path.join(self.out_dir, "metrics.csv"),
                           os.path.join(self.out_dir, "metrics.jsonl"))
                atomic_torch_save(self.state_dict(epoch + 1), self.checkpoint_path)
            for callback in self.callbacks:
                callback(self, epoch, row)
        return self._finish()

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
                             out_dir=self.out_dir)
        if self.out_dir:
            self.history.save(os.path.join(self.out_dir, "selection_history.json"))
            if self.selection is not None:
                self.selection.save(os.path.join(self.out_dir, "selection.pt"))
            plot_training_curves(self.rows, os.path.join(self.out_dir, "accuracy.png"),
                                 title=f"{self.config.model.name} on {self.config.data.name}, "
                                       f"augment={self.config.augment.mode}",
                                 refine_start=self.plan.first_refine_epoch, selection_epochs=self.selection_epochs)
            summary = {k: v for k, v in dataclasses.asdict(result).items() if k not in ("rows",)}
            atomic_write_text(os.path.join(self.out_dir, "result.json"), json.dumps(summary, indent=2) + "\n")
        return result
