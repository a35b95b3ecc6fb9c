"""scikit-learn's 8x8 digits (1797 images, shipped with scikit-learn): no files needed, the demos' default."""
from __future__ import annotations

import numpy as np
import torch

from augcore.data.formats.base import DATASETS, DatasetFormat, LoadOptions, stratified_split
from augcore.data.image_dataset import ImageDataset, _TensorImages


@DATASETS.register("digits")
class Digits(DatasetFormat):
    description = "scikit-learn's 8x8 digits (embedded, no files needed), stratified seeded split"
    image_size = (8, 8)
    num_classes = 10
    autoaugment_policy = "svhn"
    flip = False                      # a mirrored digit is another digit, or none

    @classmethod
    def load(cls, root: str, train: bool, options: LoadOptions) -> ImageDataset:
        """Pixel values 0..16 scaled to 0..255, split stratified by ``split_seed``; mean/std are those of
        the whole set (computed here, so ``mean``/``std`` are None)."""
        from sklearn.datasets import load_digits as sklearn_digits

        bunch = sklearn_digits()
        pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
        mean = float(pixels.mean() / 255.0)
        std = float(pixels.std() / 255.0)
        keep = stratified_split(bunch.target, train, options.test_fraction, options.split_seed)
        images = torch.from_numpy(pixels[keep]).unsqueeze(1).contiguous()
        return cls.dataset(_TensorImages(images), torch.from_numpy(bunch.target[keep].astype(np.int64)),
                           [str(d) for d in range(10)], mean=(mean,), std=(std,))
