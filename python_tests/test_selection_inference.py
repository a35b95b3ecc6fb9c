"""collect_stats: one eval-mode pass, outputs checked against a direct float64 forward."""
import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from augcore.selection import CoresetSelector, InferenceStats, base_indices, collect_stats
from augcore.selection.inference import StatsAccumulator, find_classifier


class TinyNet(nn.Module):
    """Has BatchNorm and Dropout, so train mode would change the outputs."""

    def __init__(self, num_classes=4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.5))
        self.head = nn.Linear(24, num_classes)

    def forward(self, x):
        h = self.features(x)
        return self.head(h), h


def make_data(n=37, num_classes=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=gen)
    y = torch.randint(0, num_classes, (n,), generator=gen)
    return TensorDataset(x, y), x, y


def trained_net():
    torch.manual_seed(0)
    net = TinyNet()
    net.train()
    with torch.no_grad():  # move BatchNorm's running statistics away from their defaults
        for _ in range(3):
            net(torch.randn(16, 3, 8, 8) * 2 + 1)
    return net


def expected_outputs(net, x, y):
    """A float64 copy of the network in eval mode: the independent reference."""
    ref = TinyNet().double()
    ref.load_state_dict(net.state_dict())
    ref.eval()
    with torch.no_grad():
        logits, emb = ref(x.double())
    losses = torch.logsumexp(logits, 1) - logits.gather(1, y[:, None]).squeeze(1)
    return logits, emb, losses


@pytest.mark.parametrize("batch_size", [1, 8, 512])
def test_outputs_match_a_float64_eval_forward(batch_size):
    ds, x, y = make_data()
    net = trained_net()
    stats = collect_stats(net, ds, batch_size=batch_size, progress=batch_size == 8)
    logits, emb, losses = expected_outputs(net, x, y)
    torch.testing.assert_close(stats.logits.double(), logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stats.embeddings.double(), emb, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stats.losses.double(), losses, rtol=1e-5, atol=1e-5)
    assert stats.logits.dtype == stats.losses.dtype == torch.float32
    assert torch.equal(stats.labels, y) and torch.equal(stats.indices, torch.arange(37))


def test_train_and_eval_flags_are_restored_per_module():
    ds, _, _ = make_data()
    net = trained_net()
    net.features[1].eval()  # a mixed state: BatchNorm frozen, the rest training
    before = {name: m.training for name, m in net.named_modules()}
    collect_stats(net, ds, progress=False)
    assert {name: m.training for name, m in net.named_modules()} == before
    net.eval()
    collect_stats(net, ds, progress=False)
    assert not any(m.training for m in net.modules())


def test_subset_indices_are_base_dataset_indices():
    ds, x, y = make_data(n=50)
    outer = Subset(ds, [40, 3, 17, 8, 22, 5])
    inner = Subset(outer, [5, 0, 2])
    assert base_indices(outer).tolist() == [40, 3, 17, 8, 22, 5]
    assert base_indices(inner).tolist() == [5, 40, 17]
    net = trained_net()
    stats = collect_stats(net, inner, batch_size=2, progress=False)
    assert stats.indices.tolist() == [5, 40, 17]
    logits, _, _ = expected_outputs(net, x[[5, 40, 17]], y[[5, 40, 17]])
    torch.testing.assert_close(stats.logits.double(), logits, rtol=1e-5, atol=1e-5)
    loader_stats = collect_stats(net, DataLoader(outer, batch_size=4), progress=False)
    assert loader_stats.indices.tolist() == [40, 3, 17, 8, 22, 5]


def test_without_embeddings():
    ds, _, _ = make_data()
    net = trained_net()
    assert collect_stats(net, ds, embeddings=False, progress=False).embeddings is None
    logits_only = nn.Sequential(nn.Flatten(), nn.Linear(192, 4))
    assert collect_stats(logits_only, ds, embeddings=False, progress=False).logits.shape == (37, 4)


def sequential_net():
    torch.manual_seed(2)
    return nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.Flatten(), nn.Linear(180, 16),
                         nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4))


@pytest.mark.parametrize("batch_size", [5, 512])
def test_logits_only_sequential_gets_the_final_linear_input(batch_size):
    ds, x, y = make_data()
    net = sequential_net()
    stats = collect_stats(net, ds, batch_size=batch_size, progress=False)
    ref = copy.deepcopy(net).double().eval()
    with torch.no_grad():
        emb = ref[:-1](x.double())  # everything before the final linear layer
        logits = ref[-1](emb)
    torch.testing.assert_close(stats.embeddings.double(), emb, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stats.logits.double(), logits, rtol=1e-5, atol=1e-5)
    assert not any(m._forward_hooks for m in net.modules())  # hooks removed


def test_torchvision_resnet18_unchanged_and_exact_last_layer_selection():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=5)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 3, 32, 32, generator=gen), torch.arange(12) % 5
    ref = copy.deepcopy(net).double().eval()
    ref.fc = nn.Identity()
    stats = collect_stats(net, TensorDataset(x, y), batch_size=8, progress=False)
    with torch.no_grad():
        emb = ref(x.double())
    torch.testing.assert_close(stats.embeddings.double(), emb, rtol=1e-4, atol=1e-5)
    assert find_classifier(net, x[:2]) == "fc"
    named = collect_stats(net, TensorDataset(x, y), batch_size=8, progress=False, classifier="fc")
    assert torch.equal(named.embeddings, stats.embeddings)
    # the exact last-layer proxy needs the embeddings: same picks as from the float64 reference's
    selector = CoresetSelector(0.5, proxy="last_layer", method="naive")
    exact = InferenceStats(logits=stats.logits, labels=stats.labels, losses=stats.losses, indices=stats.indices,
                           embeddings=emb.float())
    assert selector.select(stats).indices.tolist() == selector.select(exact).indices.tolist()


def test_named_classifier_overrides_a_returned_embedding():
    ds, x, _ = make_data()
    net = trained_net()
    stats = collect_stats(net, ds, progress=False, classifier=net.head)
    assert torch.equal(stats.embeddings, collect_stats(net, ds, progress=False).embeddings)
    inner = collect_stats(net, ds, progress=False, classifier="features.2")  # the ReLU's input: BN output
    ref = copy.deepcopy(net).eval()
    with torch.no_grad():
        bn = ref.features[:2](x)
    torch.testing.assert_close(inner.embeddings, bn.flatten(1), rtol=1e-5, atol=1e-5)


def test_embedding_errors_name_the_way_out():
    ds, _, _ = make_data()

    class Scaled(nn.Module):  # logits are not any linear layer's output
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(192, 4))

        def forward(self, x):
            return 2.0 * self.body(x)

    with pytest.raises(ValueError, match="pass classifier="):
        collect_stats(Scaled(), ds, progress=False)
    assert collect_stats(Scaled(), ds, progress=False, classifier="body.1").embeddings.shape == (37, 192)
    with pytest.raises(ValueError, match="no nn.Linear"):
        collect_stats(nn.Sequential(nn.Flatten()), TensorDataset(torch.randn(4, 2, 2), torch.zeros(4).long()),
                      progress=False)
    with pytest.raises(ValueError, match="names no submodule"):
        collect_stats(Scaled(), ds, progress=False, classifier="fc")

    class NoEmbedding(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(192, 4)

        def forward(self, x):
            return self.lin(x.flatten(1)), None

    with pytest.raises(TypeError, match="returned NoneType as its embedding"):
        collect_stats(NoEmbedding(), ds, progress=False)

    class Dict(nn.Module):
        def forward(self, x):
            return {"scores": x.flatten(1)[:, :4]}

    with pytest.raises(TypeError, match="must return logits,"):
        collect_stats(Dict(), ds, progress=False)

    class ModelOutput(nn.Module):  # Hugging Face style: a mapping with "logits"
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(192, 4)

        def forward(self, x):
            return {"logits": self.lin(x.flatten(1))}

    out = ModelOutput()
    stats = collect_stats(out, ds, progress=False)
    torch.testing.assert_close(stats.embeddings, torch.stack([ds[i][0].flatten() for i in range(37)]))


def test_loader_and_argument_errors():
    ds, _, _ = make_data()
    net = trained_net()
    with pytest.raises(ValueError, match="unshuffled DataLoader"):
        collect_stats(net, DataLoader(ds, batch_size=4, shuffle=True), progress=False)
    with pytest.raises(ValueError, match="drop_last"):
        collect_stats(net, DataLoader(ds, batch_size=4, drop_last=True), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        collect_stats(net, ds, batch_size=0)
    with pytest.raises(TypeError, match="Dataset or DataLoader"):
        collect_stats(net, [1, 2, 3])
    bad = TensorDataset(torch.randn(5, 3, 8, 8), torch.tensor([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        collect_stats(net, bad, progress=False)
    with pytest.raises(ValueError, match="the model is on cpu"):
        collect_stats(net, ds, device="meta", progress=False)


def test_with_an_augcore_model():
    from augcore.models import build_model

    torch.manual_seed(1)
    model = build_model("resnet20", num_classes=10)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 3, 32, 32, generator=gen), torch.randint(0, 10, (6,), generator=gen)
    model.train()
    stats = collect_stats(model, TensorDataset(x, y), batch_size=4, progress=False)
    assert model.training
    model.eval()
    with torch.no_grad():
        logits, emb = model(x)
    torch.testing.assert_close(stats.logits, logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(stats.embeddings, emb.flatten(1), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- batched loading of ImageDataset

def digits_views():
    from augcore.data import load_dataset
    from augcore.data.transforms import eval_transform, weak_transform

    train = load_dataset("digits", train=True)
    return train, train.with_transform(eval_transform(train)), train.with_transform(weak_transform(train))


def small_cnn():
    from augcore.models import build_model

    torch.manual_seed(4)
    return build_model("small_cnn", 10, in_channels=1)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_batched_image_loading_equals_the_per_item_pass(num_workers):
    from augcore.selection.inference import _batch_reader

    _, plain, weak = digits_views()
    assert _batch_reader(Subset(plain, [0]))[1] is plain
    assert _batch_reader(weak) == (None, None)  # random transforms stay per item
    model = small_cnn()
    per_item = collect_stats(model, DataLoader(plain, batch_size=100), progress=False)  # the per-item path
    batched = collect_stats(model, plain, batch_size=100, num_workers=num_workers, progress=False)
    for name in ("logits", "embeddings", "labels", "indices", "losses"):
        assert torch.equal(getattr(batched, name), getattr(per_item, name)), name
    rows = [900, 3, 17, 1000, 44]
    sub = collect_stats(model, Subset(plain, rows), batch_size=2, progress=False)
    assert sub.indices.tolist() == rows
    torch.testing.assert_close(sub.logits, per_item.logits[rows], rtol=1e-5, atol=1e-6)  # other batch size


def test_channels_last_and_bf16_change_outputs_by_rounding_only():
    _, plain, _ = digits_views()
    model = small_cnn()
    sub = Subset(plain, list(range(64)))
    ref = collect_stats(model, sub, progress=False)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    fast = collect_stats(model, sub, channels_last=True, progress=False)
    torch.testing.assert_close(fast.logits, ref.logits, rtol=1e-4, atol=1e-4)
    assert all(p.is_contiguous() for p in model.parameters())  # NCHW weights put back
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    half = collect_stats(model, sub, amp="bf16", progress=False)
    torch.testing.assert_close(half.logits, ref.logits, rtol=0.05, atol=0.05)
    with pytest.raises(ValueError, match="fp16"):
        collect_stats(model, sub, amp="fp16", progress=False)
    with pytest.raises(ValueError, match="amp"):
        collect_stats(model, sub, amp="int8", progress=False)


# ----------------------------------------------------------------------------- StatsAccumulator

def test_accumulator_equals_collect_stats_fed_in_shuffled_batches():
    ds, x, y = make_data(n=40)
    net = trained_net()
    reference = collect_stats(net, ds, batch_size=7, progress=False)
    acc = StatsAccumulator(40, 4)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(5))
    net.eval()
    with torch.no_grad():
        for batch in order.split(6):
            logits, emb = net(x[batch])
            acc.add(batch, logits, y[batch], emb)
    stats = acc.finish()
    for name in ("logits", "embeddings", "losses"):
        torch.testing.assert_close(getattr(stats, name), getattr(reference, name), rtol=1e-5, atol=1e-6)
    assert torch.equal(stats.labels, y) and torch.equal(stats.indices, torch.arange(40))


def test_accumulator_covers_given_dataset_indices_in_their_order():
    acc = StatsAccumulator(3, 2, embed_dim=1, indices=torch.tensor([7, 2, 5]))
    acc.add(torch.tensor([5, 7]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 1]),
            torch.tensor([[50.0], [70.0]]))
    acc.add(torch.tensor([2]), torch.tensor([[3.0, 3.0]]), torch.tensor([1]), torch.tensor([[20.0]]))
    stats = acc.finish()
    assert stats.indices.tolist() == [7, 2, 5]
    assert stats.logits.tolist() == [[0.0, 2.0], [3.0, 3.0], [1.0, 0.0]]
    assert stats.labels.tolist() == [1, 1, 0] and stats.embeddings.flatten().tolist() == [70.0, 20.0, 50.0]
    torch.testing.assert_close(stats.losses, torch.nn.functional.cross_entropy(
        torch.tensor([[0.0, 2.0], [3.0, 3.0], [1.0, 0.0]]), torch.tensor([1, 1, 0]), reduction="none"))


def test_accumulator_errors():
    logits, labels = torch.zeros(2, 3), torch.tensor([0, 1])
    acc = StatsAccumulator(4, 3)
    acc.add(torch.tensor([0, 1]), logits, labels)
    with pytest.raises(ValueError, match=r"\[1\] were already recorded"):
        acc.add(torch.tensor([1, 2]), logits, labels)
    with pytest.raises(ValueError, match="2 of 4 dataset indices were never recorded"):
        acc.finish()
    with pytest.raises(ValueError, match="not among the 4"):
        acc.add(torch.tensor([2, 9]), logits, labels)
    with pytest.raises(ValueError, match="repeats a dataset index"):
        acc.add(torch.tensor([3, 3]), logits, labels)
    with pytest.raises(ValueError, match="embeddings to every add or to none"):
        acc.add(torch.tensor([2, 3]), logits, labels, torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"logits must be \(B, 3\)"):
        acc.add(torch.tensor([2, 3]), torch.zeros(2, 4), labels)
    with pytest.raises(ValueError, match="needs 2 indices"):
        acc.add(torch.tensor([2]), logits, labels)
    with pytest.raises(ValueError, match="repeated"):
        StatsAccumulator(2, 3, indices=[4, 4])
    acc.add(torch.tensor([2, 3]), logits, labels)
    assert acc.finish().logits.shape == (4, 3)
    acc.add(torch.tensor([0, 1]), logits, labels)  # a new epoch starts after finish
    assert acc.num_seen == 2


# ----------------------------------------------------------------------------- the docs' plain-loop recipe

def test_docs_plain_loop_recipe_runs_and_reselects():
    """Runs the code block of docs/integrations.md's plain-PyTorch recipe as written."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[1] / "docs" / "integrations.md").read_text()
    block = re.search(r"<!-- recipe: plain-loop.*?-->\n```python\n(.*?)```", text, re.S).group(1)
    torch.manual_seed(0)
    scope = {}
    exec(compile(block, "docs/integrations.md", "exec"), scope)
    view, train = scope["view"], scope["train"]
    k = round(0.3 * len(train))
    assert view.selection.epoch == 2 and len(view.selection) == k  # the epoch-2 re-selection is in place
    assert view.num_copies == k and len(view) == len(train) + k
    rows = view.selection.indices
    assert torch.unique(rows).numel() == k
    # per-class budgets proportional to class sizes, as the coreset selector splits them
    counts = torch.bincount(train.targets[rows], minlength=10)
    expected = train.class_counts().double() * k / len(train)
    assert (counts.double() - expected).abs().max() <= 1
