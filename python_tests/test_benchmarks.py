"""augcore bench (augcore.apps.benchmarks): options reach the runner, peers are optional, objectives are checked."""
import importlib.util
import json

import numpy as np
import pytest

from augcore.apps import benchmarks
from augcore.apps.cli import main


@pytest.fixture
def hide(monkeypatch):
    """hide("apricot", ...) makes those modules look uninstalled to the runner."""
    real = importlib.util.find_spec

    def install(*names):
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in names else real(name, *a))
    return install


def rows_by_method(result, fraction=0.1):
    return {r["method"]: r for r in result["rows"] if r["fraction"] == fraction}


def test_against_submodlib_with_apricot_missing(hide):
    pytest.importorskip("submodlib")
    hide("apricot")
    result = benchmarks.run_benchmark(points=600, large_n=2000, out=lambda line: None)
    assert result["reference"] == benchmarks.REFERENCE
    assert {r["fraction"] for r in result["rows"]} == {0.1, 0.3, 0.5}
    rows = rows_by_method(result)
    for name in ("apricot lazy", "apricot stochastic"):
        assert rows[name]["skipped"] == "skipped: apricot not installed (pip install apricot-select)"
        assert rows[name]["seconds"] is None
    for fraction in (0.1, 0.3, 0.5):
        rows = rows_by_method(result, fraction)
        # augcore's lazy greedy and submodlib's LazyGreedy are both exact greedy on the same objective
        assert rows["augcore lazy"]["objective_vs_reference"] == pytest.approx(1.0, abs=1e-6)
        assert 0.98 < rows["augcore stochastic"]["objective_vs_reference"] <= 1.0 + 1e-6
    (on_the_fly,) = [r for r in result["rows"] if r["method"].startswith("augcore on-the-fly, one group of 2000")]
    assert on_the_fly["peak_rss_mib"] > 0


def test_without_any_peer_the_reference_is_augcore_lazy(hide):
    hide("apricot", "submodlib")
    lines = []
    result = benchmarks.run_benchmark(quick=True, points=600, out=lines.append)
    rows = rows_by_method(result)
    assert result["reference"] == "augcore lazy"
    assert rows["augcore lazy"]["objective_vs_reference"] == 1.0 and rows["augcore lazy"]["speedup_vs_reference"] == 1.0
    assert rows[benchmarks.REFERENCE]["skipped"].startswith("skipped: submodlib not installed")
    assert any("reference: augcore lazy (skipped: submodlib not installed" in line for line in lines)


def test_the_cli_passes_its_options_through(hide, tmp_path, capsys):
    hide("apricot", "submodlib")
    assert main(["bench", "--quick", "--points", "300", "--json", str(tmp_path / "rows.json")]) == 0
    saved = json.loads((tmp_path / "rows.json").read_text())
    assert saved["info"]["points"] == 300 and {r["fraction"] for r in saved["rows"]} == {0.1}
    assert not any(r["method"].startswith("apricot") for r in saved["rows"])   # --quick leaves apricot out
    assert "| 10% | augcore lazy |" in capsys.readouterr().out


def test_too_few_points_is_refused():
    with pytest.raises(ValueError, match="points must be at least 100 .* got 50"):
        benchmarks.run_benchmark(quick=True, points=50, out=lambda line: None)


def test_float64_objective_matches_a_brute_force_sum():
    rng = np.random.default_rng(0)
    points, labels = rng.normal(size=(40, 3)), np.arange(40) % 2
    picks = np.array([0, 5, 1])
    brute = 0.0
    for i in range(40):
        same = [j for j in picks if labels[j] == labels[i]]
        brute += max(np.exp(-np.linalg.norm(points[i] - points[j]) / 3) for j in same)
    # the expanded |x|^2 + |y|^2 - 2 x.y form leaves ~1e-16 of d^2 at a pick itself: ~1e-8 after the sqrt
    assert benchmarks.float64_objective(points, labels, picks) == pytest.approx(brute, rel=1e-7)


def test_bench_triton_smoke_runs_and_matches_the_cpu_op(tmp_path):
    """bench/bench_triton.py --smoke: every row times both backends on the same inputs, reports their
    ratio and finds the results equal. Without a GPU it runs Triton's interpreter: a run check only."""
    pytest.importorskip("triton")
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, "bench/bench_triton.py", "--smoke", "--json", str(out)], cwd=root,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())
    assert {(r["method"], r["budget_pct"]) for r in rows} == {("stochastic", 10), ("lazy", 10)}
    for r in rows:
        assert r["equal"] is True and r["triton_ms"] > 0 and r["cpu_ms"] > 0
        assert r["cpu_over_triton"] == pytest.approx(r["cpu_ms"] / r["triton_ms"])
        assert r["interpreted"] == (r["device"] == "cpu")
    assert "triton: ok" in proc.stdout
