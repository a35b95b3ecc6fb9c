"""Targeted synthetic augmentation: faithful diffusion copies of the slow-learnable images.

``load_backend`` loads a local diffusers pipeline (latent or pixel-space img2img, or a
pixel-space UNet2DModel, unconditional or class-conditional); ``generate_copies`` fills a
resumable on-disk store; the datasets combine the originals with the copies (or with plain
repeats, the Upsample baseline); ``store_fid`` measures the copies' FID from a local
InceptionV3 weights file. Needs the optional dependencies diffusers and transformers
(``augcore[generate]``), and torchmetrics and torch-fidelity for FID (``augcore[fid]``).
"""
from .datasets import SyntheticAugmentedDataset, UpsampledDataset, resolve_steps
from .driver import (PAPER_PROMPT, PAPER_STEPS, PAPER_STEPS_FOR_K, GenerationReport, MissingClassNameError,
                     class_prompt, derive_seed, generate_copies, parse_shard, plan_units, shard_units)
from .fid import frechet_inception_distance, store_fid
from .models import Img2ImgBackend, NotADiffusersPipelineError, PixelBackend, UnconditionalBackend, load_backend
from .schedule import partial_timesteps, steps_run_for_strength, strength_for_steps
from .store import StoreMismatchError, SyntheticStore

__all__ = [
    "SyntheticAugmentedDataset", "UpsampledDataset", "resolve_steps", "PAPER_PROMPT", "PAPER_STEPS",
    "PAPER_STEPS_FOR_K", "GenerationReport", "MissingClassNameError", "class_prompt", "derive_seed",
    "generate_copies", "parse_shard", "plan_units", "shard_units", "Img2ImgBackend", "NotADiffusersPipelineError",
    "PixelBackend", "UnconditionalBackend", "frechet_inception_distance", "store_fid", "load_backend",
    "partial_timesteps", "steps_run_for_strength", "strength_for_steps", "StoreMismatchError", "SyntheticStore",
]
