"""Every augmentation knob as a config key (issue 22, item 3): Cutout size, AutoAugment policy, AugMix
settings, perturb (ColorJitter + GaussianBlur), batch_aug_prob, Manifold Mixup; each changes behaviour,
each bad value is a ConfigError naming its key."""
import numpy as np
import pytest
import torch
from conftest import small_train_config
from torchvision.transforms import v2

from augcore.config import ConfigError
from augcore.data import ImageDataset
from augcore.data.datasets import _TensorImages
from augcore.data.transforms import (STRONG_AUGMENTATIONS, CutMix, ManifoldMixup, Mixup, strong_transform,
                                     strong_transform_for, weak_transform)
from augcore.models import AllConvNet, CifarResNet, PreActResNet18, ShakeShake, SmallCNN, WideResNet, mixing_points
from augcore.train import Trainer
from augcore.train.config import AugmentConfig, load_config


def _dataset(name="cifar10", size=32, n=4, channels=3, value=None):
    gen = torch.Generator().manual_seed(0)
    if value is None:
        images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=gen)
    else:
        images = torch.full((n, channels, size, size), value, dtype=torch.uint8)
    return ImageDataset(_TensorImages(images), torch.arange(n) % 2, ["a", "b"], name=name,
                        mean=(0.5,) * channels, std=(0.25,) * channels)


def _ops(transform, kind):
    return [op for op in transform.transforms if isinstance(op, kind)]


# ---------------------------------------------------------------------------- Cutout

@pytest.mark.parametrize("name, size, hole", [
    ("cifar10", 32, 16), ("cifar100", 32, 16), ("svhn", 32, 20), ("tiny_imagenet", 64, 32),
    ("imagefolder", 224, 32), ("digits", 8, 4)])
def test_cutout_hole_has_the_papers_size_for_each_data_set(name, size, hole):
    """A white image normalises to 2, the crop's zero padding to -2; the hole is exactly 0: its largest
    area over draws (an unclipped hole) is hole x hole."""
    ds = _dataset(name, size, n=1, value=255)
    transform = strong_transform("cutout", ds)
    torch.manual_seed(0)
    areas = [int((transform(ds.image(0))[0] == 0).sum()) for _ in range(20)]
    assert max(areas) == hole * hole
    explicit = strong_transform_for(AugmentConfig(strong="cutout", cutout_size=5), ds)
    assert max(int((explicit(ds.image(0))[0] == 0).sum()) for _ in range(20)) == 25


# ---------------------------------------------------------------------------- AutoAugment, AugMix

def test_autoaugment_policy_key_chooses_the_policy():
    ds = _dataset("cifar10")
    default = _ops(strong_transform_for(AugmentConfig(strong="autoaugment"), ds), v2.AutoAugment)[0]
    chosen = _ops(strong_transform_for(AugmentConfig(strong="autoaugment", autoaugment_policy="imagenet"), ds),
                  v2.AutoAugment)[0]
    assert default.policy == v2.AutoAugmentPolicy.CIFAR10 and chosen.policy == v2.AutoAugmentPolicy.IMAGENET
    cfg = load_config(None, ["augment.autoaugment_policy=svhn"])
    assert _ops(strong_transform_for(cfg.augment, ds), v2.AutoAugment)[0].policy == v2.AutoAugmentPolicy.SVHN


def test_augmix_defaults_are_the_released_codes_and_keys_pass_through():
    ds = _dataset("imagefolder", 32)
    op = _ops(strong_transform_for(AugmentConfig(strong="augmix"), ds), v2.AugMix)[0]
    # tianyu139/data-efficient-augmentation augmix/imagenet.py aug(): mixture_width = 3, mixture_depth = -1,
    # aug_prob_coeff = 1.0, aug_severity = 1.0, aug_list = augmentations.augmentations (not _all)
    assert (op.severity, op.mixture_width, op.chain_depth, op.alpha, op.all_ops) == (1, 3, -1, 1.0, False)
    cfg = AugmentConfig(strong="augmix", augmix_severity=7, augmix_width=2, augmix_depth=2, augmix_alpha=0.5,
                        augmix_all_ops=True)
    op = _ops(strong_transform_for(cfg, ds), v2.AugMix)[0]
    assert (op.severity, op.mixture_width, op.chain_depth, op.alpha, op.all_ops) == (7, 2, 2, 0.5, True)
    image = ds.image(0)

    def draw(severity):
        transform = strong_transform_for(AugmentConfig(strong="augmix", augmix_severity=severity), ds)
        torch.manual_seed(3)
        return transform(image)

    assert not torch.equal(draw(1), draw(10))


# ---------------------------------------------------------------------------- perturb

def test_perturb_is_the_released_colour_jitter_and_gaussian_blur():
    ds = _dataset("imagefolder", 32)
    transform = strong_transform("perturb", ds)
    jitter, = _ops(transform, v2.ColorJitter)
    blur, = _ops(transform, v2.GaussianBlur)
    # released main.py --noise_only: ColorJitter(brightness=0.2), GaussianBlur(5) (torchvision's sigma (0.1, 2))
    assert list(jitter.brightness) == pytest.approx([0.8, 1.2]) and jitter.contrast is None
    assert list(blur.kernel_size) == [5, 5] and list(blur.sigma) == pytest.approx([0.1, 2.0])
    assert "perturb" in STRONG_AUGMENTATIONS


def test_perturb_blurs_the_weak_crop_as_torchvision_does():
    """Brightness 0 and sigma 2 exactly: the output is the weak crop/flip (same seed) blurred with a
    5 x 5 Gaussian of sigma 2 on the uint8 image, then normalised."""
    ds = _dataset("cifar10")
    image = ds.image(1)
    perturb = strong_transform("perturb", ds, perturb_brightness=0.0, perturb_blur_kernel=5,
                               perturb_blur_sigma=[2.0, 2.0])
    weak = weak_transform(ds)
    mean = torch.tensor(ds.mean, dtype=torch.float64).view(-1, 1, 1)
    std = torch.tensor(ds.std, dtype=torch.float64).view(-1, 1, 1)
    for seed in range(5):
        torch.manual_seed(seed)
        got = perturb(image)
        torch.manual_seed(seed)
        cropped = torch.round((weak(image).double() * std + mean) * 255).to(torch.uint8)
        blurred = v2.functional.gaussian_blur(cropped, [5, 5], [2.0, 2.0])
        expected = (blurred.double() / 255 - mean) / std
        torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-5)
        assert not torch.equal(cropped, blurred)


# ---------------------------------------------------------------------------- batch_aug_prob

def _batch(n=8, classes=4, size=8):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, size, size, generator=gen)
    return x, torch.nn.functional.one_hot(torch.arange(n) % classes, classes).float()


@pytest.mark.parametrize("mixer", [Mixup, CutMix])
def test_batch_aug_prob_zero_leaves_batches_and_half_mixes_about_half(mixer):
    # at 32 px a CutMix box is empty (the batch unchanged) only for lam > 0.996: 0.4% of draws
    x, y = _batch(size=32)
    never = mixer(1.0, seed=0, prob=0.0)
    assert all(torch.equal(never(x, y)[0], x) for _ in range(50))
    half = mixer(1.0, seed=0, prob=0.5)
    mixed = sum(not torch.equal(half(x, y)[1], y) for _ in range(400))
    assert abs(mixed - 200) < 4 * 10  # Binomial(400, 0.5): std 10
    always = mixer(1.0, seed=0)
    assert sum(not torch.equal(always(x, y)[1], y) for _ in range(50)) >= 49


def test_batch_aug_prob_defaults_to_the_papers_per_kind(small_digits):
    train, test = small_digits

    def prob(batch_aug, **augment):
        cfg = small_train_config(augment={"batch_aug": batch_aug, **augment})
        return Trainer(cfg, train_set=train, test_set=test)._batch_mix(0).prob

    assert prob("cutmix") == 0.5     # Yun et al.; the refinement paper, Experiments
    assert prob("mixup") == 1.0 and prob("manifold_mixup") == 1.0
    assert prob("cutmix", batch_aug_prob=1.0) == 1.0 and prob("mixup", batch_aug_prob=0.25) == 0.25


# ---------------------------------------------------------------------------- Manifold Mixup

def _manual_forward(model, x, point, lam, perm):
    """The model's forward written out, mixing at ``point`` (0: the input)."""
    def mix(h):
        return lam * h + (1 - lam) * h[perm]

    if point == 0:
        x = mix(x)
    if isinstance(model, SmallCNN):
        h = x
        for i, layer in enumerate(model.features):
            h = layer(h)
            if point and f"features.{i}" == mixing_points(model)[point - 1]:
                h = mix(h)
        return model.fc(h)
    h = torch.relu(model.bn1(model.conv1(x)))
    for k, stage in enumerate((model.layer1, model.layer2, model.layer3), 1):
        h = stage(h)
        if point == k:
            h = mix(h)
    return model.linear(torch.nn.functional.adaptive_avg_pool2d(h, 1).flatten(1))


@pytest.mark.parametrize("model_cls", [SmallCNN, CifarResNet])
def test_manifold_mixup_mixes_at_the_drawn_point_as_a_manual_forward(model_cls):
    torch.manual_seed(0)
    model = (SmallCNN(4, 3) if model_cls is SmallCNN else CifarResNet(20, 4, 3)).double()
    x, y = _batch()
    x = x.double()
    for point in range(len(mixing_points(model)) + 1):
        mix = ManifoldMixup(model, 0.7, seed=11, layers=[point])
        rng = np.random.default_rng(11)   # the documented draws: lam, then perm, then the point
        lam, perm = rng.beta(0.7, 0.7), torch.from_numpy(rng.permutation(8))
        x_in, y_mixed = mix(x, y.double())
        assert mix.last_layer == point
        with mix.forward_context():
            logits, _ = model(x_in)
        logits_plain, _ = model(x)   # the hook is gone
        expected = _manual_forward(model, x, point, lam, perm)
        torch.testing.assert_close(logits, expected, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(y_mixed, lam * y.double() + (1 - lam) * y.double()[perm])
        torch.testing.assert_close(logits_plain, _manual_forward(model, x, point, 1.0, perm))


def test_manifold_mixup_draws_points_uniformly_from_verma_et_al_layers():
    model = SmallCNN(4, 3)
    mix = ManifoldMixup(model, 1.0, seed=0)
    x, y = _batch()
    counts = np.bincount([mix(x, y) and mix.last_layer for _ in range(600)], minlength=4)
    assert counts[3] == 0 and all(abs(c - 200) < 4 * 11.6 for c in counts[:3])  # layers (0, 1, 2)


@pytest.mark.parametrize("build", [lambda: PreActResNet18(4, 3), lambda: CifarResNet(20, 4, 3),
                                   lambda: WideResNet(10, 1, 4, 3), lambda: ShakeShake(8, 4, 4, 3),
                                   lambda: SmallCNN(4, 3)], ids=["preact", "cifar_resnet", "wrn", "shake", "small"])
def test_every_declared_mixing_point_changes_the_output_and_trains(build):
    torch.manual_seed(0)
    model = build().eval()   # eval: shake-shake and BatchNorm deterministic
    x, y = _batch()
    plain = model(x)[0]
    for point in range(1, len(mixing_points(model)) + 1):
        mix = ManifoldMixup(model, 1.0, seed=point, layers=[point])
        x_in, y_mixed = mix(x, y)
        assert torch.equal(x_in, x)
        with mix.forward_context():
            logits = model(x_in)[0]
        assert not torch.allclose(logits, plain)
        loss = -(y_mixed * torch.log_softmax(logits, 1)).sum(1).mean()
        loss.backward()
    assert torch.equal(model(x)[0], plain)


def test_manifold_mixup_config_errors_name_the_key(small_digits):
    with pytest.raises(ValueError, match="declares no mixing points"):
        mixing_points(AllConvNet(4, 3))
    train, test = small_digits
    cfg = small_train_config(augment={"batch_aug": "manifold_mixup"}, model={"name": "allconv"})
    with pytest.raises(ConfigError, match=r"augment\.batch_aug.*no mixing points"):
        Trainer(cfg, train_set=train, test_set=test)
    cfg = small_train_config(augment={"batch_aug": "manifold_mixup", "manifold_mixup_layers": [0, 4]})
    with pytest.raises(ConfigError, match="manifold_mixup_layers"):
        Trainer(cfg, train_set=train, test_set=test)


def test_manifold_mixup_trains_through_the_config(small_digits):
    train, test = small_digits
    cfg = small_train_config(augment={"batch_aug": "manifold_mixup", "manifold_mixup_layers": [1, 2, 3]},
                             schedule={"epochs": 1, "milestones": []})
    row = Trainer(cfg, train_set=train, test_set=test).fit().rows[0]
    assert np.isfinite(row["train_loss"]) and row["train_examples"] > len(train)


# ---------------------------------------------------------------------------- config errors

@pytest.mark.parametrize("override, key", [
    ("augment.batch_aug_prob=1.5", "augment.batch_aug_prob"),
    ("augment.batch_aug_prob=0.5", "augment.batch_aug_prob"),       # no batch_aug to apply it to
    ("augment.manifold_mixup_layers=[0, 1]", "augment.manifold_mixup_layers"),
    ("augment.autoaugment_policy=cifar100", "augment.autoaugment_policy"),
    ("augment.cutout_size=0", "augment.cutout_size"),
    ("augment.cutout_size=1.5", "augment.cutout_size"),
    ("augment.augmix_severity=11", "augment.augmix_severity"),
    ("augment.augmix_width=0", "augment.augmix_width"),
    ("augment.augmix_depth=0", "augment.augmix_depth"),
    ("augment.augmix_alpha=0", "augment.augmix_alpha"),
    ("augment.augmix_all_ops=maybe", "augment.augmix_all_ops"),
    ("augment.perturb_brightness=-0.1", "augment.perturb_brightness"),
    ("augment.perturb_blur_kernel=4", "augment.perturb_blur_kernel"),
    ("augment.perturb_blur_sigma=[2.0, 1.0]", "augment.perturb_blur_sigma"),
    ("augment.perturb_blur_sigma=[0.5]", "augment.perturb_blur_sigma"),
    ("augment.noise_sigma=-1", "augment.noise_sigma"),
    ("augment.batch_aug=manifold", "augment.batch_aug"),
])
def test_bad_knob_values_raise_config_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_strong_transform_rejects_bad_keywords_by_name():
    ds = _dataset()
    for kwargs, name in [({"augmix_depth": 0}, "augmix_depth"), ({"perturb_blur_kernel": 2}, "perturb_blur_kernel"),
                         ({"perturb_blur_sigma": [0, 1]}, "perturb_blur_sigma"),
                         ({"autoaugment_policy": "mnist"}, "autoaugment_policy")]:
        with pytest.raises(ValueError, match=name):
            strong_transform("augmix", ds, **kwargs)


def test_joined_strong_augmentations_pass_config_validation_and_bad_parts_name_the_key():
    from augcore.train.config import ConfigError, config_from_dict

    assert config_from_dict({"augment": {"strong": "autoaugment+cutout"}}).augment.strong == "autoaugment+cutout"
    for bad, problem in (("autoaugment+cutuot", "cutuot"), ("wu2020+cutout", "cannot be joined")):
        with pytest.raises(ConfigError, match=f"augment.strong.*{problem}"):
            config_from_dict({"augment": {"strong": bad}})
