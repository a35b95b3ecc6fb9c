"""bench/gpu_model.py: the performance model behind predicted_ms and docs/gpu.md's predicted-time table.

The model is a prediction, so these tests check that it computes what its docstring states (a step
worked by hand, the candidate counts against a plain loop and the op's sample-size rule), that it is
consistent (no prediction below its floor), and that docs/gpu.md shows its current output."""
import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_model", ROOT / "bench" / "gpu_model.py")
gpu_model = importlib.util.module_from_spec(_spec)
sys.modules["gpu_model"] = gpu_model  # dataclasses resolve the module by name
_spec.loader.exec_module(gpu_model)


def test_docs_show_the_models_current_table():
    docs = (ROOT / "docs" / "gpu.md").read_text()
    assert gpu_model.markdown_table(gpu_model.H100) in docs


def test_sample_size_follows_the_ops_rule():
    """ceil(n / k ln(1/eps)) clamped to [1, n] (csrc/facility_location/plan.h), worked by hand."""
    assert gpu_model.sample_size(5_000, 500, 0.01) == 47  # 10 x 4.605... = 46.05 -> 47
    assert gpu_model.sample_size(5_000, 2_500, 0.01) == 10
    assert gpu_model.sample_size(1_281, 128, 0.01) == 47
    assert gpu_model.sample_size(10, 10, 1e-300) == 10  # clamped to n
    assert gpu_model.sample_size(10, 5, 0.9) == 1       # ceil(0.21) = 1


@pytest.mark.parametrize("method", ["naive", "lazy", "stochastic"])
def test_candidate_counts_against_a_plain_loop(method):
    n, k = 300, 40
    s = math.ceil(n / k * math.log(100))
    want = []
    remaining = n
    for _ in range(k):
        want.append(min(remaining, s) if method == "stochastic" else remaining)
        remaining -= 1
    assert gpu_model.candidate_counts(n, k, method) == want


def test_one_greedy_step_as_the_docstring_states():
    """n = 256, one candidate, global rows at 600 cycles: one task of 8 dependent iterations
    (600 + 35) plus its 425-cycle tail, one selection (1,000), one commit iteration (600 + 600 + 35)."""
    assert gpu_model.greedy_step_cycles(256, 1, False, 600, 30) == 8 * 635 + 425 + 1_000 + 1_235
    # stochastic adds one round of draws (280) and one swap of 3 shared latencies (90)
    assert gpu_model.greedy_step_cycles(256, 1, True, 600, 30) == 8 * 635 + 425 + 1_000 + 1_235 + 280 + 90


@pytest.mark.parametrize("gpu", [gpu_model.H100, gpu_model.H200], ids=lambda g: g.name)
def test_no_prediction_below_its_floor(gpu):
    for scenario, pct in gpu_model.TABLE_ROWS:
        for method in ("stochastic", "lazy"):
            p = gpu_model.predict(scenario, pct, method, gpu)
            assert p["floor_ms"] <= p["restructured_ms"] <= p["total_ms"], (scenario, pct, method, p)
            assert p["floor_ms"] <= p["restructured_blocked_ms"] <= p["restructured_ms"], (scenario, pct, method)
            assert p["blocked_similarity_ms"] <= p["similarity_ms"]
            assert p["total_ms"] >= p["proxies_ms"] + p["similarity_ms"] + p["greedy_ms"]


def test_the_model_picks_the_gpu_by_name():
    assert gpu_model.gpu_for_device_name("NVIDIA H200") is gpu_model.H200
    assert gpu_model.gpu_for_device_name("NVIDIA H100 80GB HBM3") is gpu_model.H100


def test_blocked_tiles_model_at_imagenet_d1000():
    """The register-blocked tiles as built (64 threads of 4 x 4 pairs, 8 shared loads and 48 FP32 operations
    a warp a feature): issue-bound at 56 / 48 of the FP32 pipe; v1's tiles shared-load-bound at 40 / 24."""
    gpu = gpu_model.H100
    sc = gpu_model.SCENARIOS["imagenet"]
    n, d = sc.n // sc.classes, sc.dim
    tiles = sc.classes * (-(-n // 32)) * (-(-n // 32) + 1) // 2
    exp = gpu_model.EXP_INSTRUCTIONS
    blocked_cycles = tiles * 2 * (48 * d + 16 * exp + 8 * d) / 4 / gpu.sms  # 2 warps, issue slots
    v1_cycles = tiles * 8 * 5 * d / gpu.sms  # 8 warps, one shared load a clock
    assert gpu_model.similarity_seconds(sc, gpu, "blocked") == pytest.approx(blocked_cycles / gpu.clock_hz)
    assert gpu_model.similarity_seconds(sc, gpu) == pytest.approx(v1_cycles / gpu.clock_hz)
