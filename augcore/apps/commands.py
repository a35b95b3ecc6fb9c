"""Every ``augcore`` subcommand, each one ``Command`` class registered in ``COMMANDS``: its
one-line help, its arguments and its run. The jobs themselves live in the application modules
(``augcore.apps.demo``, ``.repro``, ``.checkpoint_selection``, ``.benchmarks``) and the library;
a command imports them only when it runs, or when its arguments need their names.

A new command is one class::

    @COMMANDS.register("hello")
    class Hello(Command):
        help = "say hello"
        def add_arguments(self, parser): parser.add_argument("--name", default="world")
        def run(self, args): print(f"hello {args.name}"); return 0
"""
from __future__ import annotations

import argparse
import json
import os
from typing import ClassVar, List

from augcore.registry import Registry

COMMANDS = Registry("command", name_attribute="name")


class Command:
    """One subcommand. ``help`` is its line in ``augcore --help``; ``description`` (default: the
    help) heads its own ``--help``, verbatim when ``raw_description``."""

    name: ClassVar[str]
    help: ClassVar[str]
    description: ClassVar[str] = ""
    raw_description: ClassVar[bool] = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


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


@COMMANDS.register("demo")
class Demo(Command):
    help = "coreset vs random-subset augmentation on the embedded digits data"
    description = ("On scikit-learn's digits with a small CNN: (1) train only on a small subset and its strong "
                   "copies, coreset vs random (the coreset paper's Table 1 protocol), then (2) the full data plus "
                   "strong copies of a subset, with the weak-only baseline (its Table 4 protocol). Prints accuracy "
                   "over seeds, the selection overhead and, per budget, coreset minus random over paired seeds "
                   "(mean, 95% CI, Wilcoxon signed-rank test) with a plain-words verdict; writes a per-seed plot.")

    def add_arguments(self, p):
        from augcore.apps.demo import DEMO_METHODS, MIN_SEEDS_FOR_A_VERDICT, DemoSettings
        d = DemoSettings()
        p.add_argument("--out", default=d.out, help=f"output folder (default {d.out})")
        p.add_argument("--seeds", type=positive_int, default=d.seeds,
                       help=f"paired seeds per method (default {d.seeds}; {MIN_SEEDS_FOR_A_VERDICT} or more for a "
                            "verdict other than 'not distinguishable')")
        p.add_argument("--full-data-seeds", type=positive_int, default=d.full_data_seeds,
                       help=f"part 2: at most this many of the seeds (default {d.full_data_seeds}: its gain is about "
                            "one test image, too small for any seed count the demo can afford)")
        p.add_argument("--subset-fractions", "--subset-fraction", type=fraction, nargs="+",
                       default=list(d.subset_fractions),
                       help=f"part 1: the subset sizes trained on (default {' '.join(map(str, d.subset_fractions))})")
        p.add_argument("--subset-epochs", type=positive_int, default=d.subset_epochs,
                       help=f"part 1: epochs per run (default {d.subset_epochs})")
        p.add_argument("--epochs", type=positive_int, default=d.epochs,
                       help=f"part 2: epochs per run (default {d.epochs})")
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

    def run(self, args):
        from augcore.apps.demo import DemoSettings, run_demo
        run_demo(DemoSettings(out=args.out, seeds=args.seeds, full_data_seeds=args.full_data_seeds,
                              subset_fractions=tuple(args.subset_fractions),
                              subset_epochs=args.subset_epochs, epochs=args.epochs, fraction=args.fraction,
                              reselect_every=args.reselect_every, strong=args.strong, methods=tuple(args.methods),
                              parts=tuple(args.parts), num_threads=args.threads, workers=args.workers,
                              progress=not args.no_progress))
        return 0


@COMMANDS.register("train")
class Train(Command):
    help = "train a model as a YAML config says"
    description = "Train with periodic re-selection of the examples to augment."

    def add_arguments(self, p):
        p.add_argument("--config", help="a shipped config's name (augcore configs) or a YAML file; defaults apply to "
                                        "missing keys")
        p.add_argument("--mode", choices=_policy_names(), help="the selection policy (augment.mode)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config value, e.g. optim.lr=0.05 or augment.policy_options.method=lazy "
                            "(parsed as YAML); repeatable")
        p.add_argument("--out", help="output folder (default: run.out of the config)")
        p.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")

    def run(self, args):
        from augcore.train import Trainer, load_config

        overrides = list(args.overrides) + ([f"run.out={json.dumps(args.out)}"] if args.out else [])
        overrides += [f"augment.mode={args.mode}"] if args.mode else []
        config = load_config(args.config, overrides)
        result = Trainer(config, out_dir=config.run.out).fit(resume=args.resume)
        print(f"best test top-1 {result.best_top1:.2f}% (epoch {result.best_epoch + 1}), last {result.last_top1:.2f}% "
              f"top-5 {result.last_top5:.2f}%; training {result.train_time:.1f} s of which selection "
              f"{result.selection_time:.1f} s; outputs in {result.out_dir}")
        return 0


@COMMANDS.register("select")
class Select(Command):
    help = "run one selection with a trained checkpoint and save it"
    description = ("One inference pass over the training set with the checkpoint's model, then a selection "
                   "policy's selector; the Selection is saved with torch.save.")

    def add_arguments(self, p):
        p.add_argument("--checkpoint", required=True, help="a checkpoint.pt written by `augcore train`")
        p.add_argument("--out", required=True, help="file to write the Selection to (.pt)")
        p.add_argument("--method", choices=_policy_names(), help="selection policy (default: the checkpoint's "
                                                                 "augment.mode)")
        p.add_argument("--fraction", type=fraction, help="budget as a fraction of the training set "
                                                          "(default: the checkpoint's augment.fraction)")
        p.add_argument("--seed", type=non_negative_int, help="selector seed (default: the checkpoint's run.seed)")
        p.add_argument("--epoch", type=non_negative_int, help="epoch recorded in the selection (default: the "
                                                              "checkpoint's)")

    def run(self, args):
        from augcore.apps.checkpoint_selection import select_from_checkpoint

        selection = select_from_checkpoint(args.checkpoint, method=args.method, fraction=args.fraction,
                                           seed=args.seed, epoch=args.epoch)
        selection.save(args.out)
        print(selection.summary())
        return 0


@COMMANDS.register("repro")
class Repro(Command):
    help = "the papers' experiments as protocols, beside their numbers (--list shows them)"
    description = ("Runs one paper protocol (a table or figure of the coreset, refinement, targeted-synthetic or "
                   "influence paper: its cells per seed) at its paper-exact preset or at CPU scale on the embedded "
                   "digits, and prints mean +- std over seeds beside the paper's numbers. --set changes the "
                   "protocol's own config: a training config (train, refine, labelled runners; labelled.<field> "
                   "for the labelled-fraction settings) or augcore generate's pipeline config (generate runner: "
                   "train.optim.lr, generate.model, ...).")

    def add_arguments(self, p):
        from augcore.apps.protocols import PROTOCOLS
        from augcore.apps.repro import ALIASES, METHODS, PRESETS, ReproSettings
        d = ReproSettings()
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

    def run(self, args):
        from augcore.apps.repro import ReproSettings, list_protocols, run_repro
        if args.list:
            print(list_protocols())
            return 0
        run_repro(ReproSettings(protocol=args.protocol, preset=args.preset, dataset=args.dataset, root=args.root,
                                model=args.model, methods=args.methods, budgets=args.budgets,
                                variants=args.variants, seeds=args.seeds, epochs=args.epochs,
                                reselect_every=args.reselect_every, strong=args.strong, lr=args.lr,
                                batch_size=args.batch_size, num_threads=args.threads, workers=args.workers,
                                device=args.device, out=args.out, overrides=args.overrides,
                                progress=not args.no_progress))
        return 0


@COMMANDS.register("configs")
class Configs(Command):
    help = "list the shipped configs (usable as --config NAME)"
    description = """``augcore configs``: the configs shipped with augcore, one line each, or one config's YAML.

    augcore configs                  # name and one-line summary of every shipped config
    augcore configs digits_demo      # print that config (copy it, edit it, pass the copy's path)

Every name works as ``augcore train --config NAME`` (or ``augcore generate --config NAME``).
"""
    raw_description = True

    def add_arguments(self, p):
        from augcore.configs import list_configs

        p.add_argument("name", nargs="?", choices=list_configs(), metavar="NAME",
                       help="print this shipped config's YAML instead of the list")

    def run(self, args):
        from augcore.configs import CONFIG_DIR, describe_configs

        if args.name:
            print((CONFIG_DIR / f"{args.name}.yaml").read_text(encoding="utf-8"), end="")
            return 0
        summaries = describe_configs()
        width = max(map(len, summaries))
        for name, summary in summaries.items():
            print(f"{name:<{width}}  {summary}")
        return 0


@COMMANDS.register("generate")
class Generate(Command):
    help = "faithful diffusion copies of selected images (targeted synthetic augmentation)"
    description = """``augcore generate``: make the synthetic copies of a selection, or run the whole pipeline.

    augcore generate --model PATH --dataset cifar10 --selection sel.pt --out DIR [--shard 0/4]
    augcore generate --config targeted_synthetic [--set generate.batch_size=32]
    augcore generate --config targeted_synthetic_digits --end-to-end
    augcore generate --config targeted_synthetic_digits --end-to-end --set select.method=random

Flags override the config's ``generate`` section; ``--set section.key=value`` any key.
"""
    raw_description = True

    def add_arguments(self, p):
        p.add_argument("--config", help="a shipped config's name (augcore configs) or a YAML file")
        p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a config key")
        p.add_argument("--end-to-end", action="store_true",
                       help="train to the separating epoch, select, generate, retrain (needs --config)")
        p.add_argument("--model",
                       help="folder of a local diffusers pipeline (img2img, or a UNet2DModel one), or 'tiny'")
        p.add_argument("--kind", choices=("auto", "img2img", "unconditional", "class_conditional"),
                       help="img2img: text-conditioned (latent or pixel-space); unconditional / class_conditional: "
                            "a pixel-space UNet2DModel (default auto: from the pipeline)")
        p.add_argument("--scheduler", choices=("ddim", "ddpm"),
                       help="swap the pipeline's scheduler (default: keep it)")
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

    def run(self, args):
        from augcore.config import ConfigError, apply_overrides, load_yaml

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
            from augcore.generate.pipeline import run_pipeline

            if args.out:
                raw["out"] = args.out
            result = run_pipeline(raw)
            with open(os.path.join(result.out_dir, "summary.json")) as fh:
                note = json.load(fh).get("note")
            print(json.dumps({"selected": result.selected, "selected_fraction": result.selected_fraction,
                              "generated": result.generated, "best_top1": result.retrain.best_top1,
                              "out": result.out_dir, **({"note": note} if note else {})}))
            return 0

        from augcore.data import load_dataset
        from augcore.generate.driver import generate_copies
        from augcore.generate.pipeline import backend_from_settings, generate_settings

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


def _selection_indices(path: str):
    """The dataset indices in a Selection ``.pt`` file or a JSON list (``augcore generate --selection``)."""
    from augcore.checks import check_indices
    from augcore.config import ConfigError
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


@COMMANDS.register("bench")
class Bench(Command):
    help = "time the selection core against submodlib and apricot (peers optional)"
    raw_description = True

    @property
    def description(self) -> str:
        from augcore.apps import benchmarks
        return benchmarks.__doc__

    def add_arguments(self, p):
        from augcore.apps import benchmarks
        benchmarks.add_arguments(p)

    def run(self, args):
        from augcore.apps import benchmarks
        return benchmarks.run(args)
