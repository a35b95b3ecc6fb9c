"""A resumable on-disk store of synthetic images: PNG files plus a JSON-lines manifest.

Layout under ``root``::

    store.json                 the settings that define the images (checked on resume)
    images/s040/00001234.png   the copy of dataset item 1234 made at 40 steps
    parts/s040-u000012.jsonl   manifest records of one work unit (one batch)
    manifest.jsonl             all records, merged from parts (rewritten by ``consolidate``)

Every file is written to a temporary name and renamed into place (``os.replace``), so a
killed run leaves whole files only. A unit's part is written after its images: a unit
with a part is complete, one without is redone in full (same seeds, same images), so a
resumed run neither loses nor duplicates images. Shards write disjoint parts.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch

from augcore.io import atomic_write

STORE_FILE = "store.json"
MANIFEST_FILE = "manifest.jsonl"
PARTS_DIR = "parts"
IMAGES_DIR = "images"


class StoreMismatchError(ValueError):
    """A store folder holds images made with different settings than the ones asked for."""


def _jsonl_bytes(records: Iterable[Dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()


def write_png(path: str, image: torch.Tensor) -> None:
    """Writes a uint8 (C, H, W) tensor, C in {1, 3}, as a PNG atomically."""
    from PIL import Image

    array = image.permute(1, 2, 0).contiguous().numpy()
    pil = Image.fromarray(array[:, :, 0], mode="L") if array.shape[2] == 1 else Image.fromarray(array, mode="RGB")
    atomic_write(path, lambda fh: pil.save(fh, format="PNG"))


def read_png(path: str) -> torch.Tensor:
    """Reads a PNG as a uint8 (C, H, W) tensor (C = 1 for grayscale, 3 for RGB)."""
    from PIL import Image

    with Image.open(path) as pil:
        if pil.mode not in ("L", "RGB"):
            raise ValueError(f"{path}: synthetic images are grayscale or RGB PNGs, got mode {pil.mode}")
        array = np.asarray(pil, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def image_relpath(source: int, step: int) -> str:
    return os.path.join(IMAGES_DIR, f"s{step:03d}", f"{source:08d}.png")


def unit_name(step: int, unit: int) -> str:
    return f"s{step:03d}-u{unit:06d}"


class SyntheticStore:
    """The folder of one generation run (see the module docstring for its layout)."""

    def __init__(self, root: str):
        self.root = os.path.abspath(os.fspath(root))

    # -- writing
    def open_for_writing(self, settings: Dict[str, Any]) -> None:
        """Creates the folder, checks it is writable, and records or checks ``settings``."""
        try:
            os.makedirs(os.path.join(self.root, PARTS_DIR), exist_ok=True)
            os.makedirs(os.path.join(self.root, IMAGES_DIR), exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=".probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise PermissionError(f"output folder {self.root} is not writable: {exc}") from exc
        existing = self.settings()
        if existing is None:
            atomic_write(os.path.join(self.root, STORE_FILE),
                          lambda fh: fh.write(json.dumps(settings, indent=1, sort_keys=True).encode()))
            return
        differ = sorted(k for k in set(existing) | set(settings) if existing.get(k) != settings.get(k))
        if differ:
            details = ", ".join(f"{k}: stored {existing.get(k)!r} vs asked {settings.get(k)!r}" for k in differ)
            raise StoreMismatchError(f"{self.root} holds images made with other settings ({details}); "
                                     "resume with the same settings or use a new output folder")

    def write_unit(self, step: int, unit: int, images: Sequence[torch.Tensor], records: List[Dict[str, Any]]) -> None:
        """Writes a unit's images, then its manifest part (the commit point)."""
        os.makedirs(os.path.join(self.root, IMAGES_DIR, f"s{step:03d}"), exist_ok=True)
        for image, record in zip(images, records, strict=True):
            write_png(os.path.join(self.root, record["file"]), image)
        atomic_write(self._part_path(step, unit), lambda fh: fh.write(_jsonl_bytes(records)))

    def consolidate(self) -> int:
        """Rewrites manifest.jsonl from all parts; returns the number of records."""
        records = self.records()
        atomic_write(os.path.join(self.root, MANIFEST_FILE), lambda fh: fh.write(_jsonl_bytes(records)))
        return len(records)

    # -- reading
    def settings(self) -> Optional[Dict[str, Any]]:
        path = os.path.join(self.root, STORE_FILE)
        if not os.path.exists(path):
            return None
        with open(path) as fh:
            return json.load(fh)

    def _part_path(self, step: int, unit: int) -> str:
        return os.path.join(self.root, PARTS_DIR, unit_name(step, unit) + ".jsonl")

    def unit_done(self, step: int, unit: int) -> bool:
        return os.path.exists(self._part_path(step, unit))

    def records(self) -> List[Dict[str, Any]]:
        """All committed records, sorted by (source, step); raises on a duplicated (source, step)."""
        parts = os.path.join(self.root, PARTS_DIR)
        if not os.path.isdir(parts):
            raise FileNotFoundError(f"{self.root} is not a synthetic image store (no {PARTS_DIR}/ folder)")
        records: Dict[tuple, Dict[str, Any]] = {}
        for name in sorted(os.listdir(parts)):
            if not name.endswith(".jsonl") or name.startswith(".tmp-"):
                continue
            with open(os.path.join(parts, name)) as fh:
                for line in fh:
                    record = json.loads(line)
                    key = (record["source"], record["step"])
                    if key in records:
                        raise ValueError(f"{self.root}: item {key[0]} at step {key[1]} is recorded twice")
                    records[key] = record
        return [records[k] for k in sorted(records)]

    def load_image(self, record: Dict[str, Any]) -> torch.Tensor:
        return read_png(os.path.join(self.root, record["file"]))
