"""Targeted synthetic augmentation: faithful diffusion copies of the slow-learnable images.

``load_backend`` loads a local diffusers pipeline (img2img, or an unconditional
UNet2DModel); ``generate_copies`` fills a resumable on-disk store; the datasets combine
the originals with the copies (or with plain repeats, the Upsample baseline).
Needs the optional dependencies diffusers and transformers (``augcore[generate]``).
"""
from .datasets import SyntheticAugmentedDataset, UpsampledDataset, resolve_steps
from .driver import (PAPER_PROMPT, PAPER_STEPS, PAPER_STEPS_FOR_K, GenerationReport, MissingClassNameError,
                     class_prompt, derive_seed, generate_copies, parse_shard, plan_units, shard_units)
from .models import Img2ImgBackend, NotADiffusersPipelineError, UnconditionalBackend, load_backend
from .schedule import partial_timesteps, steps_run_for_strength, strength_for_steps
from .store import StoreMismatchError, SyntheticStore

__all__ = [
    "SyntheticAugmentedDataset", "UpsampledDataset", "resolve_steps", "PAPER_PROMPT", "PAPER_STEPS",
    "PAPER_STEPS_FOR_K", "GenerationReport", "MissingClassNameError", "class_prompt", "derive_seed",
    "generate_copies", "parse_shard", "plan_units", "shard_units", "Img2ImgBackend", "NotADiffusersPipelineError",
    "UnconditionalBackend", "load_backend", "partial_timesteps", "steps_run_for_strength", "strength_for_steps",
    "StoreMismatchError", "SyntheticStore",
]
