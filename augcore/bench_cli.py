"""``augcore bench``: the selection core's ratio table against submodlib and apricot (:mod:`augcore.benchmarks`)."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Adds the ``bench`` subcommand to ``augcore``'s CLI."""
    from augcore import benchmarks

    p = subparsers.add_parser("bench", help="time the selection core against submodlib and apricot (peers optional)",
                              description=benchmarks.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchmarks.add_arguments(p)
    p.set_defaults(func=benchmarks.run)
