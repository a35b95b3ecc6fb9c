"""Class folders of images: ImageNet's train/ and val/ trees, Caltech-256's 256_ObjectCategories, or any
<class>/<image files> tree. Images are decoded on access and resized to a fixed size."""
from __future__ import annotations

import os
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from augcore.data.formats.base import DATASETS, DatasetFormat, DatasetNotFoundError, LoadOptions, stratified_split
from augcore.data.image_dataset import ImageDataset, _FileImages

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")


def image_files(folder: str) -> List[str]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.lower().endswith(IMAGE_EXTENSIONS))
    return files


def read_class_names(root: str, folder_names: Sequence[str]) -> List[str]:
    """Readable class names for prompts: words.txt (wnid -> names) when present, else cleaned folder names."""
    words_path = os.path.join(root, "words.txt")
    words: Dict[str, str] = {}
    if os.path.exists(words_path):
        with open(words_path, encoding="utf-8") as fh:
            for line in fh:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2:
                    words[parts[0]] = parts[1].split(",")[0].strip()
    return [words.get(f, _readable_folder_name(f)) for f in folder_names]


def _readable_folder_name(folder: str) -> str:
    """Caltech-256's "002.american-flag" / "253.faces-easy-101" read "american flag" / "faces easy"."""
    name = re.sub(r"-101$", "", re.sub(r"^\d+\.", "", folder))
    return re.sub(r"[-_]+", " ", name).strip() or folder


def _class_folders(folder: str) -> List[str]:
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))


def _scan_class_folders(folder: str, what: str) -> Tuple[List[str], List[str], List[int]]:
    classes = _class_folders(folder)
    if not classes:
        raise DatasetNotFoundError(f"{what}: no class folders in {os.path.abspath(folder)} (expected "
                                   f"<class name>/<image files> sub-folders)")
    paths, labels = [], []
    # listing ImageNet's 1000 folders takes a while: show progress for large trees
    for c, name in enumerate(tqdm(classes, desc=f"scanning {folder}", unit="class", disable=len(classes) < 100)):
        files = image_files(os.path.join(folder, name))
        if not files:
            raise ValueError(f"{what}: class folder {os.path.join(folder, name)} holds no images "
                             f"(extensions {', '.join(IMAGE_EXTENSIONS)})")
        paths.extend(files)
        labels.extend([c] * len(files))
    return classes, paths, labels


@DATASETS.register("imagefolder")
class ImageFolder(DatasetFormat):
    """``root/train/<class>/...`` with ``root/val/<class>`` (or ``root/test``) for the test split; a
    ``root`` holding class folders directly (Caltech-256's ``256_ObjectCategories``) is split
    stratified and seeded by ``split_seed``."""

    description = "class folders of images (ImageNet, Caltech-256) at <root>"
    image_size = (224, 224)           # the default decode size
    resizable = True
    mean = (0.485, 0.456, 0.406)      # ImageNet's (torchvision's pretrained models)
    std = (0.229, 0.224, 0.225)
    cutout_size = 32                  # coreset paper's released main.py: Cutout(1, 32) after a 224-pixel crop (Caltech)

    @classmethod
    def load(cls, root: str, train: bool, options: LoadOptions) -> ImageDataset:
        name = cls.name
        fmt = ("class folders of images: <root>/train/<class>/*.jpg and <root>/val/<class>/*.jpg, or "
               "<root>/<class>/*.jpg split deterministically")
        if not os.path.isdir(root):
            raise DatasetNotFoundError(f"image folder data set not found: {os.path.abspath(root)} does not exist. "
                                       f"Format: {fmt}. augcore never downloads data.")
        if os.path.isdir(os.path.join(root, "train")):
            test_folder = next((os.path.join(root, d) for d in ("val", "test") if os.path.isdir(os.path.join(root, d))),
                               None)
            if not train and test_folder is None:
                raise DatasetNotFoundError(f"image folder data set: {os.path.abspath(root)} has train/ but neither "
                                           f"val/ nor test/ for the test split. Format: {fmt}.")
            train_classes = _class_folders(os.path.join(root, "train"))
            classes, paths, labels = _scan_class_folders(os.path.join(root, "train") if train else test_folder, name)
            if classes != train_classes:
                raise ValueError(f"{name}: the test folder's classes differ from train/'s "
                                 f"({len(classes)} vs {len(train_classes)} folders)")
        else:
            classes, paths, labels = _scan_class_folders(root, name)
            keep = stratified_split(np.asarray(labels), train, options.test_fraction, options.split_seed)
            paths = [paths[i] for i in keep]
            labels = [labels[i] for i in keep]
        return cls.dataset(_FileImages(paths, options.image_size), torch.tensor(labels),
                           read_class_names(root, classes))
