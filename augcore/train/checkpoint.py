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

from augcore.checks import CorruptFileError, check_file_entries, check_format_version, check_int
from augcore.io import atomic_torch_save, load_torch_file  # noqa: F401  (atomic_torch_save re-exported)
from augcore.train.config import resolve_augment_aliases

CHECKPOINT_FORMAT = 1
# what a resume reads: trainer.load_state_dict and select_from_checkpoint
REQUIRED_ENTRIES = ("config", "epoch", "model", "optimizer", "scaler", "rng", "rows", "policy")
RNG_ENTRIES = ("torch", "numpy", "python")
POLICY_ENTRIES = ("selection", "history", "selection_epochs")
CONFIG_ENTRIES = ("augment", "run")  # read as they are by select_from_checkpoint
AUGMENT_ENTRIES = ("mode", "policy_options")


def load_checkpoint(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The checkpoint dict at ``path``, its checksum, format version and entries verified.

    Raises ``FileNotFoundError`` (no file), :class:`CorruptFileError` naming the file
    (empty, truncated, damaged, not an augcore training checkpoint, another format
    version, or an entry a resume needs is missing or of the wrong kind).
    """
    state = load_torch_file(path, what="checkpoint")
    if not isinstance(state, dict):
        raise CorruptFileError(path, f"not an augcore training checkpoint: it holds a {type(state).__name__}, "
                                     "not a mapping of entries")
    if "format" not in state:
        raise CorruptFileError(path, f"not an augcore training checkpoint: no 'format' entry (it holds "
                                     f"{sorted(map(str, state))[:8]})")
    check_format_version(path, state["format"], (CHECKPOINT_FORMAT,), what="training checkpoints")
    check_file_entries(path, state, REQUIRED_ENTRIES, what="training checkpoint")
    kinds = {"config": dict, "model": dict, "optimizer": dict, "scaler": dict, "rng": dict, "rows": list,
             "policy": dict}
    wrong = [f"{key!r} is a {type(state[key]).__name__}, not a {kind.__name__}" for key, kind in kinds.items()
             if not isinstance(state[key], kind)]
    if isinstance(state["epoch"], bool) or not isinstance(state["epoch"], int) or state["epoch"] < 0:
        wrong.append(f"'epoch' is {state['epoch']!r}, not an epoch number")
    if wrong:
        raise CorruptFileError(path, f"damaged training checkpoint: {'; '.join(wrong)}")
    check_file_entries(path, state["rng"], RNG_ENTRIES, what="training checkpoint's 'rng' entry")
    check_file_entries(path, state["config"], CONFIG_ENTRIES, what="training checkpoint's 'config' entry")
    # checkpoints written before augment.policy_options hold it as augment.selector
    state["config"]["augment"] = resolve_augment_aliases(state["config"]["augment"])
    check_file_entries(path, state["config"]["augment"], AUGMENT_ENTRIES,
                       what="training checkpoint's 'config.augment' entry")
    check_file_entries(path, state["policy"], POLICY_ENTRIES, what="training checkpoint's 'policy' entry")
    _check_policy_state(path, state["policy"])
    return state


def _check_policy_state(path, policy: Dict[str, Any]) -> None:
    """The saved selection and history parse, so a damaged one is named with the file, not mid-resume."""
    from augcore.selection import Selection, SelectionHistory

    try:
        if policy["selection"] is not None:
            Selection.from_state(policy["selection"])
        SelectionHistory.from_json(policy["history"])
        if not isinstance(policy["selection_epochs"], (list, tuple)):
            raise TypeError(f"selection_epochs is a {type(policy['selection_epochs']).__name__}, not a list")
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(path, f"damaged selection state in the training checkpoint: {exc}") from None


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
