"""Models: the (logits, embedding) contract of augcore's own, logits-only torchvision ones read through the
classifier hook, sizes against the publications, CIFAR stems, Shake-Shake's mixing, validation."""
import copy

import pytest
import torch
import torchvision
from torch import nn

from augcore.config import ConfigError
from augcore.models import MODELS, EmbeddingClassifier, build_model
from augcore.models.shake_shake import ShakeShake, shake_mix
from augcore.selection.inference import EmbeddingReader, find_classifier

# (name, in_channels, image_size) covering each stem: small-image (16 px keeps CPU time low), digits (1 channel,
# 8x8), ImageNet-size stem
CASES = [(name, 3, 16) for name in MODELS] + [("small_cnn", 1, 8), ("resnet20", 1, 8), ("resnet18", 1, 8),
                                             ("resnet18", 3, 96)]


@pytest.mark.parametrize("name, in_channels, image_size", CASES)
def test_logits_are_the_classifier_of_the_embedding(name, in_channels, image_size):
    torch.manual_seed(0)
    model = build_model(name, 7, in_channels=in_channels, image_size=image_size).double().eval()
    x = torch.randn(2, in_channels, image_size, image_size, dtype=torch.float64)
    layer = model.get_submodule(find_classifier(model, x))
    assert isinstance(layer, nn.Linear) and layer.out_features == 7
    with torch.no_grad():  # ViT-S's head starts at zero: random values make the comparison mean something
        layer.weight.normal_(), layer.bias.normal_()
    reader = EmbeddingReader(model)
    with torch.no_grad():
        logits, embedding = reader(x)
    reader.close()
    assert logits.shape == (2, 7) and logits.dtype == torch.float64 and embedding.shape == (2, layer.in_features)
    assert not any(m._forward_hooks for m in model.modules())  # the reader leaves no hook behind
    reference = embedding @ layer.weight.T + layer.bias  # float64, by hand
    torch.testing.assert_close(logits, reference, rtol=1e-12, atol=1e-12)
    if isinstance(model, EmbeddingClassifier):  # augcore's own return the pair; the layer is registered once
        assert layer is model.classifier and model.embedding_dim == layer.in_features
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


# He et al. 2016 Table 6 (0.27M, 0.46M, 0.85M); PreAct-18 11.2M; Zagoruyko & Komodakis WRN-28-10 36.5M;
# Gastaldi 2017 Table 1: Shake-Shake 26 2x96d 26.2M
PUBLISHED = {"resnet20": 0.27e6, "resnet32": 0.46e6, "resnet56": 0.85e6, "preact_resnet18": 11.2e6, "wrn28_10": 36.5e6,
             "shake_shake26_2x96d": 26.2e6}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_match_published(name):
    count = sum(p.numel() for p in build_model(name, 10).parameters())
    assert abs(count - PUBLISHED[name]) / PUBLISHED[name] < 0.02, count


@pytest.mark.parametrize("width, published", [(32, 2.9e6), (64, 11.7e6)])
def test_shake_shake_widths_match_gastaldi_table_1(width, published):
    count = sum(p.numel() for p in ShakeShake(26, width, 10).parameters())
    assert abs(count - published) / published < 0.02, count


def test_vit_s_is_the_targeted_synthetic_papers():
    model = build_model("vit_s", 10, in_channels=1, image_size=8)  # the paper's is 3 channels, 32 px
    assert model.patch_size == 4 and model.hidden_dim == 768 and len(model.encoder.layers) == 8
    block = model.encoder.layers[0]
    assert block.self_attention.num_heads == 8 and block.self_attention.head_dim == 96
    assert block.mlp[0].out_features == 2304
    # by hand: patch embedding (1 x 4 x 4 inputs), class token, 2 x 2 + 1 positions, 8 blocks (attention, MLP,
    # 2 LayerNorms), final LayerNorm, head; at 3 channels and 32 px, 47.4M
    per_block = (3 * 768 * 768 + 3 * 768) + (768 * 768 + 768) + (768 * 2304 + 2304) + (2304 * 768 + 768) + 4 * 768
    expected = (16 * 768 + 768) + 768 + 5 * 768 + 8 * per_block + 2 * 768 + (768 * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("arch", ["resnet18", "densenet121"])
def test_imagenet_size_torchvision_models_are_torchvisions(arch):
    ours = build_model(f"torchvision:{arch}", 10, image_size=224)
    peer = getattr(torchvision.models, arch)(weights=None, num_classes=10)
    peer.load_state_dict(ours.state_dict())  # same names and shapes: published state dicts load as they are
    x = torch.randn(1, 3, 64, 64)
    ours.eval(), peer.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), peer(x), rtol=0, atol=0)


@pytest.mark.parametrize("name, conv, pool", [("resnet18", "conv1", "maxpool"),
                                              ("torchvision:densenet121", "features.conv0", "features.pool0")])
def test_cifar_stem_keeps_resolution(name, conv, pool):
    auto = build_model(name, 10, image_size=32)
    stem = auto.get_submodule(conv)
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1) and stem.bias is None
    assert isinstance(auto.get_submodule(pool), nn.Identity)
    assert build_model(name, 10, image_size=96).get_submodule(conv).kernel_size == (7, 7)  # above 64 px
    kept = build_model(name, 10, image_size=32, stem="imagenet")  # what ImageNet weights need
    assert kept.get_submodule(conv).kernel_size == (7, 7) and isinstance(kept.get_submodule(pool), nn.MaxPool2d)
    forced = build_model(name, 10, image_size=96, stem="cifar", in_channels=1)
    assert forced.get_submodule(conv).kernel_size == (3, 3) and forced.get_submodule(conv).in_channels == 1


def test_other_families_keep_their_stem_and_take_other_channel_counts():
    model = build_model("torchvision:mobilenet_v3_small", 10, image_size=32, in_channels=1)
    assert model.features[0][0].in_channels == 1 and model.features[0][0].stride == (2, 2)
    with pytest.raises(ValueError, match="no convolution \\+ max-pool stem"):
        build_model("torchvision:mobilenet_v3_small", 10, stem="cifar")


def test_dropout_reaches_the_model():
    wrn = build_model("wrn28_10", 10, dropout=0.3)
    assert {block.dropout for stage in (wrn.block1, wrn.block2, wrn.block3) for block in stage} == {0.3}
    assert MODELS["wrn28_10"](10, 3, 32).block1[0].dropout == 0.0  # the refinement paper's default
    assert build_model("vit_s", 10, image_size=8, dropout=0.1).encoder.dropout.p == 0.1
    mobilenet = build_model("torchvision:mobilenet_v3_small", 10, image_size=32, dropout=0.3)
    assert {m.p for m in mobilenet.modules() if isinstance(m, nn.Dropout)} == {0.3}
    with pytest.raises(ValueError, match="dropout: resnet20 has no dropout"):
        build_model("resnet20", 10, dropout=0.3)
    with pytest.raises(ValueError, match="takes no dropout"):
        build_model("torchvision:resnet18", 10, dropout=0.3)


def test_shake_mix_forward_and_backward_against_the_formula():
    torch.manual_seed(0)
    a = torch.randn(3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    alpha, beta = torch.rand(3, 1, 1, 1, dtype=torch.float64), torch.rand(3, 1, 1, 1, dtype=torch.float64)
    out = shake_mix(a, b, alpha, beta)
    torch.testing.assert_close(out, alpha * a + (1 - alpha) * b, rtol=0, atol=0)
    g = torch.randn_like(out)
    out.backward(g)
    torch.testing.assert_close(a.grad, beta * g, rtol=0, atol=0)  # beta, not alpha: the backward "shake"
    torch.testing.assert_close(b.grad, (1 - beta) * g, rtol=0, atol=0)


def test_shake_shake_block_shakes_in_training_and_averages_in_evaluation():
    torch.manual_seed(0)
    model = ShakeShake(8, 4, 3).double()
    block = model.stage2[0]  # width changes: the two-path shifted shortcut
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    block.eval()
    with torch.no_grad():
        mean = block.shortcut(x) + 0.5 * (block.branch1(x) + block.branch2(x))
        torch.testing.assert_close(block(x), mean, rtol=1e-12, atol=1e-12)
        relu = torch.relu(x)  # the shortcut by hand: 1x1 convolutions on the subsampled and the shifted input
        shifted = torch.zeros_like(relu)
        shifted[:, :, 1:, 1:] = relu[:, :, :-1, :-1]
        short = torch.cat([block.shortcut.conv1(relu[:, :, ::2, ::2]),
                           block.shortcut.conv2(shifted[:, :, ::2, ::2])], 1)
        torch.testing.assert_close(block.shortcut(x), block.shortcut.bn(short), rtol=1e-12, atol=1e-12)
    block.train()
    torch.manual_seed(1)
    alpha = torch.rand(2, 1, 1, 1, dtype=torch.float64)  # the draws the block makes next
    torch.manual_seed(1)
    ref = copy.deepcopy(block)
    with torch.no_grad():
        expected = ref.shortcut(x) + alpha * ref.branch1(x) + (1 - alpha) * ref.branch2(x)
        torch.testing.assert_close(block(x), expected, rtol=1e-12, atol=1e-12)


def test_nothing_is_downloaded(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model build tried to download weights")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", refuse)
    for name in ("resnet18", "torchvision:mobilenet_v3_small", "vit_s"):
        build_model(name, 10, image_size=8)


def test_build_model_validates():
    with pytest.raises(ValueError, match="resnet20"):
        build_model("vgg16", 10)
    with pytest.raises(ValueError, match="did you mean.*vgg16"):
        build_model("torchvision:vgg61", 10)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("resnet20", 0)
    with pytest.raises(ValueError, match="in_channels"):
        build_model("small_cnn", 10, in_channels=0)
    with pytest.raises(ValueError, match="stem: applies to torchvision models"):
        build_model("resnet20", 10, stem="cifar")
    with pytest.raises(ValueError, match="multiple of the patch size 4"):
        build_model("vit_s", 10, image_size=30)
    # an architecture too deep for the image size fails at build time, with its name and the size
    with pytest.raises(ValueError, match="torchvision:squeezenet1_1 cannot run on 3x16x16 images"):
        build_model("torchvision:squeezenet1_1", 10, image_size=16)


def test_config_names_the_model_key():
    from augcore.train import config_from_dict

    cfg = config_from_dict({"model": {"name": "torchvision:swin_t", "dropout": 0.1}})
    assert cfg.model.name == "torchvision:swin_t"
    for model, key in [({"name": "torchvision:nope"}, "model.name"),
                       ({"name": "resnet20", "dropout": 0.3}, "model.dropout"),
                       ({"name": "wrn28_10", "dropout": 1.5}, "model.dropout"),
                       ({"name": "small_cnn", "stem": "cifar"}, "model.stem"),
                       ({"name": "resnet18", "stem": "tiny"}, "model.stem"),
                       ({"weights_skip": ["fc"]}, "model.weights_skip"),
                       ({"weights_sha256": "abcdef12"}, "model.weights_sha256")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            config_from_dict({"model": model})
