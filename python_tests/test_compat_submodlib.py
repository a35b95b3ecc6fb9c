"""augcore.compat.submodlib against the real submodlib on the inputs submodlib's own tests use
(make_blobs points, euclidean/cosine/dot kernels, user kernels), ties included."""
import numpy as np
import pytest

submodlib = pytest.importorskip("submodlib")
from sklearn.datasets import make_blobs  # noqa: E402

from augcore.compat import submodlib as compat  # noqa: E402

DETERMINISTIC = ("NaiveGreedy", "LazyGreedy")


def both(optimizer, budget, **kwargs):
    """(submodlib's list, augcore's list) for the same constructor arguments."""
    ref = submodlib.FacilityLocationFunction(**kwargs).maximize(budget=budget, optimizer=optimizer,
                                                                 show_progress=False)
    ours = compat.FacilityLocationFunction(**kwargs).maximize(budget=budget, optimizer=optimizer)
    return ref, ours


def assert_same(ref, ours, rtol=1e-4):
    assert [i for i, _ in ours] == [i for i, _ in ref]
    np.testing.assert_allclose([g for _, g in ours], [g for _, g in ref], rtol=rtol, atol=1e-6)


def blobs(n=300, features=5, seed=0):
    x, _ = make_blobs(n_samples=n, centers=6, n_features=features, cluster_std=2.0, random_state=seed)
    return x.astype(np.float32)


@pytest.mark.parametrize("optimizer", DETERMINISTIC)
@pytest.mark.parametrize("metric", ["euclidean", "cosine", "dot"])
def test_same_picks_and_gains_from_data(metric, optimizer):
    x = blobs()
    ref, ours = both(optimizer, 40, n=len(x), mode="dense", data=x, metric=metric)
    # dot kernels reach ~1e2 per entry: float32 sums differ from submodlib's double ones by ~1e-5 relative
    assert_same(ref, ours, rtol=1e-4 if metric != "dot" else 1e-3)


def duplicated_kernel(m=50, seed=1):
    """A random asymmetric kernel over m items, each present twice (rows and columns):
    the two copies of an item are candidates of exactly equal gain at every step, and
    once every item has a copy picked all gains are 0."""
    rng = np.random.RandomState(seed)
    copies = np.repeat(np.arange(m), 2)
    return rng.rand(m, m).astype(np.float32)[np.ix_(copies, copies)]


@pytest.mark.parametrize("optimizer", DETERMINISTIC)
def test_ties_between_duplicates(optimizer):
    sijs = duplicated_kernel()
    ref, ours = both(optimizer, 80, n=100, mode="dense", separate_rep=False, sijs=sijs)
    assert_same(ref, ours)
    assert sum(g == 0.0 for _, g in ref) > 0  # the all-zero tail was exercised


@pytest.mark.parametrize("optimizer", DETERMINISTIC)
def test_ties_between_duplicated_points(optimizer):
    x = np.repeat(blobs(n=150, features=8), 2, axis=0)
    ref, ours = both(optimizer, 30, n=300, mode="dense", data=x, metric="euclidean")
    assert_same(ref, ours)


@pytest.mark.parametrize("optimizer", DETERMINISTIC)
def test_user_kernel_rows_are_points_and_negative_entries_never_count(optimizer):
    rng = np.random.RandomState(3)
    sijs = (rng.rand(120, 120) - 0.2).astype(np.float32)  # asymmetric, some negative
    ref, ours = both(optimizer, 30, n=120, mode="dense", separate_rep=False, sijs=sijs)
    assert_same(ref, ours)


@pytest.mark.parametrize("optimizer", DETERMINISTIC)
def test_constant_kernel_all_ties(optimizer):
    ref, ours = both(optimizer, 7, n=9, mode="dense", separate_rep=False, sijs=np.ones((9, 9), np.float32))
    assert_same(ref, ours)


def test_sijs_matches_submodlibs_kernel():
    x = blobs(n=80)
    for metric in ("euclidean", "cosine", "dot"):
        ref = submodlib.FacilityLocationFunction(n=80, mode="dense", data=x, metric=metric).sijs
        ours = compat.FacilityLocationFunction(n=80, mode="dense", data=x, metric=metric).sijs
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
        if metric == "euclidean":  # the reference preset's kernel: the same float32 values, not just close
            assert np.array_equal(ours, ref)


def test_zero_vectors_under_cosine():
    x = blobs(n=40)
    x[[3, 17]] = 0.0
    ref, ours = both("NaiveGreedy", 10, n=40, mode="dense", data=x, metric="cosine")
    assert_same(ref, ours)


@pytest.mark.parametrize("optimizer", DETERMINISTIC)
@pytest.mark.parametrize("scale", [1.0, 100.0, 1e-3])
def test_stop_if_zero_gain_stops_where_submodlib_does(scale, optimizer):
    """submodlib stops before the first gain below 1 (see the module docstring): with this
    kernel after a few picks at scale 1, at once at 1e-3, before the all-zero tail at 100."""
    kwargs = dict(n=100, mode="dense", separate_rep=False, sijs=duplicated_kernel() * np.float32(scale))
    ref = submodlib.FacilityLocationFunction(**kwargs).maximize(budget=80, optimizer=optimizer,
                                                                stopIfZeroGain=True, show_progress=False)
    ours = compat.FacilityLocationFunction(**kwargs).maximize(budget=80, optimizer=optimizer,
                                                              stopIfZeroGain=True)
    assert len(ref) < 50
    assert_same(ref, ours)


@pytest.mark.parametrize("optimizer", ["StochasticGreedy", "LazierThanLazyGreedy"])
def test_stochastic_optimizers_reach_the_greedy_objective(optimizer):
    """A different random stream from submodlib's, so not the same picks: the picks are
    distinct, each gain is the true marginal gain, and the value is near naive greedy's."""
    x = blobs(n=400)
    obj = compat.FacilityLocationFunction(n=400, mode="dense", data=x, metric="euclidean")
    picks = obj.maximize(budget=40, optimizer=optimizer, epsilon=0.01)
    idx = [i for i, _ in picks]
    assert len(set(idx)) == 40
    s = obj.sijs.astype(np.float64)
    best = np.zeros(400)
    for i, gain in picks:
        true_gain = np.maximum(s[:, i] - best, 0).sum()
        assert gain == pytest.approx(true_gain, rel=1e-4)
        best = np.maximum(best, s[:, i])
    greedy = submodlib.FacilityLocationFunction(n=400, mode="dense", data=x, metric="euclidean").maximize(
        budget=40, optimizer="NaiveGreedy", show_progress=False)
    assert best.sum() >= 0.97 * sum(g for _, g in greedy)


def test_last_result_carries_weights_and_medoids():
    x = blobs(n=100)
    obj = compat.FacilityLocationFunction(n=100, mode="dense", data=x, metric="euclidean")
    picks = obj.maximize(budget=10, optimizer="LazyGreedy")
    s = obj.sijs
    order = np.array([i for i, _ in picks])
    medoid = order[np.argmax(s[:, order], axis=1)]  # the seed code's weights, from sijs
    assert obj.last_result.assignment.numpy().tolist() == medoid.tolist()
    assert obj.last_result.weights.numpy().tolist() == [int((medoid == i).sum()) for i in order]


def test_unsupported_arguments_are_named():
    x = blobs(n=30)
    base = dict(n=30, mode="dense", data=x, metric="euclidean")
    for name, value in (("num_neighbors", 5), ("cluster_labels", [0] * 30), ("n_rep", 3)):
        with pytest.raises(ValueError, match=name):
            compat.FacilityLocationFunction(**{**base, name: value})
    with pytest.raises(ValueError, match="separate_rep"):
        compat.FacilityLocationFunction(**base, separate_rep=True, n_rep=3)
    with pytest.raises(ValueError, match="mode='sparse'"):
        compat.FacilityLocationFunction(**{**base, "mode": "sparse"})
    with pytest.raises(ValueError, match="metric"):
        compat.FacilityLocationFunction(**{**base, "metric": "rbf"})
    with pytest.raises(ValueError, match="data .* or sijs"):
        compat.FacilityLocationFunction(n=30, mode="dense")
    with pytest.raises(ValueError, match="30 rows but n=31"):
        compat.FacilityLocationFunction(**{**base, "n": 31})
    obj = compat.FacilityLocationFunction(**base)
    with pytest.raises(ValueError, match="budget must be less than"):
        obj.maximize(budget=30)
    with pytest.raises(ValueError, match="optimizer"):
        obj.maximize(budget=3, optimizer="Greedy")
    with pytest.raises(ValueError, match="costs"):
        obj.maximize(budget=3, costs=[1.0] * 30)
    with pytest.raises(ValueError, match="costSensitiveGreedy"):
        obj.maximize(budget=3, costSensitiveGreedy=True)
    with pytest.raises(ValueError, match="epsilon"):
        obj.maximize(budget=3, optimizer="StochasticGreedy", epsilon=2)
    bad = x.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        compat.FacilityLocationFunction(**{**base, "data": bad})
