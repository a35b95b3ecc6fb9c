"""Seeds derived from (run seed, epoch, purpose): every random draw of a selection or a policy
comes from its own reproducible stream, drawn on the CPU so a seed gives the same result on
every device."""
from __future__ import annotations

import zlib

import numpy as np
import torch

from augcore.checks import check_int


def derive_seed(seed: int, epoch: int, stream: str) -> int:
    """A 63-bit seed for one (seed, epoch, stream) triple.

    Mixing the epoch in makes re-selection draw fresh randomness every epoch while
    staying reproducible; the stream name keeps different purposes independent.
    """
    seed = check_int("seed", seed, min=0)
    epoch = check_int("epoch", epoch, min=0)
    if not isinstance(stream, str):
        raise TypeError(f"stream must be a string, got {stream!r}")
    state = np.random.SeedSequence([seed, epoch, zlib.crc32(stream.encode())]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def cpu_generator(seed: int, epoch: int, stream: str) -> torch.Generator:
    """A CPU generator seeded with ``derive_seed(seed, epoch, stream)``."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(derive_seed(seed, epoch, stream))
    return gen
