"""``augcore demo | train | select | configs | generate | bench``.

    augcore demo [--out runs/demo] [--seeds 14] [--subset-fractions 0.05 0.1] [--epochs 6]
    augcore train --config cifar10_resnet20_coreset [--mode max_loss] [--set optim.lr=0.05 ...] [--resume] [--out DIR]
    augcore select --checkpoint runs/train/checkpoint.pt --out selection.pt [--method coreset] [--fraction 0.1]

Bad input (an unknown key, a malformed ``--set``, a missing or damaged file) ends with
one line naming the option and exit status 2; ``AUGCORE_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from typing import List, NoReturn, Optional

# other commands register themselves here when their module exists: module -> hook
_PLUGINS = ("augcore.generate.cli", "augcore.bench_cli", "augcore.configs_cli")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (``augcore train: error: ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _argument_type(parse, ok, expected: str):
    """An argparse ``type=`` that parses with ``parse`` and accepts values where ``ok(value)``."""
    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value
    return convert


positive_int = _argument_type(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _argument_type(int, lambda v: v >= 0, "an integer >= 0")
fraction = _argument_type(float, lambda v: 0.0 < v <= 1.0, "a number in (0, 1]")
positive_number = _argument_type(float, lambda v: v > 0.0, "a number > 0")


def _policy_names() -> List[str]:
    from augcore.train.policies import POLICIES
    return list(POLICIES)


def _add_train(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model as a YAML config says",
                              description="Train with periodic re-selection of the examples to augment.")
    p.add_argument("--config", help="a shipped config's name (augcore configs) or a YAML file; defaults apply to "
                                    "missing keys")
    p.add_argument("--mode", choices=_policy_names(), help="the selection policy (augment.mode)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. optim.lr=0.05 or augment.selector.method=lazy "
                        "(parsed as YAML); repeatable")
    p.add_argument("--out", help="output folder (default: run.out of the config)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from augcore.train import Trainer, load_config

    overrides = list(args.overrides) + ([f"run.out={json.dumps(args.out)}"] if args.out else [])
    overrides += [f"augment.mode={args.mode}"] if args.mode else []
    config = load_config(args.config, overrides)
    result = Trainer(config, out_dir=config.run.out).fit(resume=args.resume)
    print(f"best test top-1 {result.best_top1:.2f}% (epoch {result.best_epoch + 1}), last {result.last_top1:.2f}% "
          f"top-5 {result.last_top5:.2f}%; training {result.train_time:.1f} s of which selection "
          f"{result.selection_time:.1f} s; outputs in {result.out_dir}")
    return 0


def _add_select(subparsers) -> None:
    p = subparsers.add_parser("select", help="run one selection with a trained checkpoint and save it",
                              description="One inference pass over the training set with the checkpoint's model, "
                                          "then a selection policy's selector; the Selection is saved with "
                                          "torch.save.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.pt written by `augcore train`")
    p.add_argument("--out", required=True, help="file to write the Selection to (.pt)")
    p.add_argument("--method", choices=_policy_names(), help="selection policy (default: the checkpoint's "
                                                             "augment.mode)")
    p.add_argument("--fraction", type=fraction, help="budget as a fraction of the training set "
                                                      "(default: the checkpoint's augment.fraction)")
    p.add_argument("--seed", type=non_negative_int, help="selector seed (default: the checkpoint's run.seed)")
    p.add_argument("--epoch", type=non_negative_int, help="epoch recorded in the selection (default: the "
                                                          "checkpoint's)")
    p.set_defaults(func=_cmd_select)


def _cmd_select(args) -> int:
    from augcore.train.select import select_from_checkpoint

    selection = select_from_checkpoint(args.checkpoint, method=args.method, fraction=args.fraction,
                                       seed=args.seed, epoch=args.epoch)
    selection.save(args.out)
    print(selection.summary())
    return 0


def _add_demo(subparsers) -> None:
    from augcore.train.demo import DEMO_METHODS, MIN_SEEDS_FOR_A_VERDICT, DemoSettings
    d = DemoSettings()
    p = subparsers.add_parser("demo", help="coreset vs random-subset augmentation on the embedded digits data",
                              description="On scikit-learn's digits with a small CNN: (1) train only on a small "
                                          "subset and its strong copies, coreset vs random (the coreset paper's "
                                          "Table 1 protocol), then (2) the full data plus strong copies of a "
                                          "subset, with the weak-only baseline (its Table 4 protocol). Prints "
                                          "accuracy over seeds, the selection overhead and, per budget, "
                                          "coreset minus random over paired seeds (mean, 95% CI, Wilcoxon "
                                          "signed-rank test) with a plain-words verdict; writes a per-seed plot.")
    p.add_argument("--out", default=d.out, help=f"output folder (default {d.out})")
    p.add_argument("--seeds", type=positive_int, default=d.seeds,
                   help=f"paired seeds per method (default {d.seeds}; {MIN_SEEDS_FOR_A_VERDICT} or more for a "
                        "verdict other than 'not distinguishable')")
    p.add_argument("--full-data-seeds", type=positive_int, default=d.full_data_seeds,
                   help=f"part 2: at most this many of the seeds (default {d.full_data_seeds}: its gain is about one "
                        "test image, too small for any seed count the demo can afford)")
    p.add_argument("--subset-fractions", "--subset-fraction", type=fraction, nargs="+",
                   default=list(d.subset_fractions),
                   help=f"part 1: the subset sizes trained on (default {' '.join(map(str, d.subset_fractions))})")
    p.add_argument("--subset-epochs", type=positive_int, default=d.subset_epochs,
                   help=f"part 1: epochs per run (default {d.subset_epochs})")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help=f"part 2: epochs per run (default {d.epochs})")
    p.add_argument("--fraction", type=fraction, default=d.fraction,
                   help=f"part 2: augmentation budget (default {d.fraction})")
    p.add_argument("--reselect-every", type=positive_int, default=d.reselect_every,
                   help=f"part 2: re-select every R epochs (default {d.reselect_every})")
    p.add_argument("--strong", default=d.strong, help=f"strong augmentation (default {d.strong})")
    p.add_argument("--methods", nargs="+", default=list(d.methods), choices=DEMO_METHODS)
    p.add_argument("--parts", nargs="+", default=list(d.parts), choices=("table1", "table4"),
                   help="which protocols to run (default both)")
    p.add_argument("--threads", type=positive_int, default=d.num_threads,
                   help=f"torch CPU threads per run (default {d.num_threads})")
    p.add_argument("--workers", type=positive_int, default=d.workers,
                   help=f"runs at a time, one process each (default {d.workers})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from augcore.train.demo import DemoSettings, run_demo
    run_demo(DemoSettings(out=args.out, seeds=args.seeds, full_data_seeds=args.full_data_seeds,
                          subset_fractions=tuple(args.subset_fractions),
                          subset_epochs=args.subset_epochs, epochs=args.epochs, fraction=args.fraction,
                          reselect_every=args.reselect_every, strong=args.strong, methods=tuple(args.methods),
                          parts=tuple(args.parts), num_threads=args.threads, workers=args.workers,
                          progress=not args.no_progress))
    return 0


def _add_repro(subparsers) -> None:
    from augcore.train.repro import ALIASES, METHODS, PRESETS, ReproSettings
    from augcore.train.protocols import PROTOCOLS
    d = ReproSettings()
    p = subparsers.add_parser("repro", help="the papers' experiments as protocols, beside their numbers "
                                            "(--list shows them)",
                              description="Runs one paper protocol (a table or figure of the coreset, refinement, "
                                          "targeted-synthetic or influence paper: its cells per seed) at its "
                                          "paper-exact preset or at CPU scale on the embedded digits, and prints "
                                          "mean +- std over seeds beside the paper's numbers. --set changes the "
                                          "protocol's own config: a training config (train, refine, labelled "
                                          "runners; labelled.<field> for the labelled-fraction settings) or "
                                          "augcore generate's pipeline config (generate runner: train.optim.lr, "
                                          "generate.model, ...).")
    p.add_argument("--list", action="store_true", help="list every protocol with its paper, table and setting")
    p.add_argument("--protocol", choices=[*PROTOCOLS, *ALIASES], default=d.protocol, metavar="NAME",
                   help=f"a protocol from --list (default {d.protocol} = {ALIASES[d.protocol]})")
    p.add_argument("--preset", choices=PRESETS, default=d.preset,
                   help="paper: the paper's data set, model, epochs, schedule and optimiser; cpu (default): the "
                        "same protocol on the embedded digits with a small CNN")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change a config key of every run (repeatable), e.g. --set optim.weight_decay=5e-4 "
                        "(generate protocols: --set train.optim.weight_decay=5e-4)")
    p.add_argument("--dataset", help="data set name (default: the preset's)")
    p.add_argument("--root", help="data set root (default $AUGCORE_DATA or ./data)")
    p.add_argument("--model", help="model name (default: the preset's)")
    p.add_argument("--methods", nargs="+", choices=METHODS, help="default: the protocol's")
    p.add_argument("--budgets", nargs="+", type=positive_number,
                   help="the cells' levels (default: the protocol's): subset fractions (train), amplification "
                        "factors k (generate) or labelled fractions (labelled)")
    p.add_argument("--variants", nargs="+", help="default: the protocol's (e.g. Table 2's cutout augmix perturb)")
    p.add_argument("--seeds", type=positive_int, default=d.seeds)
    p.add_argument("--epochs", type=positive_int, help="schedule.epochs (default: the preset's)")
    p.add_argument("--reselect-every", type=positive_int, help="R (default: the protocol's)")
    p.add_argument("--strong", help="augment.strong (default: the preset's)")
    p.add_argument("--lr", type=float, help="optim.lr (default: the preset's)")
    p.add_argument("--batch-size", type=positive_int, help="optim.batch_size (default: the preset's)")
    p.add_argument("--threads", type=positive_int, default=d.num_threads, help="torch CPU threads per run")
    p.add_argument("--workers", type=positive_int, default=d.workers,
                   help="runs at a time, one process each (train and refine protocols)")
    p.add_argument("--device", default=d.device)
    p.add_argument("--out", default=d.out)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_repro)


def _cmd_repro(args) -> int:
    from augcore.train.repro import ReproSettings, list_protocols, run_repro
    if args.list:
        print(list_protocols())
        return 0
    run_repro(ReproSettings(protocol=args.protocol, preset=args.preset, dataset=args.dataset, root=args.root,
                            model=args.model, methods=args.methods, budgets=args.budgets, variants=args.variants,
                            seeds=args.seeds, epochs=args.epochs, reselect_every=args.reselect_every,
                            strong=args.strong, lr=args.lr, batch_size=args.batch_size, num_threads=args.threads,
                            workers=args.workers, device=args.device, out=args.out, overrides=args.overrides,
                            progress=not args.no_progress))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="augcore", description="Data-efficient augmentation: pick the few "
                                     "training examples whose augmentation buys most of the gain.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_demo(subparsers)
    _add_train(subparsers)
    _add_select(subparsers)
    _add_repro(subparsers)
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
    from augcore.checks import CorruptFileError
    from augcore.config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, CorruptFileError, ValueError, TypeError) as exc:
        if os.environ.get("AUGCORE_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"augcore {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"augcore {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
