"""augcore.compat.apricot against the real apricot on the input apricot's own tests use
(scikit-learn's digits: integer pixels, so exact ties in gain), plus precomputed kernels."""
import numpy as np
import pytest

apricot = pytest.importorskip("apricot")
from sklearn.datasets import load_digits  # noqa: E402

from augcore.compat import apricot as compat  # noqa: E402

DIGITS = load_digits().data[:900]  # apricot's test data (first half: keeps the test quick)


def fit_both(x, k, **kwargs):
    return (apricot.FacilityLocationSelection(k, **kwargs).fit(x),
            compat.FacilityLocationSelection(k, **kwargs).fit(x))


def assert_same(ref, ours, rtol=1e-5):
    assert ours.ranking.tolist() == ref.ranking.tolist()
    assert ours.ranking.dtype == np.int64 and ours.gains.dtype == np.float64
    np.testing.assert_allclose(ours.gains, ref.gains, rtol=rtol)


@pytest.mark.parametrize("optimizer", ["naive", "lazy", "two-stage"])
@pytest.mark.parametrize("metric", ["cosine", "corr"])
def test_digits_cosine_and_correlation(metric, optimizer):
    assert_same(*fit_both(DIGITS, 60, metric=metric, optimizer=optimizer))


def test_digits_euclidean_naive_with_exact_ties():
    """Squared distances of integer pixels are integers: equal gains occur (gains here are exact)."""
    ref, ours = fit_both(DIGITS, 100, metric="euclidean", optimizer="naive")
    assert_same(ref, ours, rtol=0)
    assert len(set(ref.gains.tolist())) < 100  # some gains repeat exactly


@pytest.mark.parametrize("k", [100, 400])
@pytest.mark.parametrize("duplicated", [False, True])
def test_lazy_settles_exact_ties_like_apricots_queue(k, duplicated):
    """apricot's lazy queue settles exact ties on the first element it re-evaluates,
    which is not always naive's smaller index: the drop-in follows the queue."""
    x = np.repeat(DIGITS[:k + 50], 2, axis=0) if duplicated else DIGITS
    ref, ours = fit_both(x, k, metric="euclidean", optimizer="lazy")
    assert_same(ref, ours, rtol=0)
    naive = apricot.FacilityLocationSelection(k, metric="euclidean", optimizer="naive").fit(x)
    if k == 400 and not duplicated:  # a case where apricot's lazy and naive part ways
        assert naive.ranking.tolist() != ref.ranking.tolist()


def test_zero_gains_never_repeat_a_pick():
    """Past full coverage apricot's lazy queue can pick an element twice; the drop-in
    matches it up to there and then picks distinct zero-gain elements."""
    x = np.repeat(DIGITS[:250], 2, axis=0)
    ref, ours = fit_both(x, 400, metric="euclidean", optimizer="lazy")
    covered = int(np.argmax(ref.gains == 0))
    assert covered > 0 and ours.ranking[:covered].tolist() == ref.ranking[:covered].tolist()
    assert len(set(ours.ranking.tolist())) == 400 and np.all(ours.gains[covered:] == 0)


def test_float32_gradient_proxies_match_apricot():
    """The benchmark's input: float32 proxies softmax - onehot, whose distances sklearn
    computes in float64 and rounds to float32, and pairs of points that tie exactly."""
    rng = np.random.RandomState(0)
    logits = rng.randn(1500, 10).astype(np.float32) * 3
    e = np.exp(logits - logits.max(1, keepdims=True))
    x = (e / e.sum(1, keepdims=True)).astype(np.float32)
    x[:, 0] -= 1.0
    for optimizer in ("naive", "lazy"):
        assert_same(*fit_both(x, 300, metric="euclidean", optimizer=optimizer), rtol=1e-12)


def test_duplicated_points_tie_at_every_step():
    x = np.repeat(DIGITS[:150], 2, axis=0)
    assert_same(*fit_both(x, 200, metric="euclidean", optimizer="naive"), rtol=0)


@pytest.mark.parametrize("optimizer", ["naive", "lazy"])
def test_precomputed_rows_are_candidates(optimizer):
    rng = np.random.RandomState(0)
    sim = rng.rand(200, 200)  # asymmetric: row j holds candidate j's similarity to every point
    assert_same(*fit_both(sim, 30, metric="precomputed", optimizer=optimizer))


def test_other_sklearn_metrics_use_max_minus_distance():
    assert_same(*fit_both(DIGITS[:300], 25, metric="manhattan", optimizer="naive"))


def test_transform_and_fit_transform():
    y = load_digits().target[:900]
    ref, ours = fit_both(DIGITS, 20, metric="cosine", optimizer="lazy")
    for a, b in zip(ref.transform(DIGITS, y), ours.transform(DIGITS, y)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours.subset, ref.subset)
    fitted = compat.FacilityLocationSelection(20, metric="cosine").fit_transform(DIGITS)
    np.testing.assert_array_equal(fitted, DIGITS[ref.ranking])


def test_stochastic_is_seeded_and_near_greedy():
    ours = compat.FacilityLocationSelection(40, metric="euclidean", optimizer="stochastic", random_state=3,
                                            optimizer_kwds={"epsilon": 0.1}).fit(DIGITS)
    again = compat.FacilityLocationSelection(40, metric="euclidean", optimizer="stochastic", random_state=3,
                                             optimizer_kwds={"epsilon": 0.1}).fit(DIGITS)
    assert ours.ranking.tolist() == again.ranking.tolist()
    assert len(set(ours.ranking.tolist())) == 40
    greedy = apricot.FacilityLocationSelection(40, metric="euclidean", optimizer="naive").fit(DIGITS)
    assert ours.gains.sum() >= 0.97 * greedy.gains.sum()


def test_unsupported_arguments_are_named():
    for kwargs, name in (({"initial_subset": [1, 2]}, "initial_subset"), ({"n_neighbors": 5}, "n_neighbors"),
                         ({"optimizer": "greedi"}, "greedi"), ({"optimizer_kwds": {"beta": 0.5}}, "beta"),
                         ({"max_reservoir_size": 10}, "max_reservoir_size")):
        with pytest.raises(ValueError, match=name):
            compat.FacilityLocationSelection(5, **kwargs)
    with pytest.raises(ValueError, match="n_first_selections"):
        compat.FacilityLocationSelection(5, optimizer="two-stage", optimizer_kwds={"n_first_selections": 3})
    compat.FacilityLocationSelection(5, optimizer="two-stage", optimizer_kwds={"optimizer1": "naive"})  # default
    with pytest.raises(ValueError, match="float32"):
        compat.FacilityLocationSelection(2).fit(np.array([[1e39, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="n_samples must be a positive"):
        compat.FacilityLocationSelection(0)
    with pytest.raises(ValueError, match="sample_cost"):
        compat.FacilityLocationSelection(5).fit(DIGITS[:20], sample_cost=np.ones(20))
    with pytest.raises(ValueError, match="Cannot select more"):
        compat.FacilityLocationSelection(30).fit(DIGITS[:20])
    with pytest.raises(ValueError, match="negative"):
        compat.FacilityLocationSelection(3, metric="precomputed").fit(-np.eye(5) + 0.5)
    with pytest.raises(ValueError, match="square"):
        compat.FacilityLocationSelection(3, metric="precomputed").fit(np.ones((5, 4)))
    with pytest.raises(ValueError, match="sparse"):
        import scipy.sparse
        compat.FacilityLocationSelection(3, metric="precomputed").fit(scipy.sparse.csr_matrix(np.ones((5, 5))))
