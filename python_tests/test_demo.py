"""The demo's paired comparison: its verdict follows from the numbers (canned per-seed
results, checked against scipy's paired t interval and a brute-force signed-rank test),
its runs are paired (same initial model, same batch order), and its plot and one-seed mode."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from augcore.apps.demo import (CONFIDENCE, MIN_SEEDS_FOR_A_VERDICT, PLOT_NAME, DemoSettings, compare_paired,
                                plot_per_seed, run_demo)

# final test top-1 (%) per seed, as the digits test set gives them (multiples of 100/360)
RANDOM = [74.17, 75.0, 73.89, 76.11, 72.78, 77.5, 74.44, 75.28]
CORESET_AHEAD = [80.28, 77.5, 81.11, 79.44, 83.61, 78.89, 80.0, 82.22]


def brute_force_signed_rank_p(differences):
    """Two-sided p of the signed-rank statistic by enumerating every sign pattern (no ties, no zeros)."""
    magnitudes = np.abs(np.asarray(differences, dtype=np.float64))
    ranks = stats.rankdata(magnitudes)
    observed = ranks[np.asarray(differences) > 0].sum()
    centre = ranks.sum() / 2
    sums = [sum(r for r, positive in zip(ranks, signs) if positive)
            for signs in itertools.product((False, True), repeat=len(ranks))]
    return sum(abs(s - centre) >= abs(observed - centre) - 1e-9 for s in sums) / len(sums)


def test_ahead_when_every_seed_gains():
    result = compare_paired(CORESET_AHEAD, RANDOM)
    assert result.verdict == "ahead" and result.seeds_ahead == 8 and result.seeds_behind == 0
    assert result.sentence("at 5%").startswith("coreset ahead of random at 5%:")
    # the paired interval is scipy's
    expected = stats.ttest_rel(CORESET_AHEAD, RANDOM).confidence_interval(CONFIDENCE)
    assert (result.ci_low, result.ci_high) == pytest.approx((expected.low, expected.high), abs=1e-9)
    assert result.mean == pytest.approx(np.mean(np.subtract(CORESET_AHEAD, RANDOM)), abs=1e-9)
    assert result.ci_low > 0 and result.p_value < 1 - CONFIDENCE


def test_behind_is_the_mirror_image():
    ahead, behind = compare_paired(CORESET_AHEAD, RANDOM), compare_paired(RANDOM, CORESET_AHEAD)
    assert behind.verdict == "behind" and behind.sentence("at 10%").startswith("coreset behind random at 10%:")
    assert (behind.ci_low, behind.ci_high, behind.mean) == pytest.approx((-ahead.ci_high, -ahead.ci_low, -ahead.mean))
    assert behind.p_value == pytest.approx(ahead.p_value)


def test_mixed_gains_are_not_distinguishable():
    coreset = [r + d for r, d in zip(RANDOM, [3.1, -2.2, 0.8, -4.4, 1.9, -0.6, 2.5, -1.3])]
    result = compare_paired(coreset, RANDOM)
    assert result.verdict == "not distinguishable" and result.ci_low < 0 < result.ci_high
    sentence = result.sentence("at 30%")
    assert "not distinguishable from random at 30% at this number of seeds (8)" in sentence
    # no ties and no zeros: the signed-rank p is the exact one, as enumerating all 2^8 sign patterns
    assert result.p_value == pytest.approx(brute_force_signed_rank_p(result.differences), abs=1e-12)


def test_both_tests_must_agree():
    # all five seeds ahead: the t interval excludes zero, but a signed-rank test on five seeds
    # cannot go below p = 2 / 2**5 = 0.0625, so no verdict yet, and the sentence says why
    five = compare_paired(CORESET_AHEAD[:5], RANDOM[:5])
    assert five.ci_low > 0 and five.p_value == pytest.approx(0.0625)
    assert five.verdict == "not distinguishable" and MIN_SEEDS_FOR_A_VERDICT == 6
    assert f"needs {MIN_SEEDS_FOR_A_VERDICT} seeds or more" in five.sentence("at 5%")
    # eleven small gains and one large loss: the ranks say ahead, the mean does not
    differences = [1.11 + 0.01 * s for s in range(11)] + [-30.0]
    outlier = compare_paired([70.0 + d for d in differences], [70.0] * 12)
    assert outlier.p_value < 1 - CONFIDENCE and outlier.ci_low < 0
    assert outlier.verdict == "not distinguishable"
    assert outlier.p_value == pytest.approx(brute_force_signed_rank_p(outlier.differences), abs=1e-12)


def test_one_seed_says_no_test_is_possible():
    result = compare_paired([75.0], [70.0])
    assert result.verdict == "no test" and result.mean == 5.0 and math.isnan(result.ci_low)
    assert "no test is possible with one seed" in result.sentence("at 5%")
    assert result.to_dict("at 5%")["ci_low"] is None   # JSON has no NaN


def test_equal_results_are_not_distinguishable():
    result = compare_paired([75.0, 70.0, 80.0], [75.0, 70.0, 80.0])
    assert result.verdict == "not distinguishable" and result.p_value == 1.0 and result.ci_low == result.ci_high == 0


@pytest.mark.parametrize("coreset, random, error, word", [
    ([75.0, 76.0], [70.0], ValueError, "one result per seed"),
    ([], [], ValueError, "one result per seed"),
    ([75.0, float("nan")], [70.0, 71.0], ValueError, "coreset[1]"),
    ([75.0, 76.0], [70.0, "71"], TypeError, "random[1]"),
])
def test_bad_results_are_refused(coreset, random, error, word):
    with pytest.raises(error, match=word.replace("[", r"\[").replace("]", r"\]")):
        compare_paired(coreset, random)


def _trainer(method: str, seed: int):
    from augcore.train.config import config_from_dict
    from augcore.apps.repro import ReproSettings, run_config
    from augcore.train.trainer import Trainer

    settings = ReproSettings(protocol="table1", budgets=(0.05,), epochs=1, num_threads=1, keep_runs=False)
    return Trainer(config_from_dict(run_config(settings, method, 0.05, seed)), out_dir=None)


def test_a_seed_gives_both_methods_the_same_model_and_batch_order():
    random_run, coreset_run, other_seed = _trainer("random", 0), _trainer("coreset", 0), _trainer("random", 1)
    random_init, coreset_init = random_run.model.state_dict(), coreset_run.model.state_dict()
    assert all(torch.equal(random_init[k], coreset_init[k]) for k in random_init)
    assert not all(torch.equal(random_init[k], v) for k, v in other_seed.model.state_dict().items())
    orders = []
    for run in (random_run, coreset_run, other_seed):
        run.policy.begin_epoch(0)
        orders.append([list(batch) for batch in run._loader(run.policy.view, 0).sampler])
    # the subsets differ (that is the comparison) but the positions come in the same order
    assert not torch.equal(random_run.selection.indices.sort().values, coreset_run.selection.indices.sort().values)
    assert orders[0] == orders[1] and orders[0] != orders[2]


def test_plot_has_a_point_per_seed(tmp_path):
    random, coreset = [72.5, 75.0, 73.3], [78.1, 74.2, 80.0]
    cells = {"random@0.05": {"method": "random", "budget": 0.05, "top1": random, "top1_mean": np.mean(random)},
             "coreset@0.05": {"method": "coreset", "budget": 0.05, "top1": coreset, "top1_mean": np.mean(coreset)}}
    report = {"parts": {"table1": {"cells": cells}},
              "comparisons": {"table1": {"0.05": compare_paired(coreset, random).to_dict("at 5%")}}}
    path = tmp_path / PLOT_NAME
    plot_per_seed(report, str(path), title="canned")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == [PLOT_NAME]
    import matplotlib.image
    assert matplotlib.image.imread(str(path)).shape[2] in (3, 4)


def test_one_seed_demo_runs_and_says_no_test_is_possible(tmp_path, capsys):
    report = run_demo(DemoSettings(out=str(tmp_path), seeds=1, subset_fractions=(0.05,), subset_epochs=1,
                                   parts=("table1",), workers=1, progress=False))
    printed = capsys.readouterr().out
    assert "no test is possible with one seed" in printed and f"plot: {tmp_path / PLOT_NAME}" in printed
    assert "selection column" in printed and "coreset - random" not in printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["comparisons"]["table1"]["0.05"]["verdict"] == "no test"
    assert summary == json.loads(json.dumps(report, default=str))
