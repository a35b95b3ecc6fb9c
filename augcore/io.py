"""Atomic file writes: a run killed mid-write leaves the previous file intact, never half a file.

Every file augcore must not lose (checkpoints, selections, logs, generated images,
manifests, plots) goes through ``atomic_write``: the bytes go to a temp file in the
target folder, are flushed to disk, and the temp file is renamed over the target.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, BinaryIO, Callable, Union

import torch

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Calls ``write(binary_file)`` on a temp file beside ``path``, then renames it to ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    atomic_write(path, lambda fh: torch.save(obj, fh))


def atomic_savefig(fig, path: PathLike, **savefig_kwargs) -> None:
    """Saves a matplotlib figure; the format comes from the file's extension (png if none)."""
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, **savefig_kwargs))
