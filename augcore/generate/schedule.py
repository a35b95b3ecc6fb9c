"""How the paper's "copy at s steps of T" maps onto diffusers' img2img ``strength``.

The paper (Nguyen et al., "Do We Need All the Synthetic Data?") noises a real image to level s,
``x_s = sqrt(abar_s) x + sqrt(1 - abar_s) eps``, and denoises it for s of T = 100
steps. diffusers' img2img pipelines do exactly that for ``strength`` when
``num_inference_steps = T``:

* ``scheduler.set_timesteps(T)`` builds T inference timesteps, noisiest first;
* ``get_timesteps`` keeps ``init_timestep = min(int(T * strength), T)`` of them:
  ``t_start = T - init_timestep`` and the run uses ``timesteps[t_start * order:]``;
* the reference latent is noised with ``scheduler.add_noise(x, eps, timesteps[t_start])``
  (the sqrt(abar) formula above) and the remaining ``init_timestep`` timesteps are
  denoised, one UNet call each for first-order schedulers (DDIM, DDPM, Euler).

So a copy "at s steps" is img2img with ``strength = s / T``, but ``int()`` truncates and
``T * (s / T)`` is not always s in floating point (T = 22, s = 15 gives 14), so
:func:`strength_for_steps` returns s / T, or the first float above it that truncates to s.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch

from augcore.checks import check_int, check_int_list


def _validate(steps: int, total_steps: int) -> Tuple[int, int]:
    total_steps = check_int("total_steps", total_steps, min=1)
    return check_int("steps", steps, min=1, max=total_steps), total_steps


def steps_run_for_strength(strength: float, total_steps: int) -> int:
    """The number of denoising steps diffusers' img2img runs for ``strength`` (its own formula)."""
    return min(int(total_steps * strength), total_steps)


def strength_for_steps(steps: int, total_steps: int) -> float:
    """The img2img ``strength`` that makes diffusers run exactly ``steps`` of ``total_steps``."""
    steps, total_steps = _validate(steps, total_steps)
    strength = steps / total_steps
    while steps_run_for_strength(strength, total_steps) < steps:
        strength = math.nextafter(strength, math.inf)
    if strength > 1.0 or steps_run_for_strength(strength, total_steps) != steps:
        raise ArithmeticError(f"no float strength gives {steps} of {total_steps} steps")
    return strength


def partial_timesteps(scheduler, steps: int, total_steps: int) -> torch.Tensor:
    """The timesteps of a denoise from level ``steps``: the last ``steps`` of ``total_steps``.

    Sets ``total_steps`` on ``scheduler`` (as img2img does) and returns the tail that
    img2img would use; element 0 is the noise level the reference image is brought to.
    """
    steps, total_steps = _validate(steps, total_steps)
    scheduler.set_timesteps(total_steps)
    order = getattr(scheduler, "order", 1)
    t_start = total_steps - steps
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(t_start * order)
    return scheduler.timesteps[t_start * order:]


def check_steps(steps: Sequence[int], total_steps: int) -> tuple:
    """Sorted kept steps; raises on a scalar, non-integers, repeats and values outside [1, total_steps]."""
    total_steps = check_int("total_steps", total_steps, min=1)
    as_ints = check_int_list("steps", steps)
    if len(as_ints) == 0:
        raise ValueError("steps: at least one denoising step to keep is required, got []")
    for s in as_ints:
        check_int("steps", s, min=1, max=total_steps)
    if len(set(as_ints)) != len(as_ints):
        raise ValueError(f"steps (kept denoising steps) must be distinct, got {as_ints}")
    return tuple(sorted(as_ints))
