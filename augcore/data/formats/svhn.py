"""SVHN's cropped digits (Netzer et al., 2011) from the MATLAB files train_32x32.mat / test_32x32.mat."""
from __future__ import annotations

import os

import numpy as np
import torch

from augcore.checks import CorruptFileError
from augcore.data.formats.base import DATASETS, DatasetFormat, LoadOptions, find_folder
from augcore.data.image_dataset import ImageDataset, _TensorImages

SVHN_FORMAT = ("the cropped-digits MATLAB files train_32x32.mat / test_32x32.mat from "
               "http://ufldl.stanford.edu/housenumbers/ (keys X: (32, 32, 3, N) uint8, y: (N, 1), label 10 = digit 0)")


@DATASETS.register("svhn")
class SVHN(DatasetFormat):
    description = "SVHN cropped digits train_32x32.mat / test_32x32.mat in <root>/svhn"
    folder = "svhn"
    image_size = (32, 32)
    mean = (0.4377, 0.4438, 0.4728)
    std = (0.1980, 0.2010, 0.1970)
    num_classes = 10
    cutout_size = 20                  # DeVries & Taylor
    autoaugment_policy = "svhn"
    flip = False                      # a mirrored digit is another digit, or none

    @classmethod
    def load(cls, root: str, train: bool, options: LoadOptions) -> ImageDataset:
        import scipy.io

        file = "train_32x32.mat" if train else "test_32x32.mat"
        folder = find_folder(root, cls.folder, [file], "SVHN", SVHN_FORMAT)
        path = os.path.join(folder, file)
        try:
            mat = scipy.io.loadmat(path)
        except (ValueError, TypeError, OSError, EOFError, NotImplementedError) as exc:  # scipy's errors for bad files
            raise CorruptFileError(path, f"not a readable MATLAB file (truncated or damaged?): {exc}") from None
        if "X" not in mat or "y" not in mat:
            raise CorruptFileError(path, f"expected keys 'X' and 'y', found "
                                         f"{sorted(k for k in mat if not k.startswith('__'))}")
        x = np.asarray(mat["X"], dtype=np.uint8)
        if x.ndim != 4 or x.shape[2] != 3:
            raise CorruptFileError(path, f"'X' must be (32, 32, 3, N), got shape {x.shape}")
        y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
        if y.shape[0] != x.shape[3]:
            raise CorruptFileError(path, f"{x.shape[3]} images but {y.shape[0]} labels")
        if y.size and (y.min() < 0 or y.max() > 10):
            raise CorruptFileError(path, f"labels must lie in 0..10 (10 = digit 0), found [{y.min()}, {y.max()}]")
        y = np.where(y == 10, 0, y)  # SVHN stores digit 0 as label 10
        images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
        return cls.dataset(_TensorImages(images), torch.from_numpy(y), [str(d) for d in range(10)])
