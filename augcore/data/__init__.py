"""Data sets, augmentation presets and the augmented-subset training view.

``load_dataset`` reads CIFAR-10/100, SVHN, MNIST, class-folder sets (ImageNet,
Caltech-256, Tiny-ImageNet) from their standard on-disk formats, or scikit-learn's
digits (embedded, the default for demos): one module per format in ``formats``,
each registered in ``DATASETS`` with its facts (``DatasetFormat``). ``transforms`` holds the weak/strong
presets and Mixup/CutMix; ``AugmentedSubsetDataset`` appends (or substitutes)
strongly augmented copies of a ``Selection``.
"""
from augcore.data import transforms
from augcore.data.augmented import AugmentedSubsetDataset, random_subset_indices
from augcore.data.datasets import (DATASETS, DatasetFormat, DatasetNotFoundError, ImageDataset,
                                   add_symmetric_label_noise, load_dataset, long_tail_counts, make_long_tailed)

__all__ = ["AugmentedSubsetDataset", "DATASETS", "DatasetFormat", "DatasetNotFoundError", "ImageDataset",
           "add_symmetric_label_noise", "load_dataset", "long_tail_counts", "make_long_tailed",
           "random_subset_indices", "transforms"]
