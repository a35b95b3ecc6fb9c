"""The documented import path of the benchmarks (docs/api/utilities.rst, ``bench/``): the same
module as :mod:`augcore.apps.benchmarks`."""
import sys

from augcore.apps import benchmarks

sys.modules[__name__] = benchmarks
