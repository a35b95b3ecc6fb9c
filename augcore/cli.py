"""``augcore demo | train | select`` (and ``generate`` / ``bench`` when those modules are present).

    augcore demo [--out runs/demo] [--seeds 3] [--epochs 8]
    augcore train --config configs/cifar10_resnet20_coreset.yaml [--set optim.lr=0.05 ...] [--resume] [--out DIR]
    augcore select --checkpoint runs/train/checkpoint.pt --out selection.pt [--method coreset] [--fraction 0.1]
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from typing import List, Optional

# other commands register themselves here when their module exists: module -> hook
_PLUGINS = ("augcore.generate.cli", "augcore.bench_cli", "augcore.configs_cli")


def _add_train(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model as a YAML config says",
                              description="Train with periodic re-selection of the examples to augment.")
    p.add_argument("--config", help="YAML config file (see configs/); defaults apply to missing keys")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value (parsed as YAML); repeatable")
    p.add_argument("--out", help="output folder (default: run.out of the config)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from augcore.train import Trainer, load_config

    overrides = list(args.overrides) + ([f"run.out={json.dumps(args.out)}"] if args.out else [])
    config = load_config(args.config, overrides)
    result = Trainer(config, out_dir=config.run.out).fit(resume=args.resume)
    print(f"best test top-1 {result.best_top1:.2f}% (epoch {result.best_epoch + 1}), last {result.last_top1:.2f}% "
          f"top-5 {result.last_top5:.2f}%; training {result.train_time:.1f} s of which selection "
          f"{result.selection_time:.1f} s; outputs in {result.out_dir}")
    return 0


def _add_select(subparsers) -> None:
    p = subparsers.add_parser("select", help="run one selection with a trained checkpoint and save it",
                              description="One inference pass over the training set with the checkpoint's model, "
                                          "then a selector; the Selection is saved with torch.save.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.pt written by `augcore train`")
    p.add_argument("--out", required=True, help="file to write the Selection to (.pt)")
    p.add_argument("--method", help="selector name (default: the checkpoint's augment.mode)")
    p.add_argument("--fraction", type=float, help="budget as a fraction of the training set "
                                                     "(default: the checkpoint's augment.fraction)")
    p.add_argument("--seed", type=int, help="selector seed (default: the checkpoint's run.seed)")
    p.add_argument("--epoch", type=int, help="epoch recorded in the selection (default: the checkpoint's)")
    p.set_defaults(func=_cmd_select)


def _cmd_select(args) -> int:
    from augcore.selection import build_selector, collect_stats
    from augcore.train import Trainer, config_from_dict, load_checkpoint

    state = load_checkpoint(args.checkpoint)
    config = config_from_dict(state["config"])
    config.run.progress = False
    method = args.method or config.augment.mode
    if method in ("none", "full"):
        raise SystemExit(f"augcore select: the checkpoint's augment.mode is {method!r}; pass --method "
                         "(e.g. coreset, random, max_loss, slow_learnable)")
    options = dict(config.augment.selector) if method == config.augment.mode else {}
    if method != "slow_learnable":
        options["fraction"] = args.fraction if args.fraction is not None else config.augment.fraction
    selector = build_selector(method, **options)
    trainer = Trainer(config)
    trainer.model.load_state_dict(state["model"])
    stats = collect_stats(trainer.model, trainer.inference_set, batch_size=config.run.eval_batch_size,
                          device=trainer.device, num_workers=config.data.num_workers, progress=True)
    epoch = args.epoch if args.epoch is not None else int(state["epoch"])
    selection = selector.select(stats, epoch=epoch, seed=args.seed if args.seed is not None else config.run.seed)
    selection.save(args.out)
    print(selection.summary())
    return 0


def _add_demo(subparsers) -> None:
    from augcore.train.demo import DEMO_METHODS, DemoSettings
    d = DemoSettings()
    p = subparsers.add_parser("demo", help="coreset vs random-subset augmentation on the embedded digits data",
                              description="Trains a small CNN on scikit-learn's digits with no strong augmentation, "
                                          "random-subset and coreset augmentation (same budget and seeds) and "
                                          "prints accuracy, wall time and selection overhead.")
    p.add_argument("--out", default=d.out, help=f"output folder (default {d.out})")
    p.add_argument("--seeds", type=int, default=d.seeds, help=f"seeds per method (default {d.seeds})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs per run (default {d.epochs})")
    p.add_argument("--fraction", type=float, default=d.fraction, help=f"augmentation budget (default {d.fraction})")
    p.add_argument("--reselect-every", type=int, default=d.reselect_every,
                   help=f"re-select every R epochs (default {d.reselect_every})")
    p.add_argument("--strong", default=d.strong, help=f"strong augmentation (default {d.strong})")
    p.add_argument("--methods", nargs="+", default=list(d.methods), choices=DEMO_METHODS)
    p.add_argument("--threads", type=int, default=d.num_threads, help=f"torch CPU threads (default {d.num_threads})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from augcore.train.demo import DemoSettings, run_demo
    run_demo(DemoSettings(out=args.out, seeds=args.seeds, epochs=args.epochs, fraction=args.fraction,
                          reselect_every=args.reselect_every, strong=args.strong, methods=tuple(args.methods),
                          num_threads=args.threads, progress=not args.no_progress))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="augcore", description="Data-efficient augmentation: pick the few "
                                     "training examples whose augmentation buys most of the gain.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_demo(subparsers)
    _add_train(subparsers)
    _add_select(subparsers)
    for module_name in _PLUGINS:
        # find_spec only tells whether the module exists; errors inside it are not hidden
        parent = module_name.rsplit(".", 1)[0]
        if importlib.util.find_spec(parent) is None or importlib.util.find_spec(module_name) is None:
            continue
        register = getattr(importlib.import_module(module_name), "register", None)
        if callable(register):
            register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from augcore.train.config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"augcore {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
