"""The documented import path of the labelled-fraction protocol (docs/influence.md): the same
module as :mod:`augcore.apps.labelled_fraction`, which runs whole training runs and so lives in
the application layer."""
import sys

from augcore.apps import labelled_fraction

sys.modules[__name__] = labelled_fraction
