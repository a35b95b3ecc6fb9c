"""``augcore bench``: the kernel benchmark's ratio table (bench/run.py in a source checkout)."""
from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

RUNNER = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="time the selection core against submodlib and apricot",
                              description="Runs bench/run.py of the source checkout; arguments pass through.")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for bench/run.py (e.g. --quick, --json out.json)")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    if not RUNNER.exists():
        print(f"augcore bench needs a source checkout: {RUNNER} not found", file=sys.stderr)
        return 2
    sys.argv = [str(RUNNER), *args.args]
    try:
        runpy.run_path(str(RUNNER), run_name="__main__")
    except SystemExit as done:
        return int(done.code or 0)
    return 0
