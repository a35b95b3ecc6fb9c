"""Atomic checkpoints and the random-number state a resumed run needs to continue exactly."""
from __future__ import annotations

import os
import random
from typing import Any, Dict, Union

import numpy as np
import torch

from augcore.io import atomic_torch_save  # noqa: F401  (re-exported by augcore.train)

CHECKPOINT_FORMAT = 1


def load_checkpoint(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an augcore training checkpoint (format {CHECKPOINT_FORMAT})")
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
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
