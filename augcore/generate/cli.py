"""``augcore generate``: make the synthetic copies of a selection, or run the whole pipeline.

    augcore generate --model PATH --dataset cifar10 --selection sel.pt --out DIR [--shard 0/4]
    augcore generate --config targeted_synthetic [--set generate.batch_size=32]
    augcore generate --config targeted_synthetic_digits --end-to-end
    augcore generate --config targeted_synthetic_digits --end-to-end --set select.method=random

Flags override the config's ``generate`` section; ``--set section.key=value`` any key.
"""
from __future__ import annotations

import argparse
import json
import os

from augcore.checks import check_indices
from augcore.config import ConfigError, apply_overrides, load_yaml


def _selection_indices(path: str):
    from augcore.selection.base import Selection

    if path.endswith(".pt"):
        return Selection.load(path).indices
    try:
        with open(path, encoding="utf-8") as fh:   # a JSON list of dataset indices
            indices = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--selection: cannot read {path} as a JSON list of dataset indices ({exc})") from None
    try:
        return check_indices(f"--selection ({path})", indices)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    raw = apply_overrides(load_yaml(args.config), args.set)
    gen = raw.setdefault("generate", {})
    for key in ("model", "kind", "scheduler", "total_steps", "guidance_scale", "steps", "seed", "batch_size",
                "shard", "device", "dtype", "init"):
        value = getattr(args, key)
        if value is not None:
            gen[key] = value
    if args.no_progress:
        gen["progress"] = False
    if args.end_to_end:
        from .pipeline import run_pipeline

        if args.out:
            raw["out"] = args.out
        result = run_pipeline(raw)
        with open(os.path.join(result.out_dir, "summary.json")) as fh:
            note = json.load(fh).get("note")
        print(json.dumps({"selected": result.selected, "selected_fraction": result.selected_fraction,
                          "generated": result.generated, "best_top1": result.retrain.best_top1,
                          "out": result.out_dir, **({"note": note} if note else {})}))
        return 0

    from .driver import generate_copies
    from .pipeline import backend_from_settings, generate_settings

    if not args.selection:
        raise ConfigError("--selection: required without --end-to-end (a Selection .pt file or a JSON list of "
                          "dataset indices)")
    indices = _selection_indices(args.selection)   # a bad file fails before a pipeline is loaded
    train = raw.get("train") or {}
    data = train.get("data") if isinstance(train, dict) else None
    if not isinstance(train, dict) or not isinstance(data or {}, dict):
        raise ConfigError("train.data: expected a mapping of keys (e.g. {name: cifar10, root: data})")
    data = data or {}
    name = args.dataset or data.get("name")
    if not name:
        raise ConfigError("--dataset: required (or train.data.name in the config)")
    from augcore.data import load_dataset

    dataset = load_dataset(name, root=args.data_root or data.get("root"), train=True)
    settings = generate_settings(raw)
    out = args.out or os.path.join(raw.get("out") or "runs/targeted_synthetic", "synthetic")
    report = generate_copies(dataset, indices, backend_from_settings(settings), out,
                             steps=settings.steps, seed=settings.seed, batch_size=settings.batch_size,
                             shard=settings.shard, prompt_template=settings.prompt_template,
                             progress=settings.progress, init=settings.init)
    print(json.dumps({"generated": report.generated, "skipped": report.skipped,
                      "images_per_second": round(report.images_per_second, 3),
                      "shard": f"{report.shard[0]}/{report.shard[1]}", "out": report.root}))
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Adds the ``generate`` subcommand to ``augcore``'s CLI."""
    p = subparsers.add_parser("generate", help="faithful diffusion copies of selected images (targeted synthetic "
                              "augmentation)", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="a shipped config's name (augcore configs) or a YAML file")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config key")
    p.add_argument("--end-to-end", action="store_true",
                   help="train to the separating epoch, select, generate, retrain (needs --config)")
    p.add_argument("--model", help="folder of a local diffusers pipeline (img2img, or a UNet2DModel one), or 'tiny'")
    p.add_argument("--kind", choices=("auto", "img2img", "unconditional", "class_conditional"),
                   help="img2img: text-conditioned (latent or pixel-space); unconditional / class_conditional: a "
                        "pixel-space UNet2DModel (default auto: from the pipeline)")
    p.add_argument("--scheduler", choices=("ddim", "ddpm"), help="swap the pipeline's scheduler (default: keep it)")
    p.add_argument("--dataset", help="dataset name for augcore.data.load_dataset")
    p.add_argument("--data-root")
    p.add_argument("--selection", help="Selection .pt file or JSON list of dataset indices")
    p.add_argument("--out", help="output folder (the resumable store)")
    p.add_argument("--steps", type=int, nargs="+", help="kept denoising steps s of T (default 40 50 70 80)")
    p.add_argument("--total-steps", type=int, help="T, inference steps of a full denoise (default 100)")
    p.add_argument("--guidance-scale", type=float, help="classifier-free guidance (default 3)")
    p.add_argument("--init", choices=("image", "noise"),
                   help="start from the noised real image (default, the paper) or from pure noise (its Fig. 5b)")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--shard", help="i/n: do the i-th of n shares (default: torch.distributed rank/world, or 0/1)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"))
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    return p
