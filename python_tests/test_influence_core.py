"""Influence machinery against independent float64 references: autograd's dense Hessian,
explicit per-example gradients, dense linear solves and actual retraining."""
import pytest
import torch

from augcore.influence import (LastLayerHessian, LastLayerInfluence, ParameterHessian, ParameterInfluence,
                               conjugate_gradient, last_layer_dot, last_layer_gradient, lissa, output_errors)
from augcore.ops.reference import explicit_last_layer_gradients



@pytest.fixture(autouse=True)
def float64_single_thread():
    """float64 references; one thread, because these problems are tiny and the CI machine is shared."""
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


def random_layer(n=40, c=4, h=6, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, h, generator=g)
    labels = torch.randint(c, (n,), generator=g)
    weight = torch.randn(c, h, generator=g)
    b = torch.randn(c, generator=g) if bias else None
    return emb, labels, weight, b


def flat_params(weight, bias):
    return torch.cat([weight.reshape(-1)] + ([] if bias is None else [bias]))


def mean_loss_of_flat(theta, emb, labels, c, bias, loss):
    h = emb.shape[1]
    weight = theta[: c * h].view(c, h)
    logits = emb @ weight.T + (theta[c * h:] if bias else 0.0)
    if loss == "ce":
        return torch.nn.functional.cross_entropy(logits, labels)
    onehot = torch.nn.functional.one_hot(labels, c).to(logits.dtype)
    return 0.5 * ((logits - onehot) ** 2).sum(1).mean()


def dense_hessian(emb, labels, weight, bias, damping, loss="ce"):
    theta = flat_params(weight, bias)
    hess = torch.autograd.functional.hessian(
        lambda t: mean_loss_of_flat(t, emb, labels, weight.shape[0], bias is not None, loss), theta)
    return hess + damping * torch.eye(len(theta))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_factored_hvp_equals_autograd_hessian(bias, loss):
    emb, labels, weight, b = random_layer(bias=bias)
    logits = emb @ weight.T + (b if bias else 0.0)
    op = LastLayerHessian(emb, logits, bias=bias, damping=0.3, loss=loss)
    dense = dense_hessian(emb, labels, weight, b, 0.3, loss)
    vectors = torch.randn(op.dim, 5, generator=torch.Generator().manual_seed(1))
    for k in range(5):
        torch.testing.assert_close(op.matvec(vectors[:, k]), dense @ vectors[:, k], rtol=1e-12, atol=1e-12)


def test_stochastic_hvp_is_unbiased_and_exact_with_all_rows():
    emb, labels, weight, b = random_layer(n=30)
    op = LastLayerHessian(emb, emb @ weight.T + b, damping=0.1)
    v = torch.randn(op.dim, generator=torch.Generator().manual_seed(2))
    full = op.matvec(v)
    torch.testing.assert_close(op.stochastic_matvec(torch.Generator(), None)(v), full)
    estimate = op.stochastic_matvec(torch.Generator().manual_seed(3), 7)
    mean = torch.stack([estimate(v) for _ in range(3000)]).mean(0)
    assert float((mean - full).norm() / full.norm()) < 0.05


@pytest.mark.parametrize("bias", [True, False])
def test_factored_scores_equal_explicit_gradients(bias):
    emb, labels, weight, b = random_layer(n=25, c=5, h=7, bias=bias)
    errors = output_errors(emb @ weight.T + (b if bias else 0.0), labels)
    explicit = explicit_last_layer_gradients(errors, emb, 1.0 if bias else 0.0)
    direction = torch.randn(explicit.shape[1], generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(last_layer_dot(direction, errors, emb, bias), explicit @ direction,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(last_layer_gradient(errors, emb, bias), explicit.sum(0), rtol=1e-12, atol=1e-12)


def test_up_loss_matches_dense_solve_with_explicit_gradients():
    emb, labels, weight, b = random_layer(n=60, c=3, h=5)
    val_emb, val_labels, _, _ = random_layer(n=15, c=3, h=5, seed=9)
    influence = LastLayerInfluence(weight, b, emb, emb @ weight.T + b, damping=0.05).fit(val_emb, val_labels)
    dense = dense_hessian(emb, labels, weight, b, 0.05)
    val_grad = explicit_last_layer_gradients(output_errors(val_emb @ weight.T + b, val_labels), val_emb, 1.0).sum(0)
    train_grads = explicit_last_layer_gradients(output_errors(emb @ weight.T + b, labels), emb, 1.0)
    expected = -train_grads @ torch.linalg.solve(dense, val_grad)
    torch.testing.assert_close(influence.up_loss(emb, labels), expected, rtol=1e-7, atol=1e-9)


def test_cg_and_lissa_agree_with_dense_inverse():
    emb, labels, weight, b = random_layer(n=50, c=3, h=4, seed=5)
    op = LastLayerHessian(emb, emb @ weight.T + b, damping=0.2)
    dense = dense_hessian(emb, labels, weight, b, 0.2)
    rhs = torch.randn(op.dim, generator=torch.Generator().manual_seed(6))
    exact = torch.linalg.solve(dense, rhs)

    cg = conjugate_gradient(op.matvec, rhs, tol=1e-12)
    assert cg.converged and cg.iterations <= op.dim
    torch.testing.assert_close(cg.solution, exact, rtol=1e-9, atol=1e-10)

    torch.testing.assert_close(op.diagonal(), torch.diagonal(dense), rtol=1e-12, atol=1e-12)
    jacobi = conjugate_gradient(op.matvec, rhs, tol=1e-12, preconditioner=op.diagonal())
    torch.testing.assert_close(jacobi.solution, exact, rtol=1e-9, atol=1e-10)

    float32 = conjugate_gradient(LastLayerHessian(emb.float(), (emb @ weight.T + b).float(), damping=0.2).matvec,
                                 rhs.float(), tol=1e-8)  # stops at the float32 floor instead of looping
    assert float32.converged and float((float32.solution.double() - exact).norm() / exact.norm()) < 1e-4

    full_batch = lissa(op.matvec, op.stochastic_matvec(torch.Generator(), None), rhs, depth=1000)
    assert float((full_batch.solution - exact).norm() / exact.norm()) < 1e-8

    noisy = lissa(op.matvec, op.stochastic_matvec(torch.Generator().manual_seed(7), 25), rhs, depth=400,
                  repeats=20)
    assert float((noisy.solution - exact).norm() / exact.norm()) < 0.1


def test_cg_rejects_indefinite_operator_and_lissa_detects_divergence():
    matrix = torch.diag(torch.tensor([1.0, -2.0, 3.0]))
    with pytest.raises(ValueError, match="damping"):
        conjugate_gradient(lambda v: matrix @ v, torch.ones(3))
    spd = torch.diag(torch.tensor([1.0, 50.0]))
    with pytest.raises(RuntimeError, match="scale"):
        lissa(lambda v: spd @ v, lambda v: spd @ v, torch.ones(2), depth=200, scale=1.0)


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 4)
        self.classifier = torch.nn.Linear(4, 3)

    def forward(self, x):
        h = torch.tanh(self.hidden(x))
        return self.classifier(h), h


def test_parameter_hessian_matches_autograd_on_all_parameters():
    torch.manual_seed(0)
    net = TinyNet()
    x, y = torch.randn(20, 3), torch.randint(3, (20,))
    batches = [(x[:8], y[:8]), (x[8:], y[8:])]
    damping = 1.0  # the network's Hessian is indefinite: damping makes it positive definite
    op = ParameterHessian(net, torch.nn.functional.cross_entropy, batches, damping=damping)
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]

    def loss_of_flat(theta):
        params, start = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = theta[start:start + shape.numel()].view(shape)
            start += shape.numel()
        return torch.nn.functional.cross_entropy(torch.func.functional_call(net, params, (x,))[0], y)

    theta = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    dense = torch.autograd.functional.hessian(loss_of_flat, theta) + damping * torch.eye(op.dim)
    assert float(torch.linalg.eigvalsh(dense).min()) > 0
    v = torch.randn(op.dim, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(op.matvec(v), dense @ v, rtol=1e-10, atol=1e-10)

    def explicit_gradient(inputs, targets):
        g = torch.autograd.grad(torch.nn.functional.cross_entropy(net(inputs)[0], targets), net.parameters())
        return torch.cat([t.reshape(-1) for t in g])

    grads = op.per_example_gradients(x, y)
    for i in (0, 7, 19):
        torch.testing.assert_close(grads[i], explicit_gradient(x[i:i + 1], y[i:i + 1]))

    x_val, y_val = torch.randn(6, 3), torch.randint(3, (6,))
    influence = ParameterInfluence(op).fit(x_val, y_val, cg_tol=1e-12)
    direction = torch.linalg.solve(dense, 6 * explicit_gradient(x_val, y_val))  # summed validation loss
    expected = -torch.stack([explicit_gradient(x[i:i + 1], y[i:i + 1]) for i in range(20)]) @ direction
    torch.testing.assert_close(influence.up_loss(x, y), expected, rtol=1e-8, atol=1e-10)


def test_all_parameter_influence_equals_last_layer_influence_on_a_linear_model():
    emb, labels, weight, b = random_layer(n=30, c=3, h=4)
    val_emb, val_labels, _, _ = random_layer(n=10, c=3, h=4, seed=3)
    linear = torch.nn.Linear(4, 3)
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(b)
    op = ParameterHessian(linear, torch.nn.functional.cross_entropy, [(emb, labels)], damping=0.1)
    full = ParameterInfluence(op).fit(val_emb, val_labels, cg_tol=1e-12)
    last = LastLayerInfluence(weight, b, emb, emb @ weight.T + b, damping=0.1).fit(val_emb, val_labels, cg_tol=1e-12)
    augmented = emb + 0.3
    torch.testing.assert_close(full.augmentation(emb, augmented, labels), last.augmentation(emb, augmented, labels),
                               rtol=1e-9, atol=1e-10)


# --- actual retraining on a convex model ------------------------------------------------------------
def fit_softmax_regression(x, y, c, l2, sample_weights, theta0=None):
    """Newton's method on mean_w CE + l2/2 |theta|^2 (weights over N), to machine precision."""
    n, d = x.shape

    def objective(theta):
        logits = x @ theta[: c * d].view(c, d).T + theta[c * d:]
        per_example = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        return (sample_weights * per_example).sum() / n + 0.5 * l2 * (theta ** 2).sum()

    theta = torch.zeros(c * (d + 1)) if theta0 is None else theta0.clone()
    for _ in range(50):
        grad = torch.func.grad(objective)(theta)
        if float(grad.norm()) < 1e-12:
            break
        theta = theta - torch.linalg.solve(torch.func.hessian(objective)(theta), grad)
    return theta


def val_loss(theta, x, y, c):
    d = x.shape[1]
    return float(torch.nn.functional.cross_entropy(x @ theta[: c * d].view(c, d).T + theta[c * d:], y,
                                                   reduction="sum"))


def pearson(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def convex_problem(seed=0, n=80, d=4, c=3):
    g = torch.Generator().manual_seed(seed)
    centers = 1.5 * torch.randn(c, d, generator=g)
    y = torch.randint(c, (n,), generator=g)
    x = centers[y] + torch.randn(n, d, generator=g)
    y_val = torch.randint(c, (40,), generator=g)
    x_val = centers[y_val] + 1.3 * torch.randn(40, d, generator=g)
    return x, y, x_val, y_val, g


def fitted_influence(x, y, x_val, y_val, c, l2):
    theta = fit_softmax_regression(x, y, c, l2, torch.ones(len(x)))
    d = x.shape[1]
    weight, bias = theta[: c * d].view(c, d), theta[c * d:]
    influence = LastLayerInfluence(weight, bias, x, x @ weight.T + bias, damping=l2).fit(x_val, y_val)
    return theta, influence


def test_influence_predicts_leave_one_out_retraining():
    c, l2 = 3, 0.01
    x, y, x_val, y_val, _ = convex_problem()
    theta, influence = fitted_influence(x, y, x_val, y_val, c, l2)
    base = val_loss(theta, x_val, y_val, c)
    actual = []
    for i in range(len(x)):
        weights = torch.ones(len(x))
        weights[i] = 0.0  # removal = up-weighting by -1/N with N kept in the mean
        actual.append(val_loss(fit_softmax_regression(x, y, c, l2, weights, theta), x_val, y_val, c) - base)
    predicted = -influence.up_loss(x, y) / len(x)
    assert pearson(predicted, torch.tensor(actual)) > 0.95


def test_augmentation_influence_predicts_replace_one_retraining():
    c, l2 = 3, 0.01
    x, y, x_val, y_val, g = convex_problem(seed=1)
    theta, influence = fitted_influence(x, y, x_val, y_val, c, l2)
    base = val_loss(theta, x_val, y_val, c)
    augmented = x + 0.4 * torch.randn(x.shape, generator=g)  # a small, label-preserving perturbation
    actual = []
    for i in range(len(x)):
        x_replaced = x.clone()
        x_replaced[i] = augmented[i]
        actual.append(val_loss(fit_softmax_regression(x_replaced, y, c, l2, torch.ones(len(x)), theta),
                               x_val, y_val, c) - base)
    predicted = influence.augmentation(x, augmented, y) / len(x)
    assert pearson(predicted, torch.tensor(actual)) > 0.95


def test_clear_errors():
    emb, labels, weight, b = random_layer()
    with pytest.raises(ValueError, match="damping"):
        LastLayerHessian(emb, emb @ weight.T, damping=-1.0)
    with pytest.raises(ValueError, match="expected \\(N, 6\\)"):
        LastLayerInfluence(weight, b, emb[:, :3], emb @ weight.T)
    influence = LastLayerInfluence(weight, b, emb, emb @ weight.T + b)
    with pytest.raises(RuntimeError, match="fit"):
        influence.up_loss(emb, labels)
    with pytest.raises(ValueError, match="solver"):
        influence.fit(emb, labels, solver="newton")
    with pytest.raises(ValueError, match="validation labels: expected shape \\(40,\\)"):
        influence.fit(emb, labels[:5])
    with pytest.raises(ValueError, match="must lie in \\[0, 4\\)"):
        influence.fit(emb, labels + 4)
    with pytest.raises(ValueError, match="NaN"):
        LastLayerInfluence(weight, b, emb, torch.full((len(emb), 4), float("nan")))
    with pytest.raises(ValueError, match="meta"):
        LastLayerInfluence(weight, b, emb.to("meta"), (emb @ weight.T).to("meta"))
    with pytest.raises(ValueError, match="flat vector of length"):
        LastLayerHessian(emb, emb @ weight.T + b).matvec(torch.ones(3))
