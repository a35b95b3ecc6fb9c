"""One parameter update: the weighted loss, SGD/Adam or SAM's two passes, AMP and clipping."""
from __future__ import annotations

import contextlib
from typing import Optional, Tuple

import torch
from torch import nn

from augcore.selection.inference import EmbeddingReader, logits_of
from augcore.train.losses import per_example_cross_entropy
from augcore.train.sam import SAM, bn_stats_frozen

_AUTOCAST = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_optimizer(model: nn.Module, optim) -> torch.optim.Optimizer:
    """SGD (``optim.name: sgd``) or Adam (``adam``; weight decay as an L2 term, as torch's Adam),
    wrapped in SAM when ``optim.sam_rho > 0``."""
    if optim.name == "adam":
        base, kw = torch.optim.Adam, dict(lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)
    else:
        base, kw = torch.optim.SGD, dict(lr=optim.lr, momentum=optim.momentum, nesterov=optim.nesterov,
                                         weight_decay=optim.weight_decay)
    if optim.sam_rho > 0:
        return SAM(model.parameters(), base, rho=optim.sam_rho, adaptive=optim.sam_adaptive, **kw)
    return base(model.parameters(), **kw)


class UpdateStep:
    """Calls ``forward_model`` on a batch, weights the per-example losses and updates the
    parameters of ``model``; returns the loss, the logits and (``embeddings=True``) the
    embeddings at the pre-update weights, else ``None`` for them.

    The model may return logits or ``(logits, embedding)``; a logits-only model's embedding
    is the input of its final ``nn.Linear``, read by a forward hook
    (``augcore.selection.inference.EmbeddingReader``), so only ``embeddings=True`` needs one."""

    def __init__(self, model: nn.Module, forward_model: nn.Module, optimizer: torch.optim.Optimizer, *,
                 device: torch.device, amp: str = "none", grad_clip: Optional[float] = None,
                 embeddings: bool = False):
        if amp == "fp16" and device.type == "cpu":
            raise ValueError("run.amp='fp16' needs a GPU; use 'bf16' on the CPU")
        self.model = model
        self.forward_model = forward_model
        self.optimizer = optimizer
        self.device = device
        self.autocast_dtype = _AUTOCAST[amp]
        self.grad_clip = grad_clip
        # fp16 needs loss scaling; bf16 has float32's range and does not
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
        self.reader = EmbeddingReader(model, call=forward_model) if embeddings else None

    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _loss(self, x, targets, weights) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        with self.autocast():
            if self.reader is not None:
                logits, embeddings = self.reader(x)
            else:
                logits, embeddings = logits_of(self.forward_model(x)), None
        losses = per_example_cross_entropy(logits, targets)
        return ((losses * weights).mean(), logits.detach().float(),
                None if embeddings is None else embeddings.detach().float())

    def __call__(self, x: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, *, scale: float = 1.0,
                 first_pass=contextlib.nullcontext) -> Tuple[float, torch.Tensor, Optional[torch.Tensor]]:
        sam = isinstance(self.optimizer, SAM)
        with first_pass() if sam else contextlib.nullcontext():
            loss, logits, embeddings = self._loss(x, targets, weights)
            self.scaler.scale(loss * scale).backward()
        if sam:
            self.optimizer.first_step(grad_scaler=self.scaler)
            with bn_stats_frozen(self.model):  # running statistics see only the first pass
                second, _, _ = self._loss(x, targets, weights)
            self.scaler.scale(second * scale).backward()
            self._clip(self.optimizer.base_optimizer)
            self.optimizer.second_step(grad_scaler=self.scaler)
        else:
            self._clip(self.optimizer)
            self.scaler.step(self.optimizer)
            self.optimizer.zero_grad(set_to_none=True)
        self.scaler.update()
        return float(loss.detach()), logits, embeddings

    def _clip(self, optimizer) -> None:
        if self.grad_clip:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
