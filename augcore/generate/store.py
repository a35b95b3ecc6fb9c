"""A resumable on-disk store of synthetic images: PNG files plus a JSON-lines manifest.

Layout under ``root``::

    store.json                 the settings that define the images (checked on resume)
    images/s040/00001234.png   the copy of dataset item 1234 made at 40 steps
    parts/s040-u000012.jsonl   manifest records of one work unit (one batch)
    manifest.jsonl             all records, merged from parts (rewritten by ``consolidate``)

Every file is written to a temporary name and renamed into place (``os.replace``), so a
killed run leaves whole files only (and ``.tmp-*`` leftovers, removed at the next start).
A unit's part is written after its images: a unit with a valid part is complete, one
without is redone in full (same seeds, same images), so a resumed run neither loses nor
duplicates images. Shards write disjoint parts.

Integrity: a part's first line is a header with its record count and the SHA-256 of the
record lines; each record holds the SHA-256 of its PNG. A part that is truncated or
damaged, names other images than its unit should hold, or whose images are missing or
damaged, makes its unit be redone on resume; reading such a store for training raises
:class:`~augcore.checks.CorruptFileError` naming the file. (Parts written before headers
existed are read as they are and checked against the unit's plan on resume.)
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from augcore.checks import CorruptFileError, check_format_version
from augcore.io import TEMP_PREFIX, atomic_write, atomic_write_bytes, remove_stale_temp_files, temp_file_prefix

STORE_FILE = "store.json"
MANIFEST_FILE = "manifest.jsonl"
PARTS_DIR = "parts"
IMAGES_DIR = "images"
PART_FORMAT = 2
STORE_FORMAT = 1            # store.json's "augcore_store" entry; files without one are format 1
_RECORD_KEYS = {"source": int, "step": int, "file": str}


class StoreMismatchError(ValueError):
    """A store folder holds images made with different settings than the ones asked for."""


def _jsonl_bytes(records: Iterable[Dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_png(path: str, image: torch.Tensor) -> str:
    """Writes a uint8 (C, H, W) tensor, C in {1, 3}, as a PNG atomically; returns the file's SHA-256."""
    from PIL import Image

    array = image.permute(1, 2, 0).contiguous().numpy()
    pil = Image.fromarray(array[:, :, 0], mode="L") if array.shape[2] == 1 else Image.fromarray(array, mode="RGB")
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return _sha256(data)


def read_png(path: str, sha256: Optional[str] = None) -> torch.Tensor:
    """Reads a PNG as a uint8 (C, H, W) tensor (C = 1 for grayscale, 3 for RGB).

    ``sha256``: the file's expected checksum; a mismatch or an undecodable file raises
    :class:`CorruptFileError` naming the file.
    """
    from PIL import Image

    if not os.path.isfile(path):
        raise FileNotFoundError(f"synthetic image {path} is missing")
    with open(path, "rb") as fh:
        data = fh.read()
    if sha256 is not None and _sha256(data) != sha256:
        raise CorruptFileError(path, "checksum mismatch: the image was damaged or changed after it was written")
    try:
        with Image.open(io.BytesIO(data)) as pil:
            mode = pil.mode
            array = np.asarray(pil, dtype=np.uint8) if mode in ("L", "RGB") else None
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for truncated / non-image files
        raise CorruptFileError(path, f"not a readable PNG ({type(exc).__name__}: {exc})") from exc
    if array is None:
        raise ValueError(f"{path}: synthetic images are grayscale or RGB PNGs, got mode {mode}")
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _part_bytes(name: str, records: List[Dict[str, Any]]) -> bytes:
    body = _jsonl_bytes(records)
    header = {"augcore_part": PART_FORMAT, "unit": name, "count": len(records), "sha256": _sha256(body)}
    return (json.dumps(header, sort_keys=True) + "\n").encode() + body


def read_part(path: str) -> List[Dict[str, Any]]:
    """The records of one part file, checked against its header.

    Raises :class:`CorruptFileError` naming the file when it is empty, truncated, not
    JSON lines, its count or checksum disagree with its header, or a record lacks
    ``source``/``step``/``file``.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if not data:
        raise CorruptFileError(path, "the part file is empty")
    first, _, body = data.partition(b"\n")
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if isinstance(header, dict) and "augcore_part" in header:
        check_format_version(path, header["augcore_part"], (PART_FORMAT,), what="store parts", key="augcore_part")
        if not data.endswith(b"\n") or _sha256(body) != header.get("sha256"):
            lines = body.count(b"\n")
            raise CorruptFileError(path, f"checksum mismatch: the part holds {lines} complete record line(s), its "
                                         f"header says {header.get('count')} (truncated or damaged)")
    else:
        header, body = None, data  # a part written before headers existed
    records = []
    for line_no, line in enumerate(body.splitlines(), 2 if header else 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise CorruptFileError(path, f"line {line_no} is not a JSON record (truncated or damaged)") from None
        if not isinstance(record, dict) or any(not isinstance(record.get(k), t) for k, t in _RECORD_KEYS.items()):
            raise CorruptFileError(path, f"line {line_no} is not a store record (needs integer source and step "
                                         "and a file path)")
        records.append(record)
    if header is not None and len(records) != header.get("count"):
        raise CorruptFileError(path, f"holds {len(records)} records, its header says {header.get('count')}")
    if not records:
        raise CorruptFileError(path, "the part file holds no records")
    return records


def image_relpath(source: int, step: int) -> str:
    return os.path.join(IMAGES_DIR, f"s{step:03d}", f"{source:08d}.png")


def unit_name(step: int, unit: int) -> str:
    return f"s{step:03d}-u{unit:06d}"


class SyntheticStore:
    """The folder of one generation run (see the module docstring for its layout)."""

    def __init__(self, root: str):
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root (the store folder) must be a path, got {root!r} ({type(root).__name__})")
        self.root = os.path.abspath(os.fspath(root))

    # -- writing
    def open_for_writing(self, settings: Dict[str, Any]) -> None:
        """Creates the folder, checks it is writable, and records or checks ``settings``."""
        try:
            os.makedirs(os.path.join(self.root, PARTS_DIR), exist_ok=True)
            os.makedirs(os.path.join(self.root, IMAGES_DIR), exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=temp_file_prefix())
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise PermissionError(f"output folder {self.root} is not writable: {exc}") from exc
        remove_stale_temp_files(self.root, recursive=True)  # a killed run's half-written files
        existing = self.settings()
        if existing is None:
            stored = {"augcore_store": STORE_FORMAT, **settings}
            atomic_write(os.path.join(self.root, STORE_FILE),
                          lambda fh: fh.write(json.dumps(stored, indent=1, sort_keys=True).encode()))
            return
        differ = sorted(k for k in set(existing) | set(settings) if existing.get(k) != settings.get(k))
        if differ:
            details = ", ".join(f"{k}: stored {existing.get(k)!r} vs asked {settings.get(k)!r}" for k in differ)
            raise StoreMismatchError(f"{self.root} holds images made with other settings ({details}); "
                                     "resume with the same settings or use a new output folder")

    def write_unit(self, step: int, unit: int, images: Sequence[torch.Tensor], records: List[Dict[str, Any]]) -> None:
        """Writes a unit's images, then its manifest part (the commit point); each record gets
        its image's SHA-256."""
        os.makedirs(os.path.join(self.root, IMAGES_DIR, f"s{step:03d}"), exist_ok=True)
        committed = []
        for image, record in zip(images, records, strict=True):
            committed.append({**record, "sha256": write_png(os.path.join(self.root, record["file"]), image)})
        atomic_write_bytes(self._part_path(step, unit), _part_bytes(unit_name(step, unit), committed))

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
        try:
            with open(path, encoding="utf-8") as fh:
                settings = json.load(fh)
        except ValueError as exc:
            raise CorruptFileError(path, f"the store's settings are not valid JSON ({exc}); restore the file or use "
                                         "a new output folder") from None
        if not isinstance(settings, dict):
            raise CorruptFileError(path, f"the store's settings must be a JSON object, got {type(settings).__name__}")
        check_format_version(path, settings.pop("augcore_store", STORE_FORMAT), (STORE_FORMAT,), what="stores",
                             key="augcore_store")
        return settings

    def _part_path(self, step: int, unit: int) -> str:
        return os.path.join(self.root, PARTS_DIR, unit_name(step, unit) + ".jsonl")

    def unit_done(self, step: int, unit: int, sources: Optional[Sequence[int]] = None) -> bool:
        """Whether the unit is committed and intact: its part is valid, holds exactly ``sources``
        (when given) at ``step``, and every image it names is present with its checksum.
        A damaged unit is reported (a warning) and counts as not done, so it is redone."""
        path = self._part_path(step, unit)
        if not os.path.exists(path):
            return False
        try:
            records = read_part(path)
            for record in records:
                self.verify_image(record)
        except (CorruptFileError, FileNotFoundError) as exc:
            warnings.warn(f"unit {unit_name(step, unit)} is damaged and will be redone: {exc}", stacklevel=2)
            return False
        held = sorted((r["source"], r["step"]) for r in records)
        if sources is not None and held != sorted((int(s), step) for s in sources):
            warnings.warn(f"unit {unit_name(step, unit)} ({path}) holds {len(held)} records, not the "
                          f"{len(sources)} items planned for it; it will be redone", stacklevel=2)
            return False
        return True

    def records(self) -> List[Dict[str, Any]]:
        """All committed records, sorted by (source, step); raises on a duplicated (source, step)."""
        parts = os.path.join(self.root, PARTS_DIR)
        if not os.path.isdir(parts):
            raise FileNotFoundError(f"{self.root} is not a synthetic image store (no {PARTS_DIR}/ folder)")
        records: Dict[Tuple[int, int], Dict[str, Any]] = {}
        where: Dict[Tuple[int, int], str] = {}
        for name in sorted(os.listdir(parts)):
            if not name.endswith(".jsonl") or name.startswith(TEMP_PREFIX):
                continue
            path = os.path.join(parts, name)
            for record in read_part(path):
                key = (record["source"], record["step"])
                if key in records:
                    raise CorruptFileError(path, f"item {key[0]} at step {key[1]} is also recorded in {where[key]}")
                records[key] = record
                where[key] = path
        return [records[k] for k in sorted(records)]

    def verify_image(self, record: Dict[str, Any]) -> None:
        """Raises unless the record's image exists and (when the record has one) matches its checksum."""
        path = os.path.join(self.root, record["file"])
        if not os.path.isfile(path):
            raise FileNotFoundError(f"synthetic image {path} is missing")
        if record.get("sha256") is not None:
            with open(path, "rb") as fh:
                if _sha256(fh.read()) != record["sha256"]:
                    raise CorruptFileError(path, "checksum mismatch: the image was damaged or changed after it "
                                                 "was written")

    def load_image(self, record: Dict[str, Any]) -> torch.Tensor:
        """The record's image, its checksum verified (records written before checksums: unverified)."""
        return read_png(os.path.join(self.root, record["file"]), record.get("sha256"))
