"""The ``augcore`` console script's entry point (``augcore = augcore.cli:main``); the commands
are the application layer's, :mod:`augcore.apps.cli`."""
import sys

from augcore.apps.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
