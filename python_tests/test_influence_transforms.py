"""Differentiable transforms (gradcheck, identity), the estimator E, its training, and the toy experiment."""
import json

import pytest
import torch

from augcore.influence import (ImageAugmenter, LastLayerInfluence, TranslationAugmenter, affine_warp,
                               colour_transform, flow_warp, run_toy_experiment, train_augmenter)


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny problems on a shared 2-core machine
    yield
    torch.set_num_threads(threads)


def images(batch=2, channels=3, size=6, seed=0):
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64)


def test_identity_parameters_give_the_identity_image():
    x = images(size=9)
    zeros = torch.zeros(2, 2, 9, 9, dtype=torch.float64)
    torch.testing.assert_close(flow_warp(x, zeros, zeros, smoothing=3), x, rtol=0, atol=1e-12)
    identity = torch.eye(2, 3, dtype=torch.float64).expand(2, 2, 3)
    torch.testing.assert_close(affine_warp(x, identity), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(colour_transform(x, torch.zeros(2, 3, 3, dtype=torch.float64),
                                                torch.zeros(2, 3, dtype=torch.float64)), x, rtol=0, atol=0)


def test_transforms_pass_gradcheck():
    g = torch.Generator().manual_seed(1)
    x = images().requires_grad_(True)
    # Off-grid parameters: bilinear sampling is not differentiable exactly at pixel centres.
    scale = (0.05 * torch.randn(2, 2, 6, 6, generator=g, dtype=torch.float64)).requires_grad_(True)
    shift = (0.07 + 0.05 * torch.randn(2, 2, 6, 6, generator=g, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, c: flow_warp(a, b, c, smoothing=3), (x, scale, shift))
    theta = (torch.eye(2, 3, dtype=torch.float64) + 0.05 * torch.randn(2, 2, 3, generator=g, dtype=torch.float64))
    assert torch.autograd.gradcheck(affine_warp, (x, theta.requires_grad_(True)))
    mix = (0.1 * torch.randn(2, 3, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    bias = (0.1 * torch.randn(2, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(colour_transform, (x, mix, bias))


def test_flow_shift_translates_the_image():
    x = images(batch=1, channels=1, size=8)
    step = 2.0 / 7  # one pixel in normalised coordinates (align_corners=True)
    shift = torch.zeros(1, 2, 8, 8, dtype=torch.float64)
    shift[:, 0] = step  # sample one pixel to the right: content moves left by one
    moved = flow_warp(x, torch.zeros_like(shift), shift, smoothing=3)
    torch.testing.assert_close(moved[..., :-1], x[..., 1:], rtol=0, atol=1e-12)


@pytest.mark.parametrize("spatial", ["flow", "affine", None])
def test_image_augmenter_starts_at_identity_stays_bounded_and_is_differentiable(spatial):
    torch.manual_seed(0)
    augmenter = ImageAugmenter(3, 8, 8, spatial=spatial, appearance=True, max_spatial=0.1, max_colour=0.2).double()
    x = images(batch=4, size=8)
    out, params = augmenter(x)
    torch.testing.assert_close(out, x, rtol=0, atol=1e-12)
    assert augmenter.latent(x).shape == (4, 128) and float(augmenter.latent(x).abs().max()) < 1
    for head in augmenter.heads.values():  # push every head far off the identity
        torch.nn.init.normal_(head.weight, std=10.0)
    out, params = augmenter(x)
    assert not torch.allclose(out, x)
    for name, value in params.items():
        bound = 0.2 if name.startswith("colour") else 0.1
        assert float(value.abs().max()) <= bound + 1e-12, name
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in augmenter.parameters())


def test_translation_augmenter_is_radially_bounded():
    augmenter = TranslationAugmenter(2, max_shift=0.5).double()
    x = torch.randn(50, 2, dtype=torch.float64)
    torch.testing.assert_close(augmenter(x)[0], x)
    torch.nn.init.normal_(augmenter.heads["shift"].weight, std=100.0)
    shift = augmenter(x)[1]["shift"]
    assert float(shift.norm(dim=1).max()) < 0.5 and float(shift.norm(dim=1).max()) > 0.4


class LinearModel(torch.nn.Module):
    """Embedding = input; one linear classifier (convex last layer)."""

    def __init__(self, weight, bias):
        super().__init__()
        self.classifier = torch.nn.Linear(weight.shape[1], weight.shape[0]).double()
        with torch.no_grad():
            self.classifier.weight.copy_(weight)
            self.classifier.bias.copy_(bias)

    def forward(self, x):
        return self.classifier(x), x


def test_training_e_lowers_the_predicted_validation_loss(tmp_path):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 4, generator=g, dtype=torch.float64)
    y = torch.randint(3, (64,), generator=g)
    model = LinearModel(torch.randn(3, 4, generator=g, dtype=torch.float64),
                        torch.randn(3, generator=g, dtype=torch.float64))
    with torch.no_grad():
        logits, emb = model(x)
    val_x = torch.randn(30, 4, generator=g, dtype=torch.float64)
    influence = LastLayerInfluence(model.classifier.weight, model.classifier.bias, emb, logits, damping=0.1)
    influence.fit(val_x, torch.randint(3, (30,), generator=g), reduction="mean")
    torch.manual_seed(0)
    augmenter = TranslationAugmenter(4, max_shift=0.5).double()
    log = tmp_path / "e.jsonl"
    records = train_augmenter(augmenter, model, influence, x, y, epochs=15, batch_size=16, lr=1e-2,
                              regularisation=0.1, log_path=log, progress=False)
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == list(range(15))
    with torch.no_grad():
        moved = augmenter(x)[0]
        achieved = influence.augmentation(x, moved, y).mean()
    assert float(achieved) < 0 and records[-1]["influence"] < records[0]["influence"]
    assert all(p.requires_grad for p in model.parameters()) and model.classifier.weight.grad is None


class TinyCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
        self.classifier = torch.nn.Linear(24, 3)

    def forward(self, x):
        h = self.features(x)
        return self.classifier(h), h


@pytest.mark.parametrize("spatial", ["flow", "affine"])
def test_image_augmenter_learns_to_lower_predicted_validation_loss(spatial):
    torch.manual_seed(0)
    model = TinyCNN()
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(48, 3, 8, 8, generator=g), torch.randint(3, (48,), generator=g)
    val_x, val_y = torch.rand(24, 3, 8, 8, generator=g), torch.randint(3, (24,), generator=g)
    with torch.no_grad():
        logits, emb = model(x)
        val_logits, val_emb = model(val_x)
    influence = LastLayerInfluence(model.classifier.weight, model.classifier.bias, emb, logits, damping=0.1)
    influence.fit(val_emb, val_y, val_logits, reduction="mean")
    augmenter = ImageAugmenter(3, 8, 8, spatial=spatial, max_spatial=0.2, max_colour=0.3)
    records = train_augmenter(augmenter, model, influence, x, y, epochs=30, batch_size=16, lr=3e-3,
                              regularisation=0.01, progress=False)
    with torch.no_grad():
        augmented, params = augmenter(x)
        achieved = influence.augmentation(emb, model(augmented)[1], y, logits, model(augmented)[0]).mean()
    assert float(achieved) < 0 and records[-1]["influence"] < records[0]["influence"]
    assert max(float(p.abs().max()) for p in params.values()) <= 0.3


def test_toy_translations_point_toward_misclassified_validation_points(tmp_path):
    results = [run_toy_experiment(seed, plot_path=tmp_path / f"toy{seed}.png" if seed == 0 else None)
               for seed in range(3)]
    pooled = sum(r.fraction_toward * r.num_considered for r in results) / sum(r.num_considered for r in results)
    assert pooled > 0.5
    assert all(r.num_misclassified_val > 0 and r.predicted_influence_end < 0 for r in results)
    assert (tmp_path / "toy0.png").stat().st_size > 10_000
    again = run_toy_experiment(0)
    assert again.fraction_toward == results[0].fraction_toward  # seeded


def test_clear_errors():
    with pytest.raises(ValueError, match="spatial"):
        ImageAugmenter(3, 8, 8, spatial="elastic")
    with pytest.raises(ValueError, match="expected \\(B, 3, 8, 8\\)"):
        ImageAugmenter(3, 8, 8)(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="odd"):
        flow_warp(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), smoothing=2)
    with pytest.raises(ValueError, match="theta"):
        affine_warp(torch.zeros(2, 1, 4, 4), torch.zeros(1, 2, 3))


def test_augmenters_keep_nn_module_apply():
    """``module.apply(fn)`` (weight init over a model holding an augmenter) must still work."""
    import torch
    from augcore.influence.transforms import ImageAugmenter, TranslationAugmenter
    seen = []
    for augmenter in (ImageAugmenter(1, 8, 8), TranslationAugmenter(4)):
        torch.nn.Sequential(augmenter).apply(lambda m: seen.append(type(m).__name__))
    assert "ImageAugmenter" in seen and "TranslationAugmenter" in seen
