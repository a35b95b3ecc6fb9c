"""Diffusion back ends: any local diffusers img2img pipeline, or an unconditional UNet2DModel.

Both take images in [0, 1] at the model's resolution, noise them to the level of
"s of T steps" and denoise them for exactly s steps (see :mod:`augcore.generate.schedule`).
The text-conditioned back end runs the paper's procedure (img2img from the noised real
image, prompt "a photo of a {class}", guidance 3, T = 100) with any diffusers img2img
pipeline, e.g. Stable Diffusion; the paper's own model was GLIDE, which is not a diffusers
pipeline. The unconditional one runs the same
noising and partial denoising loop itself, without a prompt.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch

from .schedule import partial_timesteps, strength_for_steps
from .tiny import TINY_MODEL, UNTRAINED_NOTICE, UntrainedModelWarning, cached_tiny_pipeline

SCHEDULERS = ("ddim", "ddpm")
UNCONDITIONAL_UNETS = ("UNet2DModel",)


class NotADiffusersPipelineError(ValueError):
    """The model source is not a folder saved by a diffusers pipeline's ``save_pretrained``."""


def _require_diffusers():
    try:
        import diffusers  # noqa: F401
    except ImportError as exc:  # an optional dependency: augcore[generate]
        raise ImportError("augcore.generate needs diffusers and transformers: "
                          "pip install 'augcore[generate]'") from exc
    return diffusers


def _swap_scheduler(scheduler, name: Optional[str]):
    if name is None:
        return scheduler
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {SCHEDULERS} or None (keep the pipeline's), got {name!r}")
    diffusers = _require_diffusers()
    cls = diffusers.DDIMScheduler if name == "ddim" else diffusers.DDPMScheduler
    return cls.from_config(scheduler.config)


def _generator_device(generators: Sequence[torch.Generator]) -> None:
    if any(g.device.type != "cpu" for g in generators):
        raise ValueError("per-image generators must live on the CPU so that images do not depend on the device")


@dataclass
class GenerationOutput:
    images: torch.Tensor   # (B, C, R, R) float32 in [0, 1], on the CPU
    denoise_steps: int     # UNet evaluations per image actually run
    first_timestep: int    # the training timestep the reference was noised to


class Img2ImgBackend:
    """A diffusers image-to-image pipeline (Stable Diffusion family), text-conditioned.

    Defaults follow the paper: T = 100 inference steps, guidance scale 3.
    """

    kind = "img2img"
    conditional = True

    def __init__(self, pipeline, *, model_id: str, total_steps: int = 100, guidance_scale: float = 3.0,
                 scheduler: Optional[str] = None):
        for part in ("unet", "vae", "scheduler"):
            if getattr(pipeline, part, None) is None:
                raise NotADiffusersPipelineError(f"{model_id}: pipeline {type(pipeline).__name__} has no {part}; "
                                                 "an img2img pipeline (Stable Diffusion family) is required")
        pipeline.scheduler = _swap_scheduler(pipeline.scheduler, scheduler)
        pipeline.set_progress_bar_config(disable=True)
        self.pipeline = pipeline
        self.model_id = model_id
        self.total_steps = int(total_steps)
        self.guidance_scale = float(guidance_scale)
        self.channels = 3
        self.resolution = int(pipeline.unet.config.sample_size) * int(pipeline.vae_scale_factor)

    @property
    def scheduler_name(self) -> str:
        return type(self.pipeline.scheduler).__name__

    def generate(self, images: torch.Tensor, prompts: List[str], steps: int,
                 generators: List[torch.Generator]) -> GenerationOutput:
        _generator_device(generators)
        calls: List[int] = []

        def count_step(pipe, i, t, kwargs):
            calls.append(int(t))
            return kwargs

        device = self.pipeline.device
        out = self.pipeline(prompt=list(prompts), image=images.to(device), strength=strength_for_steps(steps, self.total_steps),
                            num_inference_steps=self.total_steps, guidance_scale=self.guidance_scale,
                            generator=list(generators), output_type="pt", callback_on_step_end=count_step)
        return GenerationOutput(out.images.float().cpu(), len(calls), calls[0] if calls else -1)


class UnconditionalBackend:
    """An unconditional ``UNet2DModel`` + scheduler (DDPM/DDIM) with the noising and partial
    denoising loop written out: x_s = sqrt(abar_s) x + sqrt(1 - abar_s) eps, then s steps."""

    kind = "unconditional"
    conditional = False
    guidance_scale = None

    def __init__(self, unet, scheduler, *, model_id: str, total_steps: int = 100, scheduler_name: Optional[str] = None):
        if type(unet).__name__ not in UNCONDITIONAL_UNETS:
            raise NotADiffusersPipelineError(f"{model_id}: expected an unconditional UNet2DModel, got {type(unet).__name__}")
        self.unet = unet.eval()
        self.scheduler = _swap_scheduler(scheduler, scheduler_name)
        self.model_id = model_id
        self.total_steps = int(total_steps)
        self.channels = int(unet.config.in_channels)
        if self.channels not in (1, 3):
            raise ValueError(f"{model_id}: UNet2DModel with {self.channels} channels; 1 (grayscale) or 3 (RGB) required")
        size = unet.config.sample_size
        self.resolution = int(size if isinstance(size, int) else size[0])

    @property
    def scheduler_name(self) -> str:
        return type(self.scheduler).__name__

    @torch.no_grad()
    def generate(self, images: torch.Tensor, prompts: Optional[List[str]], steps: int,
                 generators: List[torch.Generator]) -> GenerationOutput:
        from diffusers.utils.torch_utils import randn_tensor

        _generator_device(generators)
        device, dtype = self.unet.device, self.unet.dtype
        timesteps = partial_timesteps(self.scheduler, steps, self.total_steps)
        x0 = images.to(device=device, dtype=dtype) * 2.0 - 1.0
        noise = randn_tensor(x0.shape, generator=list(generators), device=device, dtype=dtype)
        x = self.scheduler.add_noise(x0, noise, timesteps[:1].repeat(x0.shape[0]))
        for t in timesteps:
            eps = self.unet(x, t).sample
            x = self.scheduler.step(eps, t, x, generator=list(generators)).prev_sample
        return GenerationOutput(((x.float().cpu() + 1.0) / 2.0).clamp(0.0, 1.0), len(timesteps), int(timesteps[0]))


def _read_model_index(path: str) -> dict:
    index = os.path.join(path, "model_index.json")
    if not os.path.isdir(path):
        raise NotADiffusersPipelineError(f"model source {path!r} is not a folder (a diffusers pipeline saved "
                                         "with save_pretrained is required)")
    if not os.path.isfile(index):
        raise NotADiffusersPipelineError(f"model source {path!r} is not a diffusers pipeline: no model_index.json")
    try:
        with open(index) as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise NotADiffusersPipelineError(f"{index} is not valid JSON: {exc}") from exc


def _unet_class(model_index: dict) -> Optional[str]:
    entry = model_index.get("unet")
    return entry[1] if isinstance(entry, (list, tuple)) and len(entry) == 2 else None


def load_backend(source: str, *, kind: str = "auto", scheduler: Optional[str] = None, total_steps: int = 100,
                 guidance_scale: float = 3.0, device: str = "cpu", dtype: Optional[torch.dtype] = None):
    """Loads a diffusion back end from a local diffusers pipeline folder.

    ``kind``: "img2img" (text-conditioned, the paper's procedure), "unconditional" (UNet2DModel +
    scheduler), or "auto" (unconditional when the pipeline's unet is a UNet2DModel).
    ``scheduler``: None keeps the pipeline's; "ddim" or "ddpm" swaps it, same config.
    ``source`` "tiny" is a tiny untrained pipeline, built and cached on first use
    (:func:`augcore.generate.tiny.cached_tiny_pipeline`); it warns that its images are noise.
    A local folder named ``tiny`` is then written ``./tiny``.
    """
    diffusers = _require_diffusers()
    source = model_id = os.fspath(source)
    if source == TINY_MODEL:
        warnings.warn(UNTRAINED_NOTICE, UntrainedModelWarning, stacklevel=2)
        source = cached_tiny_pipeline("unconditional" if kind == "unconditional" else "img2img")
    model_index = _read_model_index(source)
    if kind == "auto":
        kind = "unconditional" if _unet_class(model_index) in UNCONDITIONAL_UNETS else "img2img"
    if kind not in ("img2img", "unconditional"):
        raise ValueError(f"kind must be 'auto', 'img2img' or 'unconditional', got {kind!r}")
    dtype_kw = {} if dtype in (None, torch.float32) else {"torch_dtype": dtype}   # float32 is diffusers' default
    try:
        if kind == "img2img":
            pipe = diffusers.AutoPipelineForImage2Image.from_pretrained(source, **dtype_kw)
        else:
            pipe = diffusers.DiffusionPipeline.from_pretrained(source, **dtype_kw)
    except (ValueError, OSError, KeyError) as exc:
        raise NotADiffusersPipelineError(f"{source}: diffusers could not load it as a {kind} pipeline "
                                         f"({model_index.get('_class_name')}): {exc}") from exc
    pipe = pipe.to(device)
    if kind == "img2img":
        return Img2ImgBackend(pipe, model_id=model_id, total_steps=total_steps, guidance_scale=guidance_scale,
                              scheduler=scheduler)
    if getattr(pipe, "unet", None) is None or getattr(pipe, "scheduler", None) is None:
        raise NotADiffusersPipelineError(f"{source}: an unconditional pipeline needs a unet and a scheduler")
    return UnconditionalBackend(pipe.unet, pipe.scheduler, model_id=model_id, total_steps=total_steps,
                                scheduler_name=scheduler)
