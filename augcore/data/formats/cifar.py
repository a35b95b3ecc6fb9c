"""CIFAR-10 and CIFAR-100 from the "python version" pickles (Krizhevsky, 2009)."""
from __future__ import annotations

import os
import pickle
from typing import Dict, List, Sequence, Union

import numpy as np
import torch

from augcore.checks import CorruptFileError
from augcore.data.formats.base import DATASETS, DatasetFormat, LoadOptions, find_folder
from augcore.data.image_dataset import ImageDataset, _TensorImages

CIFAR_FORMAT = ("the CIFAR 'python version' pickles (cifar-10-python.tar.gz / cifar-100-python.tar.gz from "
                "https://www.cs.toronto.edu/~kriz/cifar.html, extracted)")


def _unpickle(path: str, keys: Sequence[str] = ()) -> Dict[str, object]:
    """A CIFAR pickle as a dict with str keys; raises CorruptFileError naming the file when it is
    truncated, not a pickle, or lacks one of ``keys``."""
    try:
        with open(path, "rb") as fh:
            raw = pickle.load(fh, encoding="bytes")  # the archives are Python 2 pickles with bytes keys
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, MemoryError, UnicodeDecodeError) as exc:
        raise CorruptFileError(path, f"not a readable CIFAR pickle (truncated or damaged?): "
                                     f"{type(exc).__name__}: {exc}. {CIFAR_FORMAT}") from None
    if not isinstance(raw, dict):
        raise CorruptFileError(path, f"a CIFAR pickle holds a dict, found {type(raw).__name__}")
    entry = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
    missing = [k for k in keys if k not in entry]
    if missing:
        raise CorruptFileError(path, f"lacks key(s) {missing} (has {sorted(map(str, entry))}); {CIFAR_FORMAT}")
    return entry


def _names(values: Sequence[Union[str, bytes]]) -> List[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _cifar_rows_to_images(data: np.ndarray, path: str) -> torch.Tensor:
    try:
        data = np.asarray(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(path, f"'data' is not an array of pixel bytes ({exc})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CorruptFileError(path, f"'data' must be (N, 3072) uint8 rows (1024 R, 1024 G, 1024 B), "
                                     f"got shape {data.shape}")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())


def _cifar_labels(values, count: int, path: str, key: str) -> List[int]:
    labels = values.tolist() if hasattr(values, "tolist") else values
    if not isinstance(labels, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        raise CorruptFileError(path, f"'{key}' must be a list of integer labels")
    if len(labels) != count:
        raise CorruptFileError(path, f"{count} images but {len(labels)} labels in '{key}'")
    return list(labels)


@DATASETS.register("cifar10")
class CIFAR10(DatasetFormat):
    description = "CIFAR-10 python pickles in <root>/cifar-10-batches-py"
    folder = "cifar-10-batches-py"
    image_size = (32, 32)
    mean = (0.4914, 0.4822, 0.4465)   # per-channel statistics of the training images (the papers' code)
    std = (0.2470, 0.2435, 0.2616)
    num_classes = 10
    cutout_size = 16                  # DeVries & Taylor; refinement paper, Experiments (16 x 16 after AutoAugment)
    autoaugment_policy = "cifar10"

    @classmethod
    def load(cls, root: str, train: bool, options: LoadOptions) -> ImageDataset:
        batches = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        folder = find_folder(root, cls.folder, batches + ["batches.meta"], "CIFAR-10", CIFAR_FORMAT)
        images, labels = [], []
        for b in batches:
            path = os.path.join(folder, b)
            entry = _unpickle(path, ("data", "labels"))
            images.append(_cifar_rows_to_images(entry["data"], path))
            labels.extend(_cifar_labels(entry["labels"], images[-1].shape[0], path, "labels"))
        classes = _names(_unpickle(os.path.join(folder, "batches.meta"), ("label_names",))["label_names"])
        return cls.dataset(_TensorImages(torch.cat(images)), torch.tensor(labels, dtype=torch.int64), classes)


@DATASETS.register("cifar100")
class CIFAR100(DatasetFormat):
    description = "CIFAR-100 python pickles in <root>/cifar-100-python"
    folder = "cifar-100-python"
    image_size = (32, 32)
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    num_classes = 100
    cutout_size = 16                  # refinement paper, the same sentence (DeVries & Taylor used 8 on CIFAR-100)
    autoaugment_policy = "cifar10"

    @classmethod
    def load(cls, root: str, train: bool, options: LoadOptions) -> ImageDataset:
        split = "train" if train else "test"
        folder = find_folder(root, cls.folder, [split, "meta"], "CIFAR-100", CIFAR_FORMAT)
        path = os.path.join(folder, split)
        entry = _unpickle(path, ("data", "fine_labels"))
        images = _cifar_rows_to_images(entry["data"], path)
        labels = _cifar_labels(entry["fine_labels"], images.shape[0], path, "fine_labels")
        classes = _names(_unpickle(os.path.join(folder, "meta"), ("fine_label_names",))["fine_label_names"])
        return cls.dataset(_TensorImages(images), torch.tensor(labels, dtype=torch.int64), classes)
