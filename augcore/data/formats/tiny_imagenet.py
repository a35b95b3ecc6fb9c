"""Tiny-ImageNet-200 as extracted: train/<wnid>/images/*.JPEG, val/images + val/val_annotations.txt."""
from __future__ import annotations

import os

import torch

from augcore.checks import CorruptFileError
from augcore.data.formats.base import DATASETS, DatasetFormat, DatasetNotFoundError, LoadOptions, find_folder
from augcore.data.formats.folder import image_files, read_class_names
from augcore.data.image_dataset import ImageDataset, _FileImages

TINY_IMAGENET_FORMAT = ("the extracted tiny-imagenet-200.zip (wnids.txt, words.txt, train/<wnid>/images/*.JPEG, "
                        "val/images/*.JPEG with val/val_annotations.txt: file<TAB>wnid<TAB>box)")


@DATASETS.register("tiny_imagenet")
class TinyImageNet(DatasetFormat):
    description = "extracted tiny-imagenet-200 in <root>/tiny-imagenet-200"
    folder = "tiny-imagenet-200"
    image_size = (64, 64)             # the default decode size (the release's size)
    resizable = True
    mean = (0.485, 0.456, 0.406)      # ImageNet's
    std = (0.229, 0.224, 0.225)
    num_classes = 200
    cutout_size = 32                  # refinement paper, Tiny-ImageNet (32 x 32 after the CIFAR policy)

    @classmethod
    def load(cls, root: str, train: bool, options: LoadOptions) -> ImageDataset:
        folder = find_folder(root, cls.folder, ["wnids.txt", "train", "val/val_annotations.txt"], "Tiny-ImageNet",
                             TINY_IMAGENET_FORMAT)
        wnids_path = os.path.join(folder, "wnids.txt")
        try:
            with open(wnids_path, encoding="utf-8") as fh:
                wnids = [w.strip() for w in fh if w.strip()]
        except UnicodeDecodeError as exc:
            raise CorruptFileError(wnids_path, f"not a text file of class ids ({exc})") from None
        if not wnids:
            raise CorruptFileError(wnids_path, "lists no class ids")
        label_of = {w: c for c, w in enumerate(wnids)}
        paths, labels = [], []
        if train:
            for wnid in wnids:
                files = image_files(os.path.join(folder, "train", wnid))
                if not files:
                    raise DatasetNotFoundError(f"Tiny-ImageNet: no images for class {wnid} under "
                                               f"{os.path.join(folder, 'train', wnid)}")
                paths.extend(files)
                labels.extend([label_of[wnid]] * len(files))
        else:
            annotations = os.path.join(folder, "val", "val_annotations.txt")
            with open(annotations, encoding="utf-8") as fh:
                for line_no, line in enumerate(fh, 1):
                    parts = line.strip().split("\t")
                    if len(parts) < 2:
                        continue
                    if parts[1] not in label_of:
                        raise ValueError(f"{annotations}:{line_no}: class {parts[1]!r} is not in wnids.txt")
                    path = os.path.join(folder, "val", "images", parts[0])
                    if not os.path.exists(path):
                        raise DatasetNotFoundError(f"Tiny-ImageNet: {annotations}:{line_no} names {path}, "
                                                   "which is missing")
                    paths.append(path)
                    labels.append(label_of[parts[1]])
        return cls.dataset(_FileImages(paths, options.image_size), torch.tensor(labels),
                           read_class_names(folder, wnids))
