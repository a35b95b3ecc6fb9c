"""``augcore COMMAND``: the parser built from the registered commands, and the entry point.

    augcore demo [--out runs/demo] [--seeds 14] [--subset-fractions 0.05 0.1] [--epochs 6]
    augcore train --config cifar10_resnet20_coreset [--mode max_loss] [--set optim.lr=0.05 ...] [--resume] [--out DIR]
    augcore select --checkpoint runs/train/checkpoint.pt --out selection.pt [--method coreset] [--fraction 0.1]

A command is one ``Command`` class registered in ``COMMANDS`` (``augcore.apps.commands``).
Bad input (an unknown key, a malformed ``--set``, a missing or damaged file) ends with
one line naming the option and exit status 2; ``AUGCORE_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, NoReturn, Optional

from augcore.apps.commands import COMMANDS


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (``augcore train: error: ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="augcore", description="Data-efficient augmentation: pick the few "
                                     "training examples whose augmentation buys most of the gain.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, command_class in COMMANDS.items():
        command = command_class()
        formatter = argparse.RawDescriptionHelpFormatter if command.raw_description else argparse.HelpFormatter
        sub = subparsers.add_parser(name, help=command.help, description=command.description or command.help,
                                    formatter_class=formatter)
        command.add_arguments(sub)
        sub.set_defaults(func=command.run)
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
