"""Diffusion back ends: any local diffusers img2img pipeline, or a pixel-space UNet2DModel.

All take images in [0, 1] at the model's resolution, noise them to the level of
"s of T steps" and denoise them for exactly s steps (see :mod:`augcore.generate.schedule`),
or, with ``init="noise"`` (the paper's Fig. 5b ablation), start from pure Gaussian noise
and denoise all T steps.

* :class:`Img2ImgBackend`: a text-conditioned diffusers img2img pipeline run with the paper's
  procedure (prompt "a photo of a {class}", guidance 3, T = 100): latent ones with a VAE
  (Stable Diffusion family) and pixel-space ones without (DeepFloyd IF's
  ``IFImg2ImgPipeline`` stage I). The paper's own model, GLIDE, is a pixel-space
  text-conditioned model but not a diffusers pipeline.
* :class:`PixelBackend`: a ``UNet2DModel`` + scheduler, unconditional or class-conditional
  (``num_class_embeds``: the class label is the condition, no prompt), with the noising and
  partial denoising loop written out here.
"""
from __future__ import annotations

import inspect
import json
import os
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch

from augcore.checks import check_choice

from .schedule import partial_timesteps, strength_for_steps
from .tiny import TINY_MODEL, UNTRAINED_NOTICE, UntrainedModelWarning, cached_tiny_pipeline

SCHEDULERS = ("ddim", "ddpm")
PIXEL_UNETS = ("UNet2DModel",)
KINDS = ("img2img", "unconditional", "class_conditional")
INITS = ("image", "noise")   # the paper's real-image guidance, or pure noise (its Fig. 5b ablation)


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


def _sample_size(config, model_id: str) -> int:
    size = config.sample_size
    if not isinstance(size, int):
        if len(set(size)) != 1:
            raise NotADiffusersPipelineError(f"{model_id}: the UNet's sample_size {tuple(size)} is not square")
        size = size[0]
    return int(size)


@dataclass
class GenerationOutput:
    images: torch.Tensor   # (B, C, R, R) float32 in [0, 1], on the CPU
    denoise_steps: int     # UNet evaluations per image actually run
    first_timestep: int    # the training timestep the reference was noised to (or the noise started at)


class Img2ImgBackend:
    """A text-conditioned diffusers image-to-image pipeline.

    Latent pipelines (with a VAE, Stable Diffusion family) work at
    ``unet.sample_size * vae_scale_factor`` pixels and take and return images in
    [0, 1]; pixel-space ones (no VAE, e.g. DeepFloyd IF's ``IFImg2ImgPipeline``) work at
    ``unet.sample_size`` and take and return images in [-1, 1] (their ``"pt"`` output is
    the raw last sample). ``init="noise"`` runs the same weights as a text-to-image
    pipeline (``AutoPipelineForText2Image.from_pipe``) for all T steps.
    Defaults follow the paper: T = 100 inference steps, guidance scale 3.
    """

    kind = "img2img"
    conditional = True
    class_conditional = False

    def __init__(self, pipeline, *, model_id: str, total_steps: int = 100, guidance_scale: float = 3.0,
                 scheduler: Optional[str] = None):
        for part in ("unet", "scheduler"):
            if getattr(pipeline, part, None) is None:
                raise NotADiffusersPipelineError(f"{model_id}: pipeline {type(pipeline).__name__} has no {part}; "
                                                 "an img2img pipeline (a UNet and a scheduler) is required")
        pipeline.scheduler = _swap_scheduler(pipeline.scheduler, scheduler)
        pipeline.set_progress_bar_config(disable=True)
        self.pipeline = pipeline
        self.model_id = model_id
        self.total_steps = int(total_steps)
        self.guidance_scale = float(guidance_scale)
        self.pixel_space = getattr(pipeline, "vae", None) is None
        self.channels = int(pipeline.unet.config.in_channels) if self.pixel_space else 3
        if self.channels != 3:
            raise NotADiffusersPipelineError(f"{model_id}: a pixel-space UNet with {self.channels} input channels; "
                                             "3 (RGB) required")
        scale = 1 if self.pixel_space else int(pipeline.vae_scale_factor)
        self.resolution = _sample_size(pipeline.unet.config, model_id) * scale
        self._text2image = None

    @property
    def scheduler_name(self) -> str:
        return type(self.pipeline.scheduler).__name__

    def _run(self, pipe, calls: List[int], **kwargs):
        """Calls ``pipe`` counting its UNet steps with whichever callback API it has."""
        params = inspect.signature(pipe.__call__).parameters
        if "callback_on_step_end" in params:
            def count_step(p, i, t, tensors):
                calls.append(int(t))
                return tensors
            kwargs["callback_on_step_end"] = count_step
        else:   # the older per-step callback (DeepFloyd IF)
            kwargs.update(callback=lambda i, t, latents: calls.append(int(t)), callback_steps=1)
        if "clean_caption" in params:   # IF's web-caption cleaning (needs bs4, ftfy); our prompts are plain
            kwargs["clean_caption"] = False
        return pipe(**kwargs, output_type="pt").images

    def generate(self, images: torch.Tensor, prompts: List[str], steps: int, generators: List[torch.Generator],
                 *, labels: Optional[Sequence[int]] = None, init: str = "image") -> GenerationOutput:
        _generator_device(generators)
        init = check_choice("init", init, INITS)
        calls: List[int] = []
        common = dict(prompt=list(prompts), num_inference_steps=self.total_steps, guidance_scale=self.guidance_scale,
                      generator=list(generators))
        if init == "noise":
            if self._text2image is None:
                from diffusers import AutoPipelineForText2Image
                self._text2image = AutoPipelineForText2Image.from_pipe(self.pipeline)
                self._text2image.set_progress_bar_config(disable=True)
            out = self._run(self._text2image, calls, height=self.resolution, width=self.resolution, **common)
        else:
            x = images.to(self.pipeline.device)
            out = self._run(self.pipeline, calls, image=x * 2.0 - 1.0 if self.pixel_space else x,
                            strength=strength_for_steps(steps, self.total_steps), **common)
        out = out.float().cpu()
        if self.pixel_space:
            out = (out + 1.0) / 2.0
        return GenerationOutput(out.clamp(0.0, 1.0), len(calls), calls[0] if calls else -1)


class PixelBackend:
    """A pixel-space ``UNet2DModel`` + scheduler (DDPM/DDIM) with the loop written out:
    x_s = sqrt(abar_s) x + sqrt(1 - abar_s) eps, then s scheduler steps.

    Unconditional, or class-conditional when the UNet has class embeddings
    (``num_class_embeds``): each image is denoised conditioned on its dataset label
    (which must lie in [0, num_class_embeds)). No prompt, no guidance.
    """

    conditional = False
    guidance_scale = None

    def __init__(self, unet, scheduler, *, model_id: str, total_steps: int = 100, scheduler_name: Optional[str] = None):
        if type(unet).__name__ not in PIXEL_UNETS:
            raise NotADiffusersPipelineError(f"{model_id}: expected a pixel-space UNet2DModel, "
                                             f"got {type(unet).__name__}")
        config = unet.config
        if config.class_embed_type is not None:
            raise NotADiffusersPipelineError(f"{model_id}: class_embed_type {config.class_embed_type!r} takes "
                                             "embeddings, not class ids; a UNet2DModel with num_class_embeds is needed")
        self.unet = unet.eval()
        self.scheduler = _swap_scheduler(scheduler, scheduler_name)
        self.model_id = model_id
        self.total_steps = int(total_steps)
        self.num_classes = config.num_class_embeds
        self.class_conditional = self.num_classes is not None
        self.kind = "class_conditional" if self.class_conditional else "unconditional"
        self.channels = int(config.in_channels)
        if self.channels not in (1, 3):
            raise ValueError(f"{model_id}: UNet2DModel with {self.channels} channels; 1 (grayscale) or 3 (RGB) required")
        self.resolution = _sample_size(config, model_id)

    @property
    def scheduler_name(self) -> str:
        return type(self.scheduler).__name__

    def _class_labels(self, labels, batch: int) -> Optional[torch.Tensor]:
        if not self.class_conditional:
            return None
        if labels is None:
            raise ValueError(f"{self.model_id} is class-conditional: labels (one class id per image) are required")
        labels = torch.as_tensor(list(labels), dtype=torch.int64)
        if labels.shape != (batch,):
            raise ValueError(f"labels: one class id per image expected ({batch}), got {tuple(labels.shape)}")
        bad = labels[(labels < 0) | (labels >= self.num_classes)]
        if bad.numel():
            raise ValueError(f"labels: class {int(bad[0])} is outside the model's num_class_embeds = "
                             f"{self.num_classes} classes")
        return labels.to(self.unet.device)

    @torch.no_grad()
    def generate(self, images: torch.Tensor, prompts: Optional[List[str]], steps: int,
                 generators: List[torch.Generator], *, labels: Optional[Sequence[int]] = None,
                 init: str = "image") -> GenerationOutput:
        from diffusers.utils.torch_utils import randn_tensor

        _generator_device(generators)
        init = check_choice("init", init, INITS)
        class_labels = self._class_labels(labels, images.shape[0])
        device, dtype = self.unet.device, self.unet.dtype
        timesteps = partial_timesteps(self.scheduler, self.total_steps if init == "noise" else steps, self.total_steps)
        noise = randn_tensor(tuple(images.shape), generator=list(generators), device=device, dtype=dtype)
        if init == "noise":
            x = noise * self.scheduler.init_noise_sigma
        else:
            x0 = images.to(device=device, dtype=dtype) * 2.0 - 1.0
            x = self.scheduler.add_noise(x0, noise, timesteps[:1].repeat(x0.shape[0]))
        for t in timesteps:
            eps = self.unet(self.scheduler.scale_model_input(x, t), t, class_labels=class_labels).sample
            x = self.scheduler.step(eps, t, x, generator=list(generators)).prev_sample
        return GenerationOutput(((x.float().cpu() + 1.0) / 2.0).clamp(0.0, 1.0), len(timesteps), int(timesteps[0]))


UnconditionalBackend = PixelBackend   # its earlier name


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

    ``kind``: "img2img" (text-conditioned, the paper's procedure; latent or pixel-space),
    "unconditional" or "class_conditional" (a pixel-space UNet2DModel + scheduler; the
    class-conditional one needs ``num_class_embeds``), or "auto": a UNet2DModel is
    class-conditional when it has class embeddings, else unconditional; anything else img2img.
    ``scheduler``: None keeps the pipeline's; "ddim" or "ddpm" swaps it, same config.
    ``source`` "tiny" is a tiny untrained pipeline of that kind, built and cached on first use
    (:func:`augcore.generate.tiny.cached_tiny_pipeline`); it warns that its images are noise.
    A local folder named ``tiny`` is then written ``./tiny``.
    """
    diffusers = _require_diffusers()
    if kind != "auto":
        check_choice("kind", kind, KINDS)
    source = model_id = os.fspath(source)
    requested = kind
    if source == TINY_MODEL:
        warnings.warn(UNTRAINED_NOTICE, UntrainedModelWarning, stacklevel=2)
        source = cached_tiny_pipeline("img2img" if kind == "auto" else kind)
    model_index = _read_model_index(source)
    if kind == "auto":   # a UNet2DModel's class embeddings are read once it is loaded
        kind = "unconditional" if _unet_class(model_index) in PIXEL_UNETS else "img2img"
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
        raise NotADiffusersPipelineError(f"{source}: a pixel-space pipeline needs a unet and a scheduler")
    backend = PixelBackend(pipe.unet, pipe.scheduler, model_id=model_id, total_steps=total_steps,
                           scheduler_name=scheduler)
    if requested != "auto" and backend.kind != requested:
        raise NotADiffusersPipelineError(f"{source}: asked for a {requested} model, but its UNet2DModel is "
                                         f"{backend.kind} (num_class_embeds = {backend.num_classes})")
    return backend
