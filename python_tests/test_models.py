"""Every model returns (logits, embedding) with logits == classifier(embedding); sizes match the papers."""
import pytest
import torch
import torchvision
from torch import nn

from augcore.models import MODELS, build_model

# (name, in_channels, image_size) covering each stem: small-image (16 px keeps CPU time low), digits (1 channel,
# 8x8), ImageNet-size stem
CASES = [(name, 3, 16) for name in MODELS] + [("small_cnn", 1, 8), ("resnet20", 1, 8), ("resnet18", 1, 8),
                                             ("resnet18", 3, 96)]


@pytest.mark.parametrize("name, in_channels, image_size", CASES)
def test_forward_returns_logits_and_the_classifier_input(name, in_channels, image_size):
    torch.manual_seed(0)
    model = build_model(name, 7, in_channels=in_channels, image_size=image_size).double().eval()
    x = torch.randn(2, in_channels, image_size, image_size, dtype=torch.float64)
    with torch.no_grad():
        logits, embedding = model(x)
    assert logits.shape == (2, 7) and logits.dtype == torch.float64
    assert embedding.shape == (2, model.embedding_dim) == (2, model.classifier.in_features)
    assert isinstance(model.classifier, nn.Linear) and model.classifier.out_features == 7
    reference = embedding @ model.classifier.weight.T + model.classifier.bias  # float64, by hand
    torch.testing.assert_close(logits, reference, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logits, model.classifier(embedding), rtol=0, atol=0)
    # the classifier is registered once, under its original name (checkpoint keys unchanged)
    keys = model.state_dict().keys()
    assert not any(k.startswith("classifier.") for k in keys)
    assert f"{model.classifier_attr}.weight" in keys


def test_embedding_feeds_the_gradient_of_the_classifier():
    model = build_model("small_cnn", 10, in_channels=1, image_size=8)
    x = torch.randn(4, 1, 8, 8)
    logits, embedding = model(x)
    labels = torch.tensor([0, 1, 2, 3])
    loss = nn.functional.cross_entropy(logits, labels, reduction="sum")
    loss.backward()
    # d loss / d W = sum_i (softmax_i - onehot_i) outer h_i: the last-layer gradient the selection kernels use
    proxy = torch.softmax(logits.detach(), 1) - nn.functional.one_hot(labels, 10)
    torch.testing.assert_close(model.classifier.weight.grad, proxy.T @ embedding.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.classifier.bias.grad, proxy.sum(0), rtol=1e-4, atol=1e-5)


# He et al. 2016 Table 6 (0.27M, 0.46M, 0.85M); PreAct-18 11.2M; Zagoruyko & Komodakis WRN-28-10 36.5M
PUBLISHED = {"resnet20": 0.27e6, "resnet32": 0.46e6, "resnet56": 0.85e6, "preact_resnet18": 11.2e6, "wrn28_10": 36.5e6}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_match_published(name):
    count = sum(p.numel() for p in build_model(name, 10).parameters())
    assert abs(count - PUBLISHED[name]) / PUBLISHED[name] < 0.02, count


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_large_image_torchvision_models_equal_the_peer(arch):
    ours = build_model(arch, 10, image_size=224)
    peer = getattr(torchvision.models, arch)(weights=None, num_classes=10)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in peer.parameters())
    # same weights give the same logits as torchvision's own model
    peer_state = {k.replace("backbone.", ""): v for k, v in ours.state_dict().items()}
    peer.load_state_dict(peer_state)
    x = torch.randn(1, 3, 32, 32)
    ours.eval(), peer.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], peer(x))


def test_small_image_stem_keeps_resolution():
    model = build_model("resnet18", 10, image_size=32)
    assert model.backbone.conv1.kernel_size == (3, 3) and model.backbone.conv1.stride == (1, 1)
    assert isinstance(model.backbone.maxpool, nn.Identity)


def test_option_a_shortcut_is_parameter_free():
    model = build_model("resnet20", 10)
    shortcut = model.layer2[0].shortcut
    assert sum(p.numel() for p in shortcut.parameters()) == 0
    x = torch.randn(1, 16, 8, 8)
    y = shortcut(x)
    assert y.shape == (1, 32, 4, 4)
    torch.testing.assert_close(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()


def test_build_model_validates():
    with pytest.raises(ValueError, match="resnet20"):
        build_model("vgg16", 10)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("resnet20", 0)
    with pytest.raises(ValueError, match="in_channels"):
        build_model("small_cnn", 10, in_channels=0)
