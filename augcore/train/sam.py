"""Sharpness-Aware Minimization (Foret et al., ICLR 2021) as a wrapper over any optimizer.

One SAM update is two forward/backward passes:

1. gradient g at w; perturb to w + e, e = rho * g / ||g||
   (adaptive ASAM, Kwon et al. 2021: e = rho * T^2 g / ||T g||, T = |w|);
2. gradient g' at w + e; restore w and let the base optimizer step with g'.

The norm is taken over all parameters of all groups together, as in the paper and
in the widely used davda54/sam code this follows. BatchNorm running statistics must
only see the first pass: wrap the second forward in ``bn_stats_frozen(model)``.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional, Type, Union

import torch
from torch import nn

from augcore.checks import check_bool, check_number

_BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


class SAM(torch.optim.Optimizer):
    """SAM over ``base_optimizer`` (a class, built here on ``params`` with ``**kwargs``,
    or an existing instance, whose parameter groups are then used and ``params``
    must be ``None`` or the same parameters).

    Use either ``step(closure)`` (the closure zeroes nothing, runs forward and
    backward and returns the loss; it is called twice) or, for AMP and gradient
    clipping, the two halves yourself::

        loss(model(x)).backward()
        sam.first_step(grad_scaler=scaler)          # perturb, zero grads
        with bn_stats_frozen(model):
            scaler.scale(loss(model(x))).backward()
        scaler.unscale_(sam.base_optimizer); clip_grad_norm_(...)   # optional
        sam.second_step(grad_scaler=scaler)         # restore, base step, zero grads
    """

    def __init__(self, params, base_optimizer: Union[Type[torch.optim.Optimizer], torch.optim.Optimizer],
                 rho: float = 0.05, adaptive: bool = False, **kwargs):
        rho = check_number("SAM rho", rho, min=0.0)
        adaptive = check_bool("SAM adaptive", adaptive)
        if isinstance(base_optimizer, torch.optim.Optimizer):
            if kwargs:
                raise ValueError(f"SAM: optimizer options {sorted(kwargs)} given with an optimizer instance; "
                                 "set them on the instance")
            owned = {id(p) for g in base_optimizer.param_groups for p in g["params"]}
            if params is not None:
                given = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
                if {id(p) for p in given} != owned:
                    raise ValueError("SAM: params differ from the parameters of the given optimizer instance; "
                                     "pass params=None to use the instance's")
            self.base_optimizer = base_optimizer
        elif isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer):
            if params is None:
                raise ValueError("SAM: params is required when base_optimizer is a class")
            self.base_optimizer = base_optimizer(params, **kwargs)
        else:
            raise TypeError(f"SAM: base_optimizer must be a torch.optim.Optimizer class or instance, "
                            f"got {type(base_optimizer).__name__}")
        super().__init__(self.base_optimizer.param_groups, dict(rho=rho, adaptive=adaptive))
        # one list of groups for both: LR changes made on either reach the base step
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.perturbation_skipped = False

    def _grad_norm(self, inv_scale: float) -> torch.Tensor:
        norms = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.detach().to(torch.float32 if p.dtype != torch.float64 else torch.float64) * inv_scale
                if group["adaptive"]:
                    g = g * p.detach().abs().to(g.dtype)
                norms.append(g.norm(2))
        if not norms:
            raise RuntimeError("SAM.first_step: no parameter has a gradient; run backward before first_step")
        device = norms[0].device
        return torch.stack([n.to(device) for n in norms]).norm(2)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True, grad_scaler: Optional[torch.amp.GradScaler] = None) -> None:
        """Moves every parameter to w + e. With a GradScaler, gradients are unscaled
        for the perturbation; if they are not finite (an fp16 overflow) the
        perturbation is skipped (``perturbation_skipped``), the scaler then skips the
        step and lowers its scale."""
        inv_scale = 1.0 / float(grad_scaler.get_scale()) if grad_scaler is not None and grad_scaler.is_enabled() \
            else 1.0
        grad_norm = self._grad_norm(inv_scale)
        self.perturbation_skipped = not bool(torch.isfinite(grad_norm))
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                self.state[p]["old_p"] = p.detach().clone()
                if p.grad is None or self.perturbation_skipped:
                    continue
                e_w = p.grad.to(p.dtype) * inv_scale * scale.to(p)
                if group["adaptive"]:
                    e_w = e_w * p.pow(2)
                p.add_(e_w)
        if zero_grad:
            self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def second_step(self, zero_grad: bool = True, grad_scaler: Optional[torch.amp.GradScaler] = None) -> None:
        """Restores w and applies the base optimizer with the gradient taken at w + e
        (through ``grad_scaler.step`` when given; call ``grad_scaler.update()`` after)."""
        for group in self.param_groups:
            for p in group["params"]:
                if "old_p" not in self.state[p]:
                    raise RuntimeError("SAM.second_step called without a preceding first_step")
                p.copy_(self.state[p].pop("old_p"))
        if grad_scaler is not None:
            grad_scaler.step(self.base_optimizer)
        else:
            self.base_optimizer.step()
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def step(self, closure: Optional[Callable[[], torch.Tensor]] = None) -> torch.Tensor:
        """A full SAM update. ``closure`` runs forward + backward and returns the loss;
        it is called at w and at w + e. Returns the loss at w."""
        if closure is None:
            raise ValueError("SAM.step needs a closure (forward + backward returning the loss); "
                             "or call first_step() and second_step() yourself")
        closure = torch.enable_grad()(closure)
        self.zero_grad(set_to_none=True)
        loss = closure()
        self.first_step(zero_grad=True)
        closure()
        self.second_step(zero_grad=True)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        """The base optimizer's state (SAM's own state, w between the two halves, is transient)."""
        return {"base": self.base_optimizer.state_dict()}

    def load_state_dict(self, state_dict) -> None:
        if "base" not in state_dict:
            raise KeyError("SAM.load_state_dict: expected a state saved by SAM.state_dict (key 'base')")
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.param_groups = self.base_optimizer.param_groups


@contextlib.contextmanager
def bn_stats_frozen(model: nn.Module) -> Iterator[None]:
    """Forward passes inside leave BatchNorm running statistics untouched (batch
    statistics are still used for normalisation in train mode): momentum 0 keeps
    running mean/var, and the batch counter is restored so cumulative averaging
    (momentum=None) is unaffected too."""
    saved = []
    for m in model.modules():
        if isinstance(m, _BN_TYPES) and m.track_running_stats:
            saved.append((m, m.momentum, m.num_batches_tracked.clone()))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum, count in saved:
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)
