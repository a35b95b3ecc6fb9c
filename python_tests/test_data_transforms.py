"""Augmentation presets: shapes, dtypes, value ranges, crop/flip geometry, Cutout area, Mixup/CutMix labels."""
import pytest
import torch
import torch.nn.functional as F

from augcore.data import ImageDataset, load_dataset
from augcore.data.datasets import _TensorImages
from augcore.data.transforms import (STRONG_AUGMENTATIONS, Cutout, CutMix, Mixup, eval_transform, strong_transform,
                                     weak_transform)


def _rgb_dataset(name="cifar10", n=4, size=32):
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
    return ImageDataset(_TensorImages(images), torch.arange(n) % 2, ["a", "b"], name=name,
                        mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _denormalize(y, ds):
    mean = torch.tensor(ds.mean, dtype=torch.float64).view(-1, 1, 1)
    std = torch.tensor(ds.std, dtype=torch.float64).view(-1, 1, 1)
    return torch.round((y.double() * std + mean) * 255).to(torch.uint8)


def _crop_candidates(x, pad, flips):
    h, w = x.shape[1:]
    padded = F.pad(x, (pad, pad, pad, pad))
    out = []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            out.append((dy, dx, False, crop))
            if flips:
                out.append((dy, dx, True, crop.flip(-1)))
    return out


def test_eval_transform_matches_float64_normalisation(digits):
    rgb = _rgb_dataset()
    for ds in (rgb, digits):
        x = ds.image(1)
        y = eval_transform(ds)(x)
        mean = torch.tensor(ds.mean, dtype=torch.float64).view(-1, 1, 1)
        std = torch.tensor(ds.std, dtype=torch.float64).view(-1, 1, 1)
        assert y.dtype == torch.float32 and y.shape == x.shape
        torch.testing.assert_close(y.double(), (x.double() / 255 - mean) / std, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name, pad, flips", [("cifar10", 4, True), ("svhn", 4, False)])
def test_weak_transform_is_a_padded_crop_and_flip(name, pad, flips):
    ds = _rgb_dataset(name)
    x = ds.image(0)
    candidates = _crop_candidates(x, pad, flips=True)
    weak = weak_transform(ds)
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        z = _denormalize(weak(x), ds)
        matches = [(dy, dx, fl) for dy, dx, fl, c in candidates if torch.equal(c, z)]
        assert matches, "weak output is not a padded crop (or its mirror) of the input"
        seen.update(matches)
    assert len({(dy, dx) for dy, dx, _ in seen}) > 5  # the offset is random
    assert any(fl for *_, fl in seen) == flips  # mirrored only where flipping keeps the meaning


def test_digits_weak_crop_pads_one_pixel_without_flip(digits):
    x = digits.image(3)
    candidates = _crop_candidates(x, 1, flips=False)
    weak = weak_transform(digits)
    for _ in range(20):
        z = _denormalize(weak(x), digits)
        assert any(torch.equal(c, z) for *_, c in candidates)


@pytest.mark.parametrize("name", STRONG_AUGMENTATIONS + ("autoaugment+cutout",))
@pytest.mark.parametrize("which", ["cifar10", "digits"])
def test_strong_presets_shape_dtype_range(name, which, digits):
    ds = _rgb_dataset() if which == "cifar10" else digits
    transform = strong_transform(name, ds)
    mean = torch.tensor(ds.mean).view(-1, 1, 1)
    std = torch.tensor(ds.std).view(-1, 1, 1)
    low, high = (0 - mean) / std - 1e-4, (1 - mean) / std + 1e-4
    for i in range(3):
        y = transform(ds.image(i))
        assert y.dtype == torch.float32 and y.shape == ds.image(i).shape
        assert bool(torch.isfinite(y).all()) and bool((y >= low).all()) and bool((y <= high).all())


def test_strong_presets_change_the_image():
    ds = _rgb_dataset()
    x = ds.image(0)
    candidates = [c for *_, c in _crop_candidates(x, 4, flips=True)]
    for name in ("autoaugment", "randaugment", "augmix", "noise", "cutout"):
        transform = strong_transform(name, ds)
        outputs = [_denormalize(transform(x), ds) for _ in range(10)]
        # at least one draw is more than a crop/flip of the input
        assert any(not any(torch.equal(c, z) for c in candidates) for z in outputs), name


def test_autoaugment_policy_follows_dataset(digits):
    from torchvision.transforms import v2

    def policy(t):
        return next(op.policy for op in t.transforms if isinstance(op, v2.AutoAugment))

    assert policy(strong_transform("autoaugment", _rgb_dataset())) == v2.AutoAugmentPolicy.CIFAR10
    assert policy(strong_transform("autoaugment", digits)) == v2.AutoAugmentPolicy.SVHN
    assert policy(strong_transform("autoaugment", _rgb_dataset("imagefolder"))) == v2.AutoAugmentPolicy.IMAGENET
    with pytest.raises(ValueError, match="AutoAugment policy"):
        strong_transform("autoaugment", digits, autoaugment_policy="mnist")


def test_unknown_strong_name_lists_choices(digits):
    with pytest.raises(ValueError, match="randaugment"):
        strong_transform("rotate", digits)


def test_cutout_zeroes_one_clipped_square():
    torch.manual_seed(0)
    cutout = Cutout(5)
    areas = set()
    for _ in range(200):
        y = cutout(torch.ones(2, 12, 12))
        zero = (y == 0).all(0)
        assert torch.equal((y == 0).any(0), zero)  # every channel cut alike
        rows, cols = zero.nonzero(as_tuple=True)
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert height * width == int(zero.sum()) and height <= 5 and width <= 5  # one rectangle
        areas.add(height * width)
    assert 25 in areas and min(areas) == 9  # full square inside, a quarter-plus at corners (3x3)
    with pytest.raises(TypeError, match="float"):
        cutout(torch.ones(2, 12, 12, dtype=torch.uint8))


def _labelled_constant_batch(batch=6, size=10):
    """Image i is the constant i + 1 and has class i: the mix of pixels must equal the mix of labels."""
    values = torch.arange(1, batch + 1, dtype=torch.float64)
    x = values.view(-1, 1, 1, 1).expand(batch, 3, size, size).clone()
    y = torch.eye(batch, dtype=torch.float64)
    return x, y, values


@pytest.mark.parametrize("mixer", [Mixup, CutMix])
def test_soft_labels_sum_to_one_and_match_the_mixed_pixels(mixer):
    x, y, values = _labelled_constant_batch()
    mix = mixer(1.0, seed=3)
    for _ in range(20):
        x_mixed, y_soft = mix(x, y)
        torch.testing.assert_close(y_soft.sum(1), torch.ones(6, dtype=torch.float64))
        assert bool((y_soft >= 0).all())
        # the pixel mass each source contributes equals its label weight
        torch.testing.assert_close(x_mixed.mean(dim=(1, 2, 3)), y_soft @ values)
        if mixer is CutMix:
            for i in range(6):
                sources = set(torch.unique(x_mixed[i]).tolist())
                assert sources <= set(values.tolist()) and len(sources) <= 2  # pasted, not blended
                share = (x_mixed[i, 0] != values[i]).double().mean()
                if len(sources) == 2:
                    torch.testing.assert_close(1 - y_soft[i, i], share)


def test_mixers_are_seeded_and_validate_inputs():
    x, y, _ = _labelled_constant_batch()
    a, b = Mixup(0.4, seed=1)(x, y), Mixup(0.4, seed=1)(x, y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="one_hot"):
        CutMix(1.0)(x, torch.arange(6))
    with pytest.raises(ValueError, match="alpha"):
        Mixup(0.0)
    with pytest.raises(ValueError, match="label rows"):
        Mixup(1.0)(x, y[:3])


def test_cutmix_box_is_a_rectangle_of_the_drawn_area():
    x = torch.zeros(2, 1, 32, 32)
    x[1] = 1.0
    y = torch.eye(2)
    mix = CutMix(1.0, seed=5)
    for _ in range(20):
        x_mixed, y_soft = mix(x, y)
        for i in range(2):
            diff = (x_mixed[i, 0] != x[i, 0])
            if diff.any():
                rows, cols = diff.nonzero(as_tuple=True)
                box = int(rows.max() - rows.min() + 1) * int(cols.max() - cols.min() + 1)
                assert box == int(diff.sum())
                assert abs(float(y_soft[i, 1 - i]) - box / 1024) < 1e-6
