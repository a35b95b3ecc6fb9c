"""MNIST from its standard IDX files on disk (nothing is downloaded).

The four files of http://yann.lecun.com/exdb/mnist/, plain or gzipped
(``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``), looked for in
``<root>/mnist``, ``<root>/MNIST/raw`` (torchvision's layout) or ``root`` itself.

IDX: a big-endian header, two zero bytes, a type code (0x08: unsigned bytes, the only
type MNIST uses), the number of dimensions, one 4-byte size per dimension, then the
values in row-major order. Images have magic 2051 (0x00000803: bytes, 3 dimensions
N x 28 x 28), labels 2049 (0x00000801: bytes, 1 dimension N).
"""
from __future__ import annotations

import gzip
import os
import struct
from typing import Optional, Tuple

import numpy as np
import torch

from augcore.checks import CorruptFileError
from augcore.data.formats.base import DATASETS, DatasetFormat, DatasetNotFoundError, LoadOptions
from augcore.data.image_dataset import ImageDataset, _TensorImages

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
MNIST_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MNIST_FORMAT = ("the IDX files of http://yann.lecun.com/exdb/mnist/ (train-images-idx3-ubyte, "
                "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte), plain or .gz")
_UBYTE = 0x08


def _read_bytes(path: str) -> bytes:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return fh.read()
        with open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError) as exc:  # gzip raises BadGzipFile (an OSError) or EOFError for damaged files
        raise CorruptFileError(path, f"cannot be read ({type(exc).__name__}: {exc})") from None


def read_idx(path: str, magic: int) -> np.ndarray:
    """The uint8 array in the IDX file ``path`` (plain or ``.gz``), whose header must carry ``magic``.

    Raises :class:`CorruptFileError` naming the file for a wrong magic number, a type
    other than unsigned bytes, or a size that does not match the header.
    """
    data = _read_bytes(os.fspath(path))
    if len(data) < 4:
        raise CorruptFileError(path, f"{len(data)} bytes: too short for an IDX header. {MNIST_FORMAT}")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise CorruptFileError(path, f"IDX magic number {found} (0x{found:08x}), expected {magic} (0x{magic:08x}): "
                                     f"not an MNIST {'image' if magic == IMAGES_MAGIC else 'label'} file")
    if data[2] != _UBYTE:
        raise CorruptFileError(path, f"IDX type code 0x{data[2]:02x}; MNIST stores unsigned bytes (0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CorruptFileError(path, f"truncated header: {ndim} dimensions need {header} bytes, the file has "
                                     f"{len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != expected:
        raise CorruptFileError(path, f"the header says shape {shape} ({expected} bytes of values), the file holds "
                                     f"{len(data) - header}: truncated or damaged")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def find_mnist_files(root: str, train: bool) -> Tuple[str, str]:
    """(images path, labels path) of one split, each plain or ``.gz``, in the first folder that holds both."""
    names = MNIST_FILES[bool(train)]
    candidates = [os.path.join(root, "mnist"), os.path.join(root, "MNIST", "raw"), root]

    def existing(folder: str, name: str) -> Optional[str]:
        for path in (os.path.join(folder, name), os.path.join(folder, name + ".gz")):
            if os.path.isfile(path):
                return path
        return None

    for folder in candidates:
        paths = [existing(folder, n) for n in names]
        if all(paths):
            return paths[0], paths[1]
    raise DatasetNotFoundError(
        f"MNIST not found: expected {' and '.join(names)} (or .gz) in {os.path.abspath(candidates[0])}, "
        f"{os.path.abspath(candidates[1])} or {os.path.abspath(root)}. Format: {MNIST_FORMAT}. augcore never "
        f"downloads data: place the files there, pass root=..., or set AUGCORE_DATA.")


@DATASETS.register("mnist")
class MNIST(DatasetFormat):
    description = "MNIST IDX files (plain or .gz) in <root>/mnist or <root>/MNIST/raw"
    folder = "mnist"
    image_size = (28, 28)
    mean = (0.1307,)                  # the 60,000 training images' pixels in [0, 1] (torchvision's examples)
    std = (0.3081,)
    num_classes = 10
    autoaugment_policy = "svhn"
    flip = False                      # a mirrored digit is another digit, or none

    @classmethod
    def load(cls, root: str, train: bool, options: LoadOptions) -> ImageDataset:
        """The training (60,000) or test (10,000) split: uint8 (1, 28, 28) images."""
        images_path, labels_path = find_mnist_files(root, train)
        images = read_idx(images_path, IMAGES_MAGIC)
        labels = read_idx(labels_path, LABELS_MAGIC)
        if images.ndim != 3:
            raise CorruptFileError(images_path, f"MNIST images are N x rows x columns, the header gives {images.shape}")
        if labels.ndim != 1:
            raise CorruptFileError(labels_path, f"MNIST labels are one dimension N, the header gives {labels.shape}")
        if labels.shape[0] != images.shape[0]:
            raise CorruptFileError(labels_path, f"{labels.shape[0]} labels for the {images.shape[0]} images of "
                                                f"{images_path}")
        if labels.size and int(labels.max()) > 9:
            raise CorruptFileError(labels_path, f"labels must be digits 0..9, found {int(labels.max())}")
        return cls.dataset(_TensorImages(torch.from_numpy(images.copy()).unsqueeze(1)),
                           torch.from_numpy(labels.astype(np.int64)), [str(d) for d in range(10)])


__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "MNIST", "MNIST_FILES", "find_mnist_files", "read_idx"]
