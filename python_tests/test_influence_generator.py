"""The paper's G, critics and WGAN-GP losses against brute-force float64 references; pre-training resume; G files."""
import pytest
import torch
import torch.nn.functional as F

from augcore.checks import CorruptFileError
from augcore.influence.generator import (Critic, Estimator, GeneratorAugmenter, PretrainSettings, TransformGenerator,
                                         critic_loss, generator_loss, gradient_penalty, inverse_mse, load_generator,
                                         pretrain_generator, random_affine_displacement, save_generator)
from augcore.influence.transforms import colour_transform, flow_displacement


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def toy_critic():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1),
                               torch.nn.Flatten(0)).double()


def finite_difference_gradient(f, x, eps=1e-6):
    grad = torch.zeros_like(x)
    flat = grad.view(-1)
    for k in range(x.numel()):
        step = torch.zeros_like(x).view(-1)
        step[k] = eps
        step = step.view_as(x)
        flat[k] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


def reference_penalty(critic, real, fake, alpha):
    """Each example's input gradient by central differences, one example at a time."""
    terms = []
    for i in range(real.shape[0]):
        mixed = alpha[i] * real[i:i + 1] + (1 - alpha[i]) * fake[i:i + 1]
        with torch.no_grad():
            grad = finite_difference_gradient(lambda z: critic(z).sum(), mixed)
        terms.append((grad.norm() - 1) ** 2)
    return torch.stack(terms).mean()


def toy_batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    fake = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    return real, fake, torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)


def test_gradient_penalty_matches_finite_differences_per_example():
    critic = toy_critic()
    real, fake, alpha = toy_batch()
    ours = gradient_penalty(critic, real, fake, alpha=alpha)
    torch.testing.assert_close(ours, reference_penalty(critic, real, fake, alpha), rtol=1e-7, atol=1e-9)
    # App. A's convolutional critic, against an independent per-example autograd loop
    torch.manual_seed(0)
    conv = Critic(1, 8, 8).double()
    real8 = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    fake8 = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    alpha8 = torch.rand(4, dtype=torch.float64)
    terms = []
    for i in range(4):
        x = (alpha8[i] * real8[i:i + 1] + (1 - alpha8[i]) * fake8[i:i + 1]).requires_grad_(True)
        grad, = torch.autograd.grad(conv(x).sum(), x)
        terms.append((grad.norm() - 1) ** 2)
    torch.testing.assert_close(gradient_penalty(conv, real8, fake8, alpha=alpha8), torch.stack(terms).mean())


def test_critic_loss_and_its_parameter_gradient_match_brute_force():
    critic = toy_critic()
    real, fake, alpha = toy_batch(2)
    loss, parts = critic_loss(critic, real, fake, gp_weight=10.0, alpha=alpha)
    with torch.no_grad():
        distance = critic(real).mean() - critic(fake).mean()
    reference = -distance + 10.0 * reference_penalty(critic, real, fake, alpha)
    torch.testing.assert_close(loss.detach(), reference, rtol=1e-7, atol=1e-9)
    assert parts["wasserstein"] == pytest.approx(float(distance))
    # the penalty's dependence on the critic's weights reaches their gradient (create_graph)
    weight = critic[1].weight
    grad, = torch.autograd.grad(loss, weight)

    def loss_at(w):
        with torch.no_grad():
            weight.copy_(w)
        value = critic_loss(critic, real, fake, gp_weight=10.0, alpha=alpha)[0].detach()
        return value
    original = weight.detach().clone()
    fd = finite_difference_gradient(loss_at, original, eps=1e-5)
    with torch.no_grad():
        weight.copy_(original)
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-7)


def test_generator_loss_and_inverse_mse_against_direct_formulas():
    critic = toy_critic()
    real, fake, _ = toy_batch(3)
    fake.requires_grad_(True)
    loss = generator_loss(critic, fake)
    torch.testing.assert_close(loss, -critic(fake).mean())
    grad, = torch.autograd.grad(loss, fake)
    fd = finite_difference_gradient(lambda z: generator_loss(critic, z).detach(), fake.detach())
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-9)
    expected = sum(1.0 / (((real[i] - fake[i]) ** 2).mean() + 1e-3) for i in range(3)) / 3
    torch.testing.assert_close(inverse_mse(real, fake.detach()), expected.detach())


def test_generator_has_the_paper_output_maps_and_zero_maps_are_the_identity():
    assert TransformGenerator(1, 28, 28).decode[-1].out_channels == 8      # App. A, MNIST
    assert TransformGenerator(3, 32, 32).decode[-1].out_channels == 18     # App. A, CIFAR-10
    e = Estimator(1, 28, 28)
    convs = [m for m in e.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.stride[0], c.kernel_size[0]) for c in convs] == [(16, 1, 4), (32, 2, 4), (64, 2, 4)]
    assert e.to_latent.in_features == 3136 and e.to_latent.out_features == 128
    g = TransformGenerator(3, 8, 8).double()
    torch.nn.init.zeros_(g.decode[-1].weight)
    torch.nn.init.zeros_(g.decode[-1].bias)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    out, maps = g(x, torch.rand(2, 128, dtype=torch.float64))
    torch.testing.assert_close(out, x)


def test_full_flow_and_per_pixel_colour_match_references():
    m = torch.tensor([[0.1, -0.2], [0.05, 0.15]], dtype=torch.float64)
    t = torch.tensor([0.1, -0.05], dtype=torch.float64)
    scale = m.reshape(1, 4, 1, 1).expand(1, 4, 5, 6)
    shift = t.reshape(1, 2, 1, 1).expand(1, 2, 5, 6)
    theta = torch.cat([torch.eye(2, dtype=torch.float64) + m, t[:, None]], 1)[None]
    grid = F.affine_grid(theta, [1, 1, 5, 6], align_corners=True)
    identity = F.affine_grid(torch.eye(2, 3, dtype=torch.float64)[None], [1, 1, 5, 6], align_corners=True)
    torch.testing.assert_close(flow_displacement(scale, shift, smoothing=1), (grid - identity).permute(0, 3, 1, 2))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64)
    mix = torch.rand(2, 3, 3, 4, 4, generator=g, dtype=torch.float64)
    bias = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64)
    expected = x.clone()
    for b in range(2):
        for i in range(4):
            for j in range(4):
                expected[b, :, i, j] += mix[b, :, :, i, j] @ x[b, :, i, j] + bias[b, :, i, j]
    torch.testing.assert_close(colour_transform(x, mix, bias), expected)


def test_random_affine_flows_are_affine_and_in_range():
    d = random_affine_displacement(16, 7, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # an affine field has zero second differences along both axes
    assert float((d[:, :, :, 2:] - 2 * d[:, :, :, 1:-1] + d[:, :, :, :-2]).abs().max()) < 1e-12
    assert float((d[:, :, 2:] - 2 * d[:, :, 1:-1] + d[:, :, :-2]).abs().max()) < 1e-12
    assert float(d.std()) > 0.01 and float(d.abs().max()) < 0.8
    from augcore.influence.generator import AffineRanges
    zero = random_affine_displacement(2, 5, 5, ranges=AffineRanges(0.0, (1.0, 1.0), 0.0, 0.0))
    assert float(zero.abs().max()) < 1e-6


def test_generator_file_round_trip_and_corruption(tmp_path):
    g = TransformGenerator(1, 8, 8, smoothing=1)
    path = tmp_path / "g.pt"
    save_generator(g, path)
    loaded = load_generator(path)
    x, tau = torch.rand(2, 1, 8, 8), torch.rand(2, 128)
    assert torch.equal(loaded(x, tau)[0], g(x, tau)[0]) and loaded.smoothing == 1
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="g.pt"):
        load_generator(path)
    from augcore.io import atomic_torch_save
    atomic_torch_save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CorruptFileError, match="not an augcore transformation generator"):
        load_generator(tmp_path / "other.pt")


def test_pretraining_resumes_exactly_and_checks_settings(tmp_path):
    images = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    settings = PretrainSettings(steps=4, batch_size=8, critic_steps=2)
    full = pretrain_generator(images, settings, checkpoint=tmp_path / "full.pt", checkpoint_every=2, progress=False)
    cut = pretrain_generator(images, settings, checkpoint=tmp_path / "cut.pt", checkpoint_every=1, stop_after=2,
                             progress=False)
    assert len(cut.records) == 2
    resumed = pretrain_generator(images, settings, checkpoint=tmp_path / "cut.pt", checkpoint_every=1,
                                 progress=False)
    assert resumed.resumed_from == 2 and resumed.records == full.records
    for k, v in full.generator.state_dict().items():
        assert torch.equal(resumed.generator.state_dict()[k], v), k
    with pytest.raises(ValueError, match="gp_weight"):
        pretrain_generator(images, PretrainSettings(steps=4, batch_size=8, critic_steps=2, gp_weight=1.0),
                           checkpoint=tmp_path / "cut.pt", progress=False)


def test_estimator_learns_through_the_frozen_generator():
    from augcore.influence import LastLayerInfluence, train_augmenter
    torch.manual_seed(0)
    model = torch.nn.Sequential()

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU(),
                                                torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
            self.classifier = torch.nn.Linear(24, 3)

        def forward(self, x):
            h = self.features(x)
            return self.classifier(h), h
    model = Tiny()
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(48, 1, 8, 8, generator=g), torch.randint(3, (48,), generator=g)
    val_x, val_y = torch.rand(24, 1, 8, 8, generator=g), torch.randint(3, (24,), generator=g)
    with torch.no_grad():
        logits, emb = model(x)
        val_logits, val_emb = model(val_x)
    influence = LastLayerInfluence(model.classifier.weight, model.classifier.bias, emb, logits, damping=0.1)
    influence.fit(val_emb, val_y, val_logits, reduction="mean")
    augmenter = GeneratorAugmenter(TransformGenerator(1, 8, 8))
    frozen = {k: v.clone() for k, v in augmenter.generator.state_dict().items()}
    with pytest.raises(ValueError, match="regulariser"):
        train_augmenter(augmenter, model, influence, x, y, epochs=1, progress=False)
    records = train_augmenter(augmenter, model, influence, x, y, epochs=20, batch_size=16, lr=0.01,
                              betas=(0.9, 0.99), regularisation=0.0, progress=False)
    assert records[-1]["influence"] < records[0]["influence"]
    for k, v in augmenter.generator.state_dict().items():
        assert torch.equal(v, frozen[k]), k
