"""Atomic checkpoints and the random-number state a resumed run needs to continue exactly.

Checkpoints are written by :func:`augcore.io.atomic_torch_save` (temp file + rename,
SHA-256 of the file in its zip comment) and read by :func:`load_checkpoint`, which
verifies that checksum: a flipped byte anywhere, a truncated or empty file raises
:class:`~augcore.checks.CorruptFileError` naming the file. Checkpoints written before
checksums existed load with a warning.
"""
from __future__ import annotations

import os
import random
from typing import Any, Dict, Union

import numpy as np
import torch

from augcore.checks import CorruptFileError, check_int
from augcore.io import atomic_torch_save, load_torch_file  # noqa: F401  (atomic_torch_save re-exported)

CHECKPOINT_FORMAT = 1


def load_checkpoint(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The checkpoint dict at ``path``, its checksum verified.

    Raises ``FileNotFoundError`` (no file), :class:`CorruptFileError` naming the file
    (empty, truncated, damaged, or not an augcore training checkpoint).
    """
    state = load_torch_file(path, what="checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CorruptFileError(path, f"not an augcore training checkpoint (format {CHECKPOINT_FORMAT}); "
                                     f"found {found!r}")
    return state


def rng_state() -> Dict[str, Any]:
    """Every generator a training step may draw from: torch (CPU and CUDA), numpy, python."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    seed = check_int("seed", seed, min=0, max=2 ** 64 - 1)  # torch.manual_seed takes 64 bits
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
