"""Loading a local state dict into a model (``model.weights``), verified; nothing is downloaded.

``load_weights(model, path)`` reads a safetensors file or a ``torch.save`` file (with
``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary
pickled objects) and loads it only if it fits the model exactly: every parameter and
buffer present, no extra keys, every shape equal. Otherwise the ``ValueError`` lists the
missing, unexpected and mismatched keys with their shapes. ``skip`` names key prefixes
left at their initialisation (``skip=["fc"]``: a new classifier over ImageNet features).

Accepted layouts: a plain state dict; a dict holding one under ``"state_dict"`` or
``"model"`` (as many training scripts save them); keys prefixed by
``module.`` (DDP) or ``_orig_mod.`` (``torch.compile``) have the prefix removed.
Verification: a file written by augcore's ``atomic_torch_save`` has its SHA-256 checked;
``sha256`` (a hex digest or a prefix of at least 8 digits, the ``<name>-<sha256 prefix>.pth``
convention of torchvision's files) checks any file; every floating tensor must be finite.
BatchNorm's ``num_batches_tracked`` counters may be absent (files older than PyTorch 0.4.1).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import struct
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from augcore.checks import CorruptFileError

__all__ = ["load_weights", "read_state_dict"]

_WRAPPER_KEYS = ("state_dict", "model")
_PREFIXES = ("module.", "_orig_mod.")
_OPTIONAL_SUFFIX = ".num_batches_tracked"
_SHOWN = 8  # keys listed per kind of problem


def _is_safetensors(path: str) -> bool:
    """A safetensors file starts with the 8-byte little-endian length of a JSON header."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 0 < struct.unpack("<Q", head[:8])[0] <= os.path.getsize(path) - 8


def _check_sha256(path: str, expected: str) -> None:
    expected = expected.strip().lower()
    if len(expected) < 8 or len(expected) > 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ValueError(f"sha256 must be a hex digest or a prefix of at least 8 hex digits, got {expected!r}")
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(expected):
        raise CorruptFileError(path, f"SHA-256 {digest.hexdigest()} does not start with the expected {expected}")


def _unwrap(obj: Any, path: str) -> Dict[str, torch.Tensor]:
    for key in _WRAPPER_KEYS:
        if isinstance(obj, Mapping) and not _is_state_dict(obj) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        what = f"a dict with keys {sorted(map(str, obj))[:10]}" if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(f"{path} holds {what}, not a state dict (a mapping of parameter names to tensors, "
                         f"alone or under {' or '.join(map(repr, _WRAPPER_KEYS))})")
    state = dict(obj)
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _is_state_dict(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_state_dict(path: "str | os.PathLike", *, sha256: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """The state dict stored at ``path`` (on the CPU), verified as the module doc says."""
    from augcore.io import verify_torch_file

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no weights file at {path}")
    if sha256 is not None:
        _check_sha256(path, sha256)
    if _is_safetensors(path):
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise ImportError(f"{path} is a safetensors file: pip install safetensors") from exc
        try:
            obj = load_file(path, device="cpu")
        except Exception as exc:  # safetensors raises SafetensorError for a damaged header or data
            raise CorruptFileError(path, f"cannot be read as safetensors: {exc}") from exc
    else:
        ours = verify_torch_file(path)  # files written by atomic_torch_save carry their SHA-256
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "Unsupported global" not in str(exc):  # not a pickle of tensors and Python objects at all
                raise CorruptFileError(path, f"cannot be read as a torch or safetensors file: {exc}") from exc
            how = ("augcore wrote it: if it is a training checkpoint, save its model alone with torch.save("
                   "augcore.train.checkpoint.load_checkpoint(path)['model'], 'weights.pt')" if ours else
                   "save model.state_dict() alone (torch.save or safetensors)")
            raise ValueError(f"{path} holds Python objects besides tensors, which torch.load(weights_only=True) "
                             f"refuses to unpickle; {how}") from exc
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:  # truncated zip, not a torch file
            raise CorruptFileError(path, f"cannot be read as a torch or safetensors file: "
                                         f"{type(exc).__name__}: {exc}") from exc
    state = _unwrap(obj, path)
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{path}: non-finite values (NaN or inf) in {_listing(bad)}")
    return state


def _listing(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return f"{len(keys)} key(s): {shown}" + (", ..." if len(keys) > _SHOWN else "")


def _skipped(key: str, skip: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in skip)


def load_weights(model: nn.Module, path: "str | os.PathLike", *, skip: Sequence[str] = (),
                 sha256: Optional[str] = None) -> List[str]:
    """Loads the state dict at ``path`` into ``model`` in place; returns the model keys left at
    their initialisation (those under ``skip``). Raises ``ValueError`` naming every missing,
    unexpected or mismatched key (with both shapes) before changing anything."""
    if isinstance(skip, str) or not all(isinstance(p, str) and p for p in skip):
        raise TypeError(f"skip must be a list of key prefixes such as ['fc'], got {skip!r}")
    state = read_state_dict(path, sha256=sha256)
    own = model.state_dict()
    unused = [p for p in skip if not any(_skipped(k, [p]) for k in own)]
    if unused:
        raise ValueError(f"skip: {unused} match(es) no key of the model (top-level names: "
                         f"{sorted({k.split('.')[0] for k in own})})")
    missing = [k for k in own if k not in state and not _skipped(k, skip) and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in state if k not in own and not _skipped(k, skip)]
    mismatched = [f"{k} (file {tuple(state[k].shape)}, model {tuple(own[k].shape)})" for k in own
                  if k in state and not _skipped(k, skip) and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        problems = [f"{name} {_listing(keys)}" for name, keys in
                    (("shape mismatch in", mismatched), ("missing from the file:", missing),
                     ("in the file but not in the model:", unexpected)) if keys]
        heads = sorted({k.split(" ")[0].rsplit(".", 1)[0] for k in mismatched})
        hint = (f"; to keep a freshly initialised layer instead (a new classifier), skip it: skip={heads} "
                "(model.weights_skip in a config)"
                if mismatched and not missing and not unexpected else "")
        raise ValueError(f"{os.fspath(path)} does not fit {type(model).__name__}: " + "; ".join(problems) + hint)
    model.load_state_dict({k: v for k, v in state.items() if not _skipped(k, skip)}, strict=False)
    return [k for k in own if _skipped(k, skip)]
