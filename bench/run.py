"""The selection core's ratio table; the runner lives in the package (augcore.benchmarks).

    python bench/run.py [--quick] [--points N] [--json out.json]   # the same as `augcore bench ...`
"""
import sys

from augcore.benchmarks import main

if __name__ == "__main__":
    sys.exit(main())
