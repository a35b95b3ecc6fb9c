"""Atomic file writes: a run killed mid-write leaves the previous file intact, never half a file.

Every file augcore must not lose (checkpoints, selections, logs, generated images,
manifests, plots) goes through ``atomic_write``: the bytes go to a temp file in the
target folder, are flushed to disk, and the temp file is renamed over the target.

A kill (SIGKILL, power loss) between the two leaves a ``.tmp-*`` file behind;
:func:`remove_stale_temp_files` removes those of dead writers and is called when a
writer (the generation store, the trainer) starts on a folder.

Files written by :func:`atomic_torch_save` carry a SHA-256 of their bytes in the zip
comment (torch's own reader ignores it, so ``torch.load`` still reads them);
:func:`load_torch_file` verifies it before loading and raises
:class:`~augcore.checks.CorruptFileError` naming the file on a mismatch.
"""
from __future__ import annotations

import hashlib
import os
import socket
import struct
import tempfile
import threading
import time
import warnings
from typing import Any, BinaryIO, Callable, List, Set, Union

import torch

from augcore.checks import CorruptFileError

PathLike = Union[str, os.PathLike]

TEMP_PREFIX = ".tmp-"
CHECKSUM_PREFIX = b"augcore-sha256:"
_CHECKSUM_COMMENT_LENGTH = len(CHECKSUM_PREFIX) + 64
_ZIP_END_SIGNATURE = b"PK\x05\x06"
_ZIP_END_LENGTH = 22  # end-of-central-directory record without its comment

# temp files this process is writing right now (never stale, whatever their age or owner)
_in_flight: Set[str] = set()
_in_flight_lock = threading.Lock()


def _host() -> str:
    return socket.gethostname().replace("@", "_") or "localhost"


def temp_file_prefix() -> str:
    """``.tmp-<pid>@<host>@``: lets a later start tell a dead writer's leftovers from a live one's."""
    return f"{TEMP_PREFIX}{os.getpid()}@{_host()}@"


def atomic_write(path: PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Calls ``write(binary_file)`` on a temp file beside ``path``, then renames it to ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=temp_file_prefix(), suffix=os.path.splitext(path)[1])
    with _in_flight_lock:
        _in_flight.add(os.path.abspath(tmp))
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
    finally:
        with _in_flight_lock:
            _in_flight.discard(os.path.abspath(tmp))


def atomic_write_text(path: PathLike, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


# --------------------------------------------------------------------------- checksummed torch files

class _ChecksummingWriter:
    """Passes torch.save's bytes through to ``fh``, hashing them, but holds back the zip's
    end record so that a SHA-256 of everything before its comment-length field can be
    appended as the zip comment."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.digest = hashlib.sha256()
        self.tail = b""

    def _emit(self, data) -> None:
        self.fh.write(data)
        self.digest.update(data)

    def write(self, data) -> int:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        size = view.nbytes
        if size >= _ZIP_END_LENGTH:  # large writes (tensor storages) pass through without a copy
            if self.tail:
                self._emit(self.tail)
            self._emit(view[:size - _ZIP_END_LENGTH])
            self.tail = bytes(view[size - _ZIP_END_LENGTH:])
        else:
            joined = self.tail + bytes(view)
            cut = max(len(joined) - _ZIP_END_LENGTH, 0)
            if cut:
                self._emit(joined[:cut])
            self.tail = joined[cut:]
        return size

    def flush(self) -> None:
        self.fh.flush()

    def finish(self) -> None:
        end = self.tail
        if len(end) != _ZIP_END_LENGTH or end[:4] != _ZIP_END_SIGNATURE or end[-2:] != b"\x00\x00":
            raise RuntimeError("torch.save did not end with a comment-less zip end record; cannot add a checksum")
        self.digest.update(end[:-2])
        comment = CHECKSUM_PREFIX + self.digest.hexdigest().encode("ascii")
        self.fh.write(end[:-2] + struct.pack("<H", len(comment)) + comment)


def _save_with_checksum(obj: Any, fh: BinaryIO) -> None:
    writer = _ChecksummingWriter(fh)
    torch.save(obj, writer)
    writer.finish()


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """``torch.save`` to ``path`` atomically, with a SHA-256 of the file in its zip comment."""
    atomic_write(path, lambda fh: _save_with_checksum(obj, fh))


def verify_torch_file(path: PathLike) -> bool:
    """Checks the SHA-256 that :func:`atomic_torch_save` stores in ``path``.

    Returns True when it matches, False when the file has none (written by an older
    augcore or by plain ``torch.save``); raises :class:`CorruptFileError` naming the file
    when it is empty, truncated or its bytes changed after it was written.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size == 0:
        raise CorruptFileError(path, "the file is empty (a torch file was expected)")
    with open(path, "rb") as fh:
        fh.seek(max(size - _CHECKSUM_COMMENT_LENGTH - _ZIP_END_LENGTH, 0))
        tail = fh.read()
        end_at = tail.rfind(_ZIP_END_SIGNATURE)  # the hex digest and prefix never hold these bytes
        if end_at < 0 or len(tail) - end_at < _ZIP_END_LENGTH:
            return False  # no end record where ours would be: not written by atomic_torch_save
        comment_length = struct.unpack("<H", tail[end_at + 20:end_at + 22])[0]
        comment = tail[end_at + _ZIP_END_LENGTH:]
        ours = comment_length == _CHECKSUM_COMMENT_LENGTH and CHECKSUM_PREFIX.startswith(comment[:len(CHECKSUM_PREFIX)])
        if not ours:
            return False
        expected = comment[len(CHECKSUM_PREFIX):].decode("ascii", "replace")
        if len(comment) != _CHECKSUM_COMMENT_LENGTH or len(expected) != 64:
            raise CorruptFileError(path, f"truncated: its checksum record holds {len(comment)} of "
                                         f"{_CHECKSUM_COMMENT_LENGTH} bytes")
        digest = hashlib.sha256()
        fh.seek(0)
        left = size - _CHECKSUM_COMMENT_LENGTH - 2  # everything before the comment-length field
        while left > 0:
            chunk = fh.read(min(left, 1 << 22))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    if digest.hexdigest() != expected:
        raise CorruptFileError(path, "checksum mismatch: the file was damaged or changed after it was written "
                                     f"(stored SHA-256 {expected[:16]}..., content {digest.hexdigest()[:16]}...)")
    return True


def load_torch_file(path: PathLike, *, what: str = "torch file", weights_only: bool = False) -> Any:
    """``torch.load(path)`` on the CPU after checking the file's checksum.

    Raises ``FileNotFoundError`` (no such file), :class:`CorruptFileError` naming the file
    (empty, truncated, checksum mismatch, not a torch file), and warns when the file has
    no checksum (an older augcore wrote it), loading it unverified.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {path!r} ({type(path).__name__})")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {what} at {path}")
    if not verify_torch_file(path):
        warnings.warn(f"{path}: no checksum (written by an older augcore or plain torch.save); loading it unverified",
                      stacklevel=3)
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a damaged file
        raise CorruptFileError(path, f"cannot be read as a {what}: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- stale temp files

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep its files
    return True


def _is_stale(path: str, name: str, max_age_s: float, now: float) -> bool:
    if os.path.abspath(path) in _in_flight:
        return False
    owner = name[len(TEMP_PREFIX):].split("@")
    if len(owner) < 3 or not owner[0].isdigit():
        return True  # an older augcore's temp file: no owner to ask, no live writer expected
    pid, host = int(owner[0]), owner[1]
    if host == _host():
        return pid == os.getpid() or not _pid_alive(pid)  # our pid here is a previous run's (pid reuse)
    try:
        return now - os.path.getmtime(path) > max_age_s  # another machine's writer: only when long untouched
    except OSError:
        return False


def remove_stale_temp_files(folder: PathLike, *, recursive: bool = False, max_age_s: float = 3600.0) -> List[str]:
    """Removes ``.tmp-*`` files that a killed ``atomic_write`` left in ``folder``; returns their paths.

    Call it when a writer starts on ``folder``. A temp file is stale when its writer
    process (same machine) is gone, when another machine's writer has not touched it
    for ``max_age_s`` seconds, or when it has no recorded writer; files being written
    by a live process are kept, so concurrent writers (shards, ranks) are safe.
    """
    folder = os.fspath(folder)
    removed: List[str] = []
    if not os.path.isdir(folder):
        return removed
    now = time.time()
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            if not name.startswith(TEMP_PREFIX):
                continue
            path = os.path.join(dirpath, name)
            if _is_stale(path, name, max_age_s, now):
                try:
                    os.unlink(path)
                    removed.append(path)
                except FileNotFoundError:
                    pass  # its writer renamed or removed it meanwhile
        if not recursive:
            break
    return removed


def atomic_savefig(fig, path: PathLike, **savefig_kwargs) -> None:
    """Saves a matplotlib figure; the format comes from the file's extension (png if none)."""
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, **savefig_kwargs))


__all__ = ["CHECKSUM_PREFIX", "TEMP_PREFIX", "atomic_savefig", "atomic_torch_save", "atomic_write",
           "atomic_write_bytes", "atomic_write_text", "load_torch_file", "remove_stale_temp_files",
           "temp_file_prefix", "verify_torch_file"]
