"""optim.name: the optimiser a config asks for is the one that updates the model (sgd, adam; SAM around either)."""
import pytest
import torch
from torch import nn

from augcore.apps.labelled_fraction import LabelledFractionSettings, run_config
from augcore.train.config import ConfigError, config_from_dict
from augcore.train.sam import SAM
from augcore.train.update import build_optimizer


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _adam_step_by_hand(p, g, lr, b1, b2, wd, eps=1e-8):
    """Kingma & Ba's first step (bias-corrected), float64; L2 decay added to the gradient as torch's Adam."""
    g = g.double() + wd * p.double()
    m, v = (1 - b1) * g, (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1), v / (1 - b2)
    return p.double() - lr * m_hat / (v_hat.sqrt() + eps)


def test_adam_config_builds_adam_with_its_betas_and_steps_as_adam():
    optim = config_from_dict({"optim": {"name": "adam", "lr": 0.01, "betas": [0.9, 0.99], "weight_decay": 1e-3}}).optim
    model = _model()
    opt = build_optimizer(model, optim)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["betas"] == (0.9, 0.99)
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(5, 4)).square().sum().backward()
    grads = [p.grad.detach().clone() for p in model.parameters()]
    opt.step()
    for p, p0, g in zip(model.parameters(), before, grads):
        torch.testing.assert_close(p.detach().double(), _adam_step_by_hand(p0, g, 0.01, 0.9, 0.99, 1e-3),
                                   rtol=1e-6, atol=1e-7)


def test_default_is_sgd_with_momentum_and_sam_wraps_either():
    model = _model()
    sgd = build_optimizer(model, config_from_dict({}).optim)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9
    sam = build_optimizer(model, config_from_dict({"optim": {"name": "adam", "sam_rho": 0.05}}).optim)
    assert isinstance(sam, SAM) and isinstance(sam.base_optimizer, torch.optim.Adam)


@pytest.mark.parametrize("optim, key", [({"name": "rmsprop"}, "optim.name"),
                                        ({"name": "adam", "betas": [0.9]}, "optim.betas"),
                                        ({"name": "adam", "betas": [0.9, 1.0]}, "optim.betas"),
                                        ({"name": "adam", "nesterov": True}, "optim.nesterov")])
def test_bad_optimiser_settings_name_the_key(optim, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict({"optim": optim})


def test_influence_mnist_preset_trains_its_classifier_with_adam_as_app_b():
    settings = LabelledFractionSettings.paper("mnist")
    optim = config_from_dict(run_config(settings, "none", 0.01, 0)).optim
    assert (optim.name, optim.lr, list(optim.betas), optim.batch_size) == ("adam", 0.01, [0.9, 0.99], 128)
    cifar = config_from_dict(run_config(LabelledFractionSettings.paper("cifar10"), "none", 0.1, 0)).optim
    assert (cifar.name, cifar.lr, cifar.momentum, cifar.weight_decay) == ("sgd", 0.1, 0.9, 1e-4)
