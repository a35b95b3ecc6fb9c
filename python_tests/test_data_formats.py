"""Data-set formats: each built-in format carries the papers' facts, and a format registered in one place
(one class, one decorator) is loadable by name, drives the transforms and passes config validation."""
import pytest
import torch

from augcore.data import DATASETS, DatasetFormat, ImageDataset, load_dataset
from augcore.data.datasets import _TensorImages
from augcore.data.transforms import (Cutout, autoaugment_policy_for, cutout_size_for, strong_transform,
                                     weak_transform)
from augcore.data.wu2020 import Wu2020Augment
from augcore.train import ConfigError, config_from_dict

CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
SVHN_STATS = ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
MNIST_STATS = ((0.1307,), (0.3081,))

# name: folder, image size, (mean, std) (None: computed at load), classes, Cutout side at that size
# (DeVries & Taylor; the refinement paper; the coreset paper's released code; None: half the side,
# no paper uses Cutout there), AutoAugment policy, flip allowed, image_size option taken
PAPERS = {
    "cifar10": ("cifar-10-batches-py", (32, 32), CIFAR10_STATS, 10, 16, "cifar10", True, False),
    "cifar100": ("cifar-100-python", (32, 32), CIFAR100_STATS, 100, 16, "cifar10", True, False),
    "svhn": ("svhn", (32, 32), SVHN_STATS, 10, 20, "svhn", False, False),
    "mnist": ("mnist", (28, 28), MNIST_STATS, 10, None, "svhn", False, False),
    "digits": (None, (8, 8), None, 10, None, "svhn", False, False),
    "tiny_imagenet": ("tiny-imagenet-200", (64, 64), IMAGENET_STATS, 200, 32, "imagenet", True, True),
    "imagefolder": (None, (224, 224), IMAGENET_STATS, None, 32, "imagenet", True, True),
}
# the Cutout side transforms.cutout_size_for gave before the formats carried it, at these image sides
CUTOUT_PIXELS = {("cifar10", 32): 16, ("cifar100", 32): 16, ("svhn", 32): 20, ("mnist", 28): 14, ("digits", 8): 4,
                 ("tiny_imagenet", 64): 32, ("tiny_imagenet", 32): 16, ("imagefolder", 224): 32,
                 ("imagefolder", 112): 16, ("unregistered", 32): 16}


def image_dataset(name: str, side: int, channels: int = 3, n: int = 4) -> ImageDataset:
    images = torch.zeros(n, channels, side, side, dtype=torch.uint8)
    return ImageDataset(_TensorImages(images), torch.arange(n) % 2, ["a", "b"], name=name,
                        mean=(0.5,) * channels, std=(0.25,) * channels)


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_builtin_format_carries_the_papers_facts(name):
    folder, size, stats, classes, cutout, policy, flip, resizable = PAPERS[name]
    fmt = DATASETS[name]
    assert fmt.name == name and fmt.description
    assert (fmt.folder, fmt.image_size, fmt.num_classes, fmt.cutout_size) == (folder, size, classes, cutout)
    assert (fmt.mean, fmt.std) == (stats if stats is not None else (None, None))
    assert (fmt.autoaugment_policy, fmt.flip, fmt.resizable) == (policy, flip, resizable)


def test_the_registry_holds_exactly_the_builtin_formats():
    assert set(DATASETS) == set(PAPERS)


@pytest.mark.parametrize("name, side", sorted(CUTOUT_PIXELS))
def test_cutout_size_is_the_old_tables(name, side):
    channels = 1 if name in ("mnist", "digits") else 3
    assert cutout_size_for(image_dataset(name, side, channels)) == CUTOUT_PIXELS[name, side]


def test_digits_loads_with_its_facts():
    train = load_dataset("digits")
    assert (train.name, train.image_size, train.num_classes) == ("digits", DATASETS["digits"].image_size, 10)
    with pytest.raises(ValueError, match="imagefolder, tiny_imagenet"):
        load_dataset("digits", image_size=16)


def make_stripes(side: int = 12, n: int = 6) -> torch.Tensor:
    """Images whose left half is white and right half black: a flip shows as a brighter right half."""
    images = torch.zeros(n, 1, side, side, dtype=torch.uint8)
    images[..., : side // 2] = 255
    return images


@pytest.fixture
def stripes_format():
    @DATASETS.register("memory_stripes")
    class MemoryStripes(DatasetFormat):
        description = "left-white stripes held in memory (a test format)"
        image_size = (12, 12)
        mean = (0.5,)
        std = (0.25,)
        num_classes = 2
        cutout_size = 3
        autoaugment_policy = "svhn"
        flip = False

        @classmethod
        def load(cls, root, train, options):
            images = make_stripes(n=6 if train else 2)
            return cls.dataset(_TensorImages(images), torch.arange(images.shape[0]) % 2, ["left", "right"])

    yield MemoryStripes
    del DATASETS["memory_stripes"]


def test_a_registered_format_loads_by_name(stripes_format):
    train = load_dataset("memory_stripes", label_noise=0.5, seed=3)
    test = load_dataset("memory_stripes", train=False)
    assert (len(train), len(test)) == (6, 2)
    assert (train.name, train.mean, train.std, train.classes) == ("memory_stripes", (0.5,), (0.25,), ["left", "right"])
    assert torch.equal(torch.stack([train.image(i) for i in range(6)]), make_stripes())
    assert int(train.noise_mask.sum()) == 3        # load_dataset's options apply to any format
    with pytest.raises(ValueError, match="fixed size"):
        load_dataset("memory_stripes", image_size=24)


def right_brighter(transform, image: torch.Tensor, draws: int = 60) -> int:
    """How many of ``draws`` transformed images are brighter on the right (mirrored)."""
    torch.manual_seed(0)
    outs = torch.stack([transform(image) for _ in range(draws)])
    return int((outs[..., 6:].mean(dim=(1, 2, 3)) > outs[..., :6].mean(dim=(1, 2, 3))).sum())


def test_transforms_read_a_registered_formats_facts(stripes_format):
    dataset = load_dataset("memory_stripes")
    assert cutout_size_for(dataset) == 3
    assert autoaugment_policy_for(dataset) == "svhn"
    cutouts = [t for t in strong_transform("cutout", dataset).transforms if isinstance(t, Cutout)]
    assert [c.size for c in cutouts] == [3]
    assert Wu2020Augment(dataset).flip is False
    image = dataset.image(0)
    assert right_brighter(weak_transform(dataset), image) == 0
    # the same images under a name no format registers get the default: flipped about half the time
    unregistered = ImageDataset(_TensorImages(make_stripes()), torch.zeros(6, dtype=torch.long), ["a"],
                                name="unregistered", mean=(0.5,), std=(0.25,))
    assert 15 <= right_brighter(weak_transform(unregistered), image) <= 45
    assert Wu2020Augment(unregistered).flip is True


def test_config_validation_accepts_a_registered_format(stripes_format):
    assert config_from_dict({"data": {"name": "memory_stripes"}}).data.name == "memory_stripes"
    with pytest.raises(ConfigError, match="data.name"):
        config_from_dict({"data": {"name": "memory_stripe"}})


@pytest.mark.parametrize("attributes, message", [
    ({}, "image_size"),
    ({"image_size": (8,)}, "image_size"),
    ({"image_size": (8, 8), "mean": (0.5,)}, "mean and std"),
    ({"image_size": (8, 8), "mean": (0.5, 0.5), "std": (0.2,)}, "channels"),
    ({"image_size": (8, 8), "std": (0.0,), "mean": (0.5,)}, "std"),
    ({"image_size": (8, 8), "cutout_size": 9}, "cutout_size"),
    ({"image_size": (8, 8), "autoaugment_policy": "mnist"}, "autoaugment_policy"),
    ({"image_size": (8, 8), "flip": "no"}, "flip"),
])
def test_a_format_with_bad_facts_is_refused_when_defined(attributes, message):
    with pytest.raises((TypeError, ValueError), match=message):
        type("BadFormat", (DatasetFormat,), attributes)
