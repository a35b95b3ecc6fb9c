"""Any model through the training loop: one update step per model family at 32 px against a hand-made SGD
step, and a logits-only model through the Trainer with every policy, equal to its (logits, embedding) twin."""
import copy

import pytest
import torch
from conftest import small_train_config
from torch import nn

from augcore.models import MODELS, build_model
from augcore.train import POLICIES, Trainer
from augcore.train.config import OptimConfig
from augcore.train.update import UpdateStep, build_optimizer

# the refinement and targeted-synthetic papers' models (besides MODELS: PreAct-18, WRN-28-10, Shake-Shake, ViT-S)
PAPER_TORCHVISION = ["torchvision:vgg19", "torchvision:densenet121", "torchvision:convnext_tiny", "torchvision:swin_t",
                     "torchvision:resnet101"]
# over 1 s each on one CPU core: in the long run only (the default run keeps one model of each kind: CIFAR
# ResNets, PreAct, Shake-Shake, torchvision's ResNet, DenseNet and Swin)
SLOW = {"torchvision:vgg19", "torchvision:resnet101", "torchvision:convnext_tiny", "wrn28_10", "resnet50", "vit_s"}


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.long) if n in SLOW else n
                                  for n in sorted(MODELS) + PAPER_TORCHVISION])
def test_one_training_step_at_32px_is_plain_sgd(name):
    torch.manual_seed(0)
    model = build_model(name, 10, image_size=32)
    reference = copy.deepcopy(model)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([3, 7])
    optim = OptimConfig(lr=0.1, momentum=0.0, weight_decay=0.0)
    step = UpdateStep(model, model, build_optimizer(model, optim), device=torch.device("cpu"))
    torch.manual_seed(1)  # Shake-Shake and dropout draw: the same draws for both
    loss, logits, embeddings = step(x, y, torch.ones(2))
    assert embeddings is None and logits.shape == (2, 10)  # no embeddings asked for: no hook needed
    torch.manual_seed(1)
    ref_loss = nn.functional.cross_entropy(_logits(reference(x)), y)
    ref_loss.backward()
    assert loss == pytest.approx(ref_loss.item(), rel=1e-6)
    changed = 0
    for (key, p), q in zip(model.named_parameters(), reference.parameters()):
        expected = q.detach() - 0.1 * q.grad if q.grad is not None else q.detach()
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-6, msg=key)
        changed += int(not torch.equal(p.detach(), q.detach()))
    assert changed > 0


class _Body(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(8, 10)


class LogitsOnly(_Body):
    def forward(self, x):
        return self.head(self.features(x))


class WithEmbedding(_Body):  # augcore's convention, the same computation
    classifier_attr = "head"

    @property
    def classifier(self):
        return self.head

    def forward(self, x):
        embedding = self.features(x)
        return self.head(embedding), embedding


def _fit(model_cls, digits, augment):
    torch.manual_seed(0)
    model = model_cls()
    cfg = small_train_config({"fraction": 0.2, "reselect_every": 1, **augment},
                             schedule={"epochs": 2, "milestones": []})
    trainer = Trainer(cfg, model=model, train_set=digits[0], test_set=digits[1])
    result = trainer.fit()
    timing = ("selection_time", "selector_time", "epoch_time", "inference_time")
    rows = [{k: ("nan" if v != v else v) for k, v in r.items() if k not in timing} for r in result.rows]
    return trainer, rows


# coreset on the exact last-layer gradients (embeddings needed), from an inference pass and from the
# training steps' own outputs (the hook inside the update step); then every policy
CASES = ([("coreset", {"selector": {"proxy": "last_layer"}}),
          ("coreset", {"selector": {"proxy": "last_layer"}, "stats": "in_epoch"}),
          ("slow_learnable", {"selector": {"features": "embeddings"}})]
         + [(mode, {}) for mode in sorted(POLICIES) if mode not in ("first_k", "fixed")])  # fixed: a saved selection


@pytest.mark.parametrize("mode, options", CASES)
def test_a_logits_only_model_trains_as_its_embedding_returning_twin(small_digits, mode, options):
    trainer, rows = _fit(LogitsOnly, small_digits, {"mode": mode, **options})
    twin, twin_rows = _fit(WithEmbedding, small_digits, {"mode": mode, **options})
    assert rows == twin_rows
    for k, v in twin.model.state_dict().items():
        assert torch.equal(v, trainer.model.state_dict()[k]), k
    if twin.selection is not None:
        assert torch.equal(trainer.selection.indices, twin.selection.indices)
    if options.get("stats") == "in_epoch":
        assert trainer.stats.passes == twin.stats.passes == 1  # epoch 1 used the recorded embeddings
