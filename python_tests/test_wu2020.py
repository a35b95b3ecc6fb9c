"""Wu et al. 2020's strong augmentation (augcore.data.wu2020) against dauphin's released code.

The ops are compared with the PIL calls dauphin makes (``dauphin/image/transforms/*.py``), the
recipe with ``augment_policy.py``'s ``uncertainty_sampling`` list, Cutout with dauphin's
numpy + ImageDraw code, and Mixup with its label/image arithmetic.
"""
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from augcore.data import ImageDataset
from augcore.data.datasets import _TensorImages
from augcore.data.transforms import strong_transform
from augcore.data.wu2020 import OPS, Op, Wu2020Augment, _APPLY

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def _dataset(n=8, size=32, name="cifar10", images=None, targets=None):
    if images is None:
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
    targets = torch.arange(len(images)) % 2 if targets is None else targets
    return ImageDataset(_TensorImages(images), targets, ["a", "b"], name=name, mean=MEAN, std=STD)


def _pil(img):
    return Image.fromarray(img.permute(1, 2, 0).numpy())


def _tensor(pil):
    return torch.from_numpy(np.array(pil)).permute(2, 0, 1)


def _positive_sign_generator():
    """A generator whose first draw keeps the op's sign (dauphin negates when random() > 0.5)."""
    seed = next(s for s in range(100) if float(torch.rand((), generator=torch.Generator().manual_seed(s))) <= 0.5)
    return torch.Generator().manual_seed(seed)


# dauphin's PIL calls, with its value ranges (categorize_value: low + level * (high - low))
DAUPHIN = {
    "AutoContrast": lambda p, l: ImageOps.autocontrast(p),
    "Brightness": lambda p, l: ImageEnhance.Brightness(p).enhance(0.1 + 1.8 * l),
    "Color": lambda p, l: ImageEnhance.Color(p).enhance(0.1 + 1.8 * l),
    "Contrast": lambda p, l: ImageEnhance.Contrast(p).enhance(0.1 + 1.8 * l),
    "Equalize": lambda p, l: ImageOps.equalize(p),
    "Invert": lambda p, l: ImageOps.invert(p),
    "Posterize": lambda p, l: ImageOps.posterize(p, int(4 * l)),
    "Sharpness": lambda p, l: ImageEnhance.Sharpness(p).enhance(0.1 + 1.8 * l),
    "Solarize": lambda p, l: ImageOps.solarize(p, 256 * l),
    "Rotate": lambda p, l: p.rotate(30 * l),
    "ShearX": lambda p, l: p.transform(p.size, Image.AFFINE, (1, 0.3 * l, 0, 0, 1, 0)),
    "ShearY": lambda p, l: p.transform(p.size, Image.AFFINE, (1, 0, 0, 0.3 * l, 1, 0)),
    "TranslateX": lambda p, l: p.transform(p.size, Image.AFFINE, (1, 0, 10 * l, 0, 1, 0)),
    "TranslateY": lambda p, l: p.transform(p.size, Image.AFFINE, (1, 0, 0, 0, 1, 10 * l)),
}
# torchvision's tensor ports round blends differently from PIL by at most one grey level
ROUNDING = {"AutoContrast", "Color", "Contrast"}


def test_the_sixteen_ops_of_the_released_policy():
    assert len(OPS) == 16
    assert set(OPS) == set(DAUPHIN) | {"Cutout", "Mixup"}


@pytest.mark.parametrize("name", sorted(DAUPHIN))
@pytest.mark.parametrize("level", [0.3, 0.571, 1.0])
def test_each_op_matches_dauphins_pil_call(name, level):
    img = _dataset().image(1)
    aug = Wu2020Augment(_dataset())
    ours = _APPLY[name](aug, img, level, _positive_sign_generator())
    theirs = _tensor(DAUPHIN[name](_pil(img), level))
    diff = (ours.int() - theirs.int()).abs()
    assert int(diff.max()) <= (1 if name in ROUNDING else 0), name


def test_posterize_level_below_a_quarter_keeps_no_bits():
    # int(4 * level) = 0: Pillow of dauphin's time masked every bit (a black image)
    aug = Wu2020Augment(_dataset())
    assert int(_APPLY["Posterize"](aug, _dataset().image(0), 0.2, None).max()) == 0


def test_recipe_follows_uncertainty_sampling():
    aug = Wu2020Augment(_dataset())
    gen = torch.Generator().manual_seed(0)
    seen, repeats = set(), 0
    for _ in range(400):
        recipe = aug.draw_recipe(gen)
        assert [op.name for op in recipe[2:]] == ["RandomCrop", "HorizontalFlip", "Cutout", "Mixup"]
        assert recipe[2].prob == 1.0 and recipe[3].prob == 0.5 and recipe[4].prob == 1.0   # P1, P0.5, P1
        for op in recipe[:2] + [recipe[4]]:
            assert 0 <= op.level <= 1 and abs(op.level * 1000 - round(op.level * 1000)) < 1e-9   # 3 decimals
        assert 0 <= recipe[5].prob <= 1                                                      # Mixup_A1: random P
        seen.update(op.name for op in recipe[:2])
        repeats += recipe[0].name == recipe[1].name
    assert seen == set(OPS)
    assert repeats > 0   # random.choices draws with replacement


def test_no_flip_for_digits():
    svhn = Wu2020Augment(_dataset(name="svhn"))
    assert svhn.draw_recipe(torch.Generator().manual_seed(0))[3].prob == 0.0


def test_cutout_matches_dauphins_numpy_and_imagedraw_code():
    ds = _dataset()
    aug = Wu2020Augment(ds)
    color = tuple(round(m * 255) for m in MEAN)
    for seed in range(20):
        level = 0.05 * seed
        gen = torch.Generator().manual_seed(seed)
        draws = torch.rand(2, generator=torch.Generator().manual_seed(seed))
        ours = aug._cutout(ds.image(0), level, gen)
        # dauphin/image/transforms/cutout.py with np.random.uniform(width) = width + (1 - width) * u
        pil = _pil(ds.image(0)).copy()
        degree = int(level * 16)
        x0 = 32 + (1 - 32) * float(draws[0])
        y0 = 32 + (1 - 32) * float(draws[1])
        x0, y0 = int(max(0, x0 - degree / 2.0)), int(max(0, y0 - degree / 2.0))
        ImageDraw.Draw(pil).rectangle((x0, y0, min(32, x0 + degree), min(32, y0 + degree)), color)
        assert torch.equal(ours, _tensor(pil)), seed


def test_mixup_mixes_images_and_labels_as_released():
    # class 0 images are all 200, class 1 all 50: the mixed pixel and label both reveal lam
    images = torch.cat([torch.full((4, 3, 32, 32), 200, dtype=torch.uint8), torch.full((4, 3, 32, 32), 50,
                                                                                      dtype=torch.uint8)])
    ds = _dataset(images=images, targets=torch.tensor([0] * 4 + [1] * 4))
    aug = Wu2020Augment(ds)
    gen = torch.Generator().manual_seed(3)
    mixed_any = False
    for _ in range(30):
        image, label = aug.apply([Op("Mixup", 1.0, 0.0)], ds.image(0), torch.tensor([1.0, 0.0]), gen)
        lam = float(label[0])
        assert label.sum().item() == pytest.approx(1.0)
        partner = 200 if lam == 1.0 else (50 if label[1] > 0 else 200)
        expected = int((lam * 200 / 255 + (1 - lam) * partner / 255) * 255)   # ToPILImage truncates
        assert abs(int(image[0, 0, 0]) - expected) <= 1 and bool((image == image[0, 0, 0]).all())
        mixed_any |= 0 < lam < 1 and label[1] > 0
    assert mixed_any


def test_mixup_partner_goes_through_the_earlier_steps():
    # Invert with probability 1 before Mixup: a mixed-in partner is inverted too (dauphin's prev_transforms)
    images = torch.full((2, 3, 32, 32), 0, dtype=torch.uint8)
    ds = _dataset(images=images, targets=torch.tensor([0, 1]))
    aug = Wu2020Augment(ds)
    gen = torch.Generator().manual_seed(0)
    image, label = aug.apply([Op("Invert", 1.0, 0.0), Op("Mixup", 1.0, 0.0)], ds.image(0), torch.tensor([1., 0.]),
                             gen)
    assert int(image.min()) >= 254   # both the image and its partner were inverted from 0 to 255


def test_candidates_are_reproducible_normalised_with_soft_labels():
    ds = _dataset()
    aug = Wu2020Augment(ds)
    x1, y1 = aug.candidates([0, 3, 5], 4, torch.Generator().manual_seed(7))
    x2, y2 = aug.candidates([0, 3, 5], 4, torch.Generator().manual_seed(7))
    assert x1.shape == (12, 3, 32, 32) and y1.shape == (12, 2)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert torch.allclose(y1.sum(1), torch.ones(12)) and bool((y1 >= 0).all())
    low = (0 - torch.tensor(MEAN).view(-1, 1, 1)) / torch.tensor(STD).view(-1, 1, 1)
    high = (1 - torch.tensor(MEAN).view(-1, 1, 1)) / torch.tensor(STD).view(-1, 1, 1)
    assert bool((x1 >= low - 1e-5).all()) and bool((x1 <= high + 1e-5).all())
    assert not torch.equal(x1[0], x1[1])   # each candidate has its own recipe


def test_strong_transform_registration():
    ds = _dataset()
    transform = strong_transform("wu2020", ds)
    assert isinstance(transform, Wu2020Augment)
    assert transform(ds.image(0)).shape == (3, 32, 32)
    with pytest.raises(ValueError, match="wu2020"):
        strong_transform("wu2020+cutout", ds)
    with pytest.raises(TypeError, match="uint8"):
        transform(ds.image(0).float())


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="num_comp"):
        Wu2020Augment(_dataset(), num_comp=0)
    with pytest.raises(ValueError, match="mixup_alpha"):
        Wu2020Augment(_dataset(), mixup_alpha=0.0)
    with pytest.raises(TypeError, match="ImageDataset"):
        Wu2020Augment(torch.zeros(3))
