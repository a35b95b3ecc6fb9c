"""Tiny randomly initialised diffusers pipelines, saved to a folder like a real model.

For offline tests, benchmarks and demos: no weights are downloaded. Shapes follow the
small configs diffusers uses in its own tests. They are untrained, so their images are
noise; what they exercise is the full generation path (tokenizer, text encoder, VAE or
none, UNet, scheduler): a latent Stable Diffusion img2img pipeline, a pixel-space
DeepFloyd-IF-style img2img pipeline (no VAE), and pixel-space ``UNet2DModel`` ones,
unconditional and class-conditional.

``generate.model: tiny`` (or ``--model tiny``) names such a pipeline: it is built once into
the cache folder (``$AUGCORE_CACHE``, else ``$XDG_CACHE_HOME/augcore``, else
``~/.cache/augcore``) and loaded from there (:func:`cached_tiny_pipeline`).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch

TINY_MODEL = "tiny"
UNTRAINED_NOTICE = ("generate.model 'tiny' is a tiny randomly initialised diffusion pipeline (untrained): the "
                    "images it makes are noise. It exercises the whole pipeline offline; for real copies set "
                    "generate.model (or --model) to a local diffusers pipeline folder.")


class UntrainedModelWarning(UserWarning):
    """Generation runs with the untrained ``tiny`` pipeline: the images are noise."""

# Plain words of a few class names plus the characters of any other word, so that any
# prompt tokenizes (character-level byte-pair encoding without merges beyond these).
_WORDS = ("a", "photo", "of", "cat", "dog", "car", "ship", "bird", "zero", "one", "two", "three")


def _write_clip_tokenizer_files(folder: str) -> None:
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    vocab = ["<|startoftext|>", "<|endoftext|>", "!"]
    vocab += chars + [c + "</w>" for c in chars] + [w + "</w>" for w in _WORDS if len(w) > 1]
    merges = ["#version: 0.2"]
    for word in _WORDS:
        if len(word) < 2:
            continue
        # merge left to right: ((w o) r) d</w>
        left = word[0]
        for i, ch in enumerate(word[1:], start=1):
            right = ch + "</w>" if i == len(word) - 1 else ch
            merges.append(f"{left} {right}")
            left = left + right
            if left not in vocab:
                vocab.append(left)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w") as fh:
        json.dump({tok: i for i, tok in enumerate(dict.fromkeys(vocab))}, fh)
    with open(os.path.join(folder, "merges.txt"), "w") as fh:
        fh.write("\n".join(merges) + "\n")


def build_tiny_img2img(folder: str, *, resolution: int = 32, seed: int = 0, scheduler: str = "ddim") -> str:
    """Saves a tiny random Stable Diffusion img2img pipeline to ``folder``; returns ``folder``."""
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionImg2ImgPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if resolution % 2:
        raise ValueError(f"resolution must be even (VAE downsamples by 2), got {resolution}")
    torch.manual_seed(seed)
    tok_dir = os.path.join(folder, "_tokenizer_src")
    _write_clip_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer(os.path.join(tok_dir, "vocab.json"), os.path.join(tok_dir, "merges.txt"),
                              model_max_length=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=16, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        layers_per_block=1, norm_num_groups=2, sample_size=resolution)
    unet = UNet2DConditionModel(
        sample_size=resolution // 2, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=2, norm_num_groups=4)
    sched_cls = DDIMScheduler if scheduler == "ddim" else DDPMScheduler
    sched = sched_cls(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      clip_sample=False, steps_offset=1)
    pipe = StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                          scheduler=sched, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def build_tiny_unconditional(folder: str, *, resolution: int = 16, channels: int = 3, seed: int = 0,
                             scheduler: str = "ddpm", num_classes: Optional[int] = None) -> str:
    """Saves a tiny random pixel-space UNet2DModel + DDPM/DDIM scheduler pipeline to ``folder``;
    class-conditional (``num_class_embeds = num_classes``) when ``num_classes`` is given."""
    from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=resolution, in_channels=channels, out_channels=channels,
                       block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       num_class_embeds=num_classes)
    if scheduler == "ddim":
        pipe = DDIMPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=1000))
    else:
        pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000))
    pipe.save_pretrained(folder)
    return folder


def build_tiny_class_conditional(folder: str, *, num_classes: int = 10, **kwargs) -> str:
    """A tiny random class-conditional UNet2DModel pipeline (``num_class_embeds = num_classes``)."""
    return build_tiny_unconditional(folder, num_classes=num_classes, **kwargs)


def build_tiny_pixel_img2img(folder: str, *, resolution: int = 16, seed: int = 0) -> str:
    """Saves a tiny random pixel-space text-conditioned img2img pipeline (DeepFloyd IF's
    ``IFImg2ImgPipeline`` with IF stage I's UNet layout and scheduler, no VAE) to ``folder``.

    The tokenizer and text encoder are tiny CLIP ones in place of IF's T5: the pipeline
    only tokenizes and encodes, so any pair with matching sizes runs it.
    """
    from diffusers import DDPMScheduler, IFImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    tok_dir = os.path.join(folder, "_tokenizer_src")
    _write_clip_tokenizer_files(tok_dir)
    # IF pads prompts to 77 tokens
    tokenizer = CLIPTokenizer(os.path.join(tok_dir, "vocab.json"), os.path.join(tok_dir, "merges.txt"),
                              model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    unet = UNet2DConditionModel(
        sample_size=resolution, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        in_channels=3, out_channels=6, cross_attention_dim=32, encoder_hid_dim=32, attention_head_dim=4,
        addition_embed_type="text", addition_embed_type_num_heads=2, cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift", act_fn="gelu", norm_num_groups=4)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", thresholding=True,
                          dynamic_thresholding_ratio=0.95, sample_max_value=1.0, prediction_type="epsilon",
                          variance_type="learned_range")
    pipe = IFImg2ImgPipeline(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet, scheduler=sched,
                             safety_checker=None, feature_extractor=None, watermarker=None,
                             requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def tiny_image_batch(n: int, channels: int, size: Sequence[int], seed: int = 0) -> torch.Tensor:
    """Random uint8 (n, C, H, W) images for tests and benchmarks."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, *size), generator=g, dtype=torch.uint8)


def cache_dir() -> Path:
    """augcore's cache folder: ``$AUGCORE_CACHE``, else ``$XDG_CACHE_HOME/augcore``, else ``~/.cache/augcore``."""
    if os.environ.get("AUGCORE_CACHE"):
        return Path(os.environ["AUGCORE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "augcore"


def cached_tiny_pipeline(kind: str = "img2img") -> str:
    """Folder of the cached tiny pipeline of ``kind`` ("img2img", "unconditional" or
    "class_conditional", 10 classes), built on first use.

    The folder name carries the diffusers version, so an upgrade builds a fresh one. It is
    built in a temporary folder and renamed into place, so concurrent first uses are safe.
    """
    import diffusers

    builders = {"img2img": build_tiny_img2img, "unconditional": build_tiny_unconditional,
                "class_conditional": build_tiny_class_conditional}
    if kind not in builders:
        raise ValueError(f"kind must be one of {tuple(builders)} for the tiny model, got {kind!r}")
    folder = cache_dir() / f"tiny-{kind}-seed0-diffusers{diffusers.__version__}"
    if (folder / "model_index.json").is_file():
        return str(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent)
    try:
        builders[kind](staging)
        os.replace(staging, folder)
    except OSError:
        if not (folder / "model_index.json").is_file():   # not a concurrent build that won the rename
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(folder)
