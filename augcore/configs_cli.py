"""``augcore configs``: the configs shipped with augcore, one line each, or one config's YAML.

    augcore configs                  # name and one-line summary of every shipped config
    augcore configs digits_demo      # print that config (copy it, edit it, pass the copy's path)

Every name works as ``augcore train --config NAME`` (or ``augcore generate --config NAME``).
"""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Adds the ``configs`` subcommand to ``augcore``'s CLI."""
    p = subparsers.add_parser("configs", help="list the shipped configs (usable as --config NAME)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from augcore.configs import list_configs

    p.add_argument("name", nargs="?", choices=list_configs(), metavar="NAME",
                   help="print this shipped config's YAML instead of the list")
    p.set_defaults(func=_cmd_configs)


def _cmd_configs(args) -> int:
    from augcore.configs import CONFIG_DIR, describe_configs

    if args.name:
        print((CONFIG_DIR / f"{args.name}.yaml").read_text(encoding="utf-8"), end="")
        return 0
    summaries = describe_configs()
    width = max(map(len, summaries))
    for name, summary in summaries.items():
        print(f"{name:<{width}}  {summary}")
    return 0
