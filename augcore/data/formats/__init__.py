"""Data-set formats, one module each, as torchvision.datasets has them; each registers itself in
:data:`DATASETS` with its facts (folder, image size, mean/std, classes, Cutout size, AutoAugment policy,
flip rule). Importing this package registers the built-in formats."""
from augcore.data.formats.base import (AUTOAUGMENT_POLICIES, DATASETS, DatasetFormat, DatasetNotFoundError,
                                       LoadOptions, default_root, format_of)
from augcore.data.formats.cifar import CIFAR10, CIFAR100
from augcore.data.formats.digits import Digits
from augcore.data.formats.folder import ImageFolder
from augcore.data.formats.mnist import MNIST
from augcore.data.formats.svhn import SVHN
from augcore.data.formats.tiny_imagenet import TinyImageNet

__all__ = ["AUTOAUGMENT_POLICIES", "CIFAR10", "CIFAR100", "DATASETS", "DatasetFormat", "DatasetNotFoundError", "Digits",
           "ImageFolder", "LoadOptions", "MNIST", "SVHN", "TinyImageNet", "default_root", "format_of"]
