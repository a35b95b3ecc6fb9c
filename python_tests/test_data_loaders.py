"""Loaders read small files written in the real on-disk formats; options follow their formulas."""
import os
import pickle

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from augcore.data import DATASETS, DatasetNotFoundError, load_dataset, long_tail_counts

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """The archive's row layout, spelled out: 1024 red values (row-major), then 1024 green, then 1024 blue."""
    return np.stack([np.concatenate([img[0].ravel(), img[1].ravel(), img[2].ravel()]) for img in images])


def _pickle(path, obj):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


@pytest.fixture(scope="module")
def cifar10_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("c10")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 40, 3, 32, 32), dtype=np.uint8)  # 40 per batch: 4 per class per batch
    labels = np.tile(np.arange(10), (5, 4))
    for b in range(5):
        _pickle(folder / f"data_batch_{b + 1}", {b"batch_label": b"training batch", b"labels": labels[b].tolist(),
                                                b"data": _cifar_rows(images[b]),
                                                b"filenames": [b"x.png"] * 40})
    test_images = rng.integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    _pickle(folder / "test_batch", {b"labels": (np.arange(20) % 10).tolist(), b"data": _cifar_rows(test_images)})
    _pickle(folder / "batches.meta", {b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_vis": 3072})
    return root, images.reshape(200, 3, 32, 32), labels.reshape(-1), test_images


def test_cifar10_reads_pickled_batches(cifar10_root):
    root, images, labels, test_images = cifar10_root
    train = load_dataset("cifar10", root)
    assert len(train) == 200 and train.classes == CIFAR10_NAMES and train.num_classes == 10
    assert train.image_size == (32, 32) and train.channels == 3 and len(train.mean) == 3
    assert train.targets.dtype == torch.int64
    assert torch.equal(train.targets, torch.from_numpy(labels))
    image, label = train[57]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
    assert torch.equal(image, torch.from_numpy(images[57])) and label == labels[57]
    test = load_dataset("cifar10", root / "cifar-10-batches-py", train=False)  # the extracted folder itself
    assert len(test) == 20 and torch.equal(test.image(3), torch.from_numpy(test_images[3]))


def test_cifar100_reads_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (30, 3, 32, 32), dtype=np.uint8)
    fine = rng.integers(0, 100, 30)
    _pickle(folder / "train", {b"fine_labels": fine.tolist(), b"coarse_labels": (fine // 5).tolist(),
                               b"data": _cifar_rows(images)})
    _pickle(folder / "test", {b"fine_labels": fine[:6].tolist(), b"coarse_labels": [0] * 6,
                              b"data": _cifar_rows(images[:6])})
    names = [f"class{i}" for i in range(100)]
    _pickle(folder / "meta", {b"fine_label_names": [n.encode() for n in names],
                              b"coarse_label_names": [b"c"] * 20})
    train = load_dataset("cifar100", tmp_path)
    assert train.num_classes == 100 and train.classes == names
    assert torch.equal(train.targets, torch.from_numpy(fine))
    assert all(torch.equal(train.image(i), torch.from_numpy(images[i])) for i in range(30))
    assert len(load_dataset("cifar100", tmp_path, train=False)) == 6


def test_svhn_reads_mat_and_maps_label_10_to_0(tmp_path):
    folder = tmp_path / "svhn"
    folder.mkdir()
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (32, 32, 3, 25), dtype=np.uint8)
    y = rng.integers(1, 11, (25, 1)).astype(np.uint8)
    y[:3] = 10
    scipy.io.savemat(folder / "train_32x32.mat", {"X": x, "y": y})
    ds = load_dataset("svhn", tmp_path)
    assert len(ds) == 25 and ds.classes == [str(d) for d in range(10)]
    assert torch.equal(ds.targets, torch.from_numpy(np.where(y[:, 0] == 10, 0, y[:, 0]).astype(np.int64)))
    assert (ds.targets[:3] == 0).all()
    for i in (0, 11, 24):
        expected = torch.from_numpy(np.ascontiguousarray(x[:, :, :, i]))  # (H, W, C)
        assert torch.equal(ds.image(i).permute(1, 2, 0), expected)
    with pytest.raises(DatasetNotFoundError, match="test_32x32.mat"):
        load_dataset("svhn", tmp_path, train=False)


def _write_png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder_train_val_layout(tmp_path):
    rng = np.random.default_rng(4)
    written = {}
    for split, per_class in (("train", 3), ("val", 2)):
        for c, name in enumerate(["001.ak47", "002.american-flag"]):
            for k in range(per_class):
                arr = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                path = tmp_path / split / name / f"{k:03d}.png"
                _write_png(str(path), arr)
                written[(split, c, k)] = arr
    train = load_dataset("imagefolder", tmp_path, image_size=16)
    assert len(train) == 6 and train.classes == ["ak47", "american flag"]
    assert train.targets.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(train.image(4).permute(1, 2, 0), torch.from_numpy(written[("train", 1, 1)]))
    test = load_dataset("imagefolder", tmp_path, train=False, image_size=16)
    assert test.targets.tolist() == [0, 0, 1, 1]
    resized = load_dataset("imagefolder", tmp_path, image_size=12)
    assert resized.image(0).shape == (3, 12, 12) and resized.image_size == (12, 12)


def test_image_folder_flat_layout_is_split_stratified_and_deterministic(tmp_path):
    rng = np.random.default_rng(5)
    for c in range(3):
        for k in range(10):
            _write_png(str(tmp_path / f"class{c}" / f"{k}.png"), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    train = load_dataset("imagefolder", tmp_path, image_size=8, test_fraction=0.3)
    test = load_dataset("imagefolder", tmp_path, train=False, image_size=8, test_fraction=0.3)
    assert train.class_counts().tolist() == [7, 7, 7] and test.class_counts().tolist() == [3, 3, 3]
    train_files, test_files = set(train._images.paths), set(test._images.paths)
    assert not train_files & test_files and len(train_files | test_files) == 30
    again = load_dataset("imagefolder", tmp_path, image_size=8, test_fraction=0.3)
    assert again._images.paths == train._images.paths
    other = load_dataset("imagefolder", tmp_path, image_size=8, test_fraction=0.3, split_seed=1)
    assert set(other._images.paths) != train_files


def test_tiny_imagenet_layout_with_val_annotations(tmp_path):
    folder = tmp_path / "tiny-imagenet-200"
    wnids = ["n01443537", "n01629819"]
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (folder / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\n")
    rng = np.random.default_rng(6)
    for w in wnids:
        for k in range(2):
            _write_png(str(folder / "train" / w / "images" / f"{w}_{k}.png"),
                       rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    val_labels = [1, 0, 1]
    val_arrays = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in val_labels]
    lines = []
    for k, (lab, arr) in enumerate(zip(val_labels, val_arrays)):
        _write_png(str(folder / "val" / "images" / f"val_{k}.png"), arr)
        lines.append(f"val_{k}.png\t{wnids[lab]}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    train = load_dataset("tiny_imagenet", tmp_path)
    assert train.classes == ["goldfish", "European fire salamander"] and train.targets.tolist() == [0, 0, 1, 1]
    val = load_dataset("tiny_imagenet", tmp_path, train=False)
    assert val.targets.tolist() == val_labels and val.image_size == (64, 64)
    assert torch.equal(val.image(2).permute(1, 2, 0), torch.from_numpy(val_arrays[2]))


def test_digits_split_is_stratified_disjoint_and_complete():
    from sklearn.datasets import load_digits

    full = load_digits()
    train, test = load_dataset("digits"), load_dataset("digits", train=False)
    assert len(train) + len(test) == 1797 and train.image_size == (8, 8) and train.channels == 1
    expected = np.rint(full.images * 255 / 16).astype(np.uint8).reshape(1797, 64)
    got = torch.cat([train._images.images, test._images.images]).reshape(1797, 64).numpy()
    labels = torch.cat([train.targets, test.targets]).numpy()
    # the two splits together are the whole set, image and label paired as in scikit-learn
    order = np.lexsort(np.column_stack([expected, full.target]).T)
    got_order = np.lexsort(np.column_stack([got, labels]).T)
    assert np.array_equal(expected[order], got[got_order]) and np.array_equal(full.target[order], labels[got_order])
    class_sizes = np.bincount(full.target)
    assert np.all(np.abs(test.class_counts().numpy() - 0.2 * class_sizes) <= 1)
    assert torch.equal(load_dataset("digits").targets, train.targets)
    assert len(load_dataset("digits", root="/ignored/for/digits")) == len(train)


@pytest.mark.parametrize("name, fmt", [("cifar10", "pickle"), ("cifar100", "pickle"), ("svhn", ".mat"),
                                       ("tiny_imagenet", "val_annotations.txt"), ("imagefolder", "class folders")])
def test_missing_dataset_names_path_and_format(tmp_path, name, fmt):
    where = tmp_path / "nothing-here"
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, where)
    assert str(where) in str(err.value) and fmt in str(err.value) and "never downloads" in str(err.value)


def test_partial_cifar_names_the_missing_batch(cifar10_root, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in os.listdir(cifar10_root[0] / "cifar-10-batches-py"):
        if f != "data_batch_3":
            os.symlink(cifar10_root[0] / "cifar-10-batches-py" / f, folder / f)
    with pytest.raises(DatasetNotFoundError, match="missing data_batch_3"):
        load_dataset("cifar10", tmp_path)


def test_unknown_dataset_lists_choices():
    with pytest.raises(ValueError, match="digits"):
        load_dataset("emnist")
    assert set(DATASETS) == {"digits", "cifar10", "cifar100", "svhn", "mnist", "imagefolder", "tiny_imagenet"}


@pytest.mark.parametrize("factor", [10, 100])
def test_long_tail_counts_follow_the_exponential_profile(cifar10_root, factor):
    root, images, labels, _ = cifar10_root
    lt = load_dataset("cifar10", root, imbalance_factor=factor, seed=3)
    n_max = 20  # 20 images per class in the fixture
    expected = [int(n_max * (1 / factor) ** (c / 9)) for c in range(10)]
    assert lt.class_counts().tolist() == expected == long_tail_counts([20] * 10, factor)
    # every kept image is an image of its class in the source set
    source = {images[i].tobytes(): int(labels[i]) for i in range(200)}
    assert all(source[lt.image(i).numpy().tobytes()] == int(lt.targets[i]) for i in range(len(lt)))
    assert torch.equal(load_dataset("cifar10", root, imbalance_factor=factor, seed=3).targets, lt.targets)
    assert len(load_dataset("cifar10", root, train=False, imbalance_factor=factor)) == 20  # test split untouched


def test_long_tail_rejects_factor_below_one():
    with pytest.raises(ValueError, match="imbalance_factor"):
        load_dataset("digits", imbalance_factor=0.5)


def test_symmetric_label_noise_rate_seed_and_clean_labels():
    clean = load_dataset("digits")
    assert not hasattr(clean, "clean_targets") and not clean.noise_mask.any()
    noisy = load_dataset("digits", label_noise=0.5, seed=7)
    assert torch.equal(noisy.clean_targets, clean.targets)
    flipped = noisy.targets != noisy.clean_targets
    assert int(flipped.sum()) == round(0.5 * len(clean))  # every chosen label moves to another class
    assert torch.equal(noisy.noise_mask, flipped)
    # the new labels spread over every other class
    for c in range(10):
        moved_from_c = noisy.targets[flipped & (noisy.clean_targets == c)]
        assert set(moved_from_c.tolist()) == set(range(10)) - {c}
    assert torch.equal(load_dataset("digits", label_noise=0.5, seed=7).targets, noisy.targets)
    assert not torch.equal(load_dataset("digits", label_noise=0.5, seed=8).targets, noisy.targets)
    assert not hasattr(load_dataset("digits", train=False, label_noise=0.5), "clean_targets")
    with pytest.raises(ValueError, match="label_noise"):
        load_dataset("digits", label_noise=1.5)


def test_views_share_data_and_carry_clean_labels():
    noisy = load_dataset("digits", label_noise=0.2, seed=1)
    view = noisy.with_transform(lambda x: x.float() * 2)
    image, label = view[5]
    assert image.dtype == torch.float32 and torch.equal(image, noisy.image(5).float() * 2)
    assert noisy.transform is None and noisy[5][0].dtype == torch.uint8 and label == int(noisy.targets[5])
    sub = noisy.subset([4, 2])
    assert torch.equal(sub.targets, noisy.targets[[4, 2]]) and torch.equal(sub.clean_targets, noisy.clean_targets[[4, 2]])
    assert torch.equal(sub.image(1), noisy.image(2))
    with pytest.raises(IndexError):
        noisy.subset([len(noisy)])
