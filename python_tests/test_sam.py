"""SAM against a two-pass update computed by hand (float64, torch.func), BatchNorm
statistics, AMP loss scaling and clipping composition."""
import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call

from augcore.train import SAM, bn_stats_frozen


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Tanh(), nn.Linear(7, 3)).double()


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)


def _loss(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


def _hand_sam(model, x, y, *, rho, adaptive, lr, wd, momentum_buffer=None, momentum=0.0):
    """SAM by hand: g at w, e = rho T^2 g / ||T g|| (T = |w| if adaptive else 1),
    g' at w + e with BatchNorm running stats frozen, then SGD (weight decay,
    momentum) with g' at w. Returns the new parameters and the new buffers."""
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    work = copy.deepcopy(model)

    def loss_at(p, bufs):
        return nn.functional.cross_entropy(functional_call(work, {**p, **bufs}, (x,)), y)

    p1 = {n: v.clone().requires_grad_() for n, v in params.items()}
    bufs_first = {n: b.clone() for n, b in buffers.items()}
    grads = torch.autograd.grad(loss_at(p1, bufs_first), [p1[n] for n in names])  # updates bufs_first in place
    t = {n: (params[n].abs() if adaptive else torch.ones_like(params[n])) for n in names}
    norm = torch.sqrt(sum(((t[n] * g) ** 2).sum() for n, g in zip(names, grads)))
    perturbed = {n: (params[n] + rho * t[n] ** 2 * g / (norm + 1e-12)).requires_grad_() for n, g in zip(names, grads)}
    bufs_second = {n: b.clone() for n, b in bufs_first.items()}
    grads2 = torch.autograd.grad(loss_at(perturbed, bufs_second), [perturbed[n] for n in names])
    new = {}
    for n, g2 in zip(names, grads2):
        d = g2 + wd * params[n]
        if momentum:
            d = momentum * momentum_buffer[n] + d if momentum_buffer is not None else d
        new[n] = params[n] - lr * d
    running_after_first = {n: bufs_first[n] for n in bufs_first}
    return new, running_after_first


@pytest.mark.parametrize("adaptive", [False, True])
def test_first_and_second_step_match_hand_computation(adaptive):
    model = _model()
    x, y = _data()
    rho, lr, wd = 0.3, 0.1, 1e-3
    expected, expected_buffers = _hand_sam(model, x, y, rho=rho, adaptive=adaptive, lr=lr, wd=wd)

    sam = SAM(model.parameters(), torch.optim.SGD, rho=rho, adaptive=adaptive, lr=lr, weight_decay=wd)
    _loss(model, x, y).backward()
    sam.first_step()
    with bn_stats_frozen(model):
        _loss(model, x, y).backward()
    sam.second_step()

    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[n], rtol=1e-12, atol=1e-12)
    # running statistics are those of the first pass alone, counter included
    for n, b in model.named_buffers():
        torch.testing.assert_close(b, expected_buffers[n], rtol=0, atol=0)


def test_step_with_closure_equals_the_two_halves():
    x, y = _data()
    a, b = _model(), _model()
    sam_a = SAM(a.parameters(), torch.optim.SGD, rho=0.05, lr=0.2, momentum=0.9, nesterov=True)
    sam_b = SAM(b.parameters(), torch.optim.SGD, rho=0.05, lr=0.2, momentum=0.9, nesterov=True)
    for _ in range(3):
        def closure():
            loss = _loss(a, x, y)
            loss.backward()
            return loss
        sam_a.step(closure)
        _loss(b, x, y).backward()
        sam_b.first_step()
        _loss(b, x, y).backward()
        sam_b.second_step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_second_update_applies_momentum_to_perturbed_gradients():
    """Two SAM updates with momentum: the base SGD's momentum buffer holds the first
    update's perturbed-point gradient g'_1, and the second update is
    w2 = w1 - lr (mom g'_1 + g'_2)."""
    model = _model()
    x, y = _data()
    rho, lr, mom = 0.1, 0.05, 0.9
    w0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    sam = SAM(model.parameters(), torch.optim.SGD, rho=rho, lr=lr, momentum=mom)

    def update():
        _loss(model, x, y).backward()
        sam.first_step()
        with bn_stats_frozen(model):
            _loss(model, x, y).backward()
        sam.second_step()

    update()
    first_grad = {n: (w0[n] - p.detach()) / lr for n, p in model.named_parameters()}  # g'_1 (momentum buffer)
    expected, _ = _hand_sam(copy.deepcopy(model), x, y, rho=rho, adaptive=False, lr=lr, wd=0.0,
                            momentum_buffer=first_grad, momentum=mom)
    update()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[n], rtol=1e-9, atol=1e-12)


def test_grad_scaler_gives_the_unscaled_update():
    """With a GradScaler the perturbation and the step use unscaled gradients."""
    x, y = _data()
    plain, scaled = _model(), _model()
    sam_plain = SAM(plain.parameters(), torch.optim.SGD, rho=0.2, lr=0.1)
    sam_scaled = SAM(scaled.parameters(), torch.optim.SGD, rho=0.2, lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    _loss(plain, x, y).backward()
    sam_plain.first_step()
    with bn_stats_frozen(plain):
        _loss(plain, x, y).backward()
    sam_plain.second_step()

    scaler.scale(_loss(scaled, x, y)).backward()
    sam_scaled.first_step(grad_scaler=scaler)
    with bn_stats_frozen(scaled):
        scaler.scale(_loss(scaled, x, y)).backward()
    sam_scaled.second_step(grad_scaler=scaler)
    scaler.update()
    for pa, pb in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-10, atol=1e-12)


def test_overflowing_gradients_skip_the_perturbation_and_the_step():
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    sam = SAM(model.parameters(), torch.optim.SGD, rho=0.2, lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    x, y = _data()
    scaler.scale(_loss(model, x, y)).backward()
    next(model.parameters()).grad[0, 0] = float("inf")
    sam.first_step(grad_scaler=scaler)
    assert sam.perturbation_skipped
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)
    scaler.scale(_loss(model, x, y)).backward()
    next(model.parameters()).grad[0, 0] = float("inf")
    sam.second_step(grad_scaler=scaler)
    scaler.update()
    assert scaler.get_scale() < 4.0
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)


def test_clipping_between_the_halves_clips_the_perturbed_gradient():
    model = _model()
    x, y = _data()
    ref = copy.deepcopy(model)
    sam = SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.5)
    _loss(model, x, y).backward()
    sam.first_step()
    with bn_stats_frozen(model):
        _loss(model, x, y).backward()
    clipped = {n: p.grad.clone() for n, p in model.named_parameters()}
    total = torch.sqrt(sum((g ** 2).sum() for g in clipped.values()))
    max_norm = float(total) / 4
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    sam.second_step()
    for (n, p), p0 in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.detach(), p0.detach() - 0.5 * clipped[n] * (max_norm / (float(total) + 1e-6)),
                                   rtol=1e-10, atol=1e-12)


def test_wraps_an_optimizer_instance_and_round_trips_state():
    model = _model()
    base = torch.optim.Adam(model.parameters(), lr=1e-2)
    sam = SAM(None, base, rho=0.05)
    x, y = _data()
    _loss(model, x, y).backward()
    sam.first_step()
    _loss(model, x, y).backward()
    sam.second_step()
    state = sam.state_dict()
    other_model = copy.deepcopy(model)
    other = SAM(None, torch.optim.Adam(other_model.parameters(), lr=1e-2), rho=0.05)
    other.load_state_dict(state)
    assert other.base_optimizer.state_dict()["state"][0]["step"] == 1
    for g in sam.param_groups:  # LR set on SAM reaches the base optimizer
        g["lr"] = 0.5
    assert base.param_groups[0]["lr"] == 0.5


def test_bad_arguments_raise_clear_errors():
    model = _model()
    with pytest.raises(ValueError, match="rho"):
        SAM(model.parameters(), torch.optim.SGD, rho=-1.0, lr=0.1)
    with pytest.raises(TypeError, match="base_optimizer"):
        SAM(model.parameters(), "sgd", lr=0.1)
    with pytest.raises(ValueError, match="params differ"):
        SAM(list(_model().parameters()), torch.optim.SGD(model.parameters(), lr=0.1))
    sam = SAM(model.parameters(), torch.optim.SGD, lr=0.1)
    with pytest.raises(RuntimeError, match="no parameter has a gradient"):
        sam.first_step()
    with pytest.raises(RuntimeError, match="without a preceding first_step"):
        sam.second_step()
    with pytest.raises(ValueError, match="closure"):
        sam.step()
