"""bench/gpu_check.sh --dry-run: the one-call GPU check prints its plan, runs every log parser
(ptxas, SASS, compute-sanitizer summaries, bench table) on canned logs with the verdict each must
give, runs the sanitizer driver on the CPU and the scenarios' launch plans, exit 0; $OUT gets
exactly the summary and one archive."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from augcore.ops import facility_location

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable)
    proc = subprocess.run(["bash", "bench/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for step in ("build", "tests", "memcheck", "racecheck", "synccheck", "bench_cifar", "bench_imagenet"):
        assert f"  {step} " in out
    assert "sanitizer driver runs on the CPU" in out
    assert "report ptxas ptxas_spills.log: ptxas: 1 kernels, 1 with spills: FAIL" in out
    assert "report sanitizer synccheck_cut.log: no sanitizer summary" in out
    assert "launch plan, cifar: global x10" in out
    # v2's lazy state (20 bytes a point) of CIFAR's 5,000-point classes still fits in shared memory
    assert "launch plan, cifar, v2 lazy: global x10 (max n 5000, 100000 B dynamic smem)" in out
    # both greedy kernels are benchmarked, and the caps fit the deadline
    assert "--variants v1,v2,v2+cluster1 --lazy-v2" in out  # one-block v2 beside cluster v2 (CIFAR)
    assert "--variants v1,v2,v2+blocked --lazy-v2" in out  # the register-blocked tiles beside v1's (ImageNet)
    assert "report bench bench_cluster1.json: bench: ok" in out
    total = int(re.search(r"caps sum to (\d+) s\)", out).group(1))
    assert total <= 345 and f"ok   step caps sum to {total} s" in out
    assert "report ptxas ptxas_clean.log: ptxas: 3 kernels, 0 with spills: ok" in out
    assert "report sass sass_bad.txt: sass: 3 kernels read, 3 problems: FAIL" in out
    assert "report bench bench_v2_differs.json: bench: FAIL" in out
    assert "FAIL report" not in out and "dry run: ok" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_check_logs.tar.gz", "gpu_check_summary.txt"]


def _bench_module(name):
    """A bench/ script loaded from its path, with bench/ importable (bench_gpu imports gpu_model)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


def _keys_the_bench_parser_reads():
    """(required, optional) row keys of gpu_check.sh's bench parser: r["key"] and r.get("key", ...)."""
    script = (ROOT / "bench" / "gpu_check.sh").read_text()
    parser = script[script.index('if kind == "bench":'):script.index("unknown report kind")]
    required = set(re.findall(r"""r\[['"](\w+)['"]\]""", parser))
    optional = set(re.findall(r"""r\.get\(['"](\w+)['"]""", parser))
    return required, optional


def _canned_bench_row():
    script = (ROOT / "bench" / "gpu_check.sh").read_text()
    body = re.search(r"""cat > "\$canned/bench\.json" <<'EOF'\n(.*?)\nEOF\n""", script, re.S).group(1)
    (row,) = json.loads(body)
    return row


def test_bench_gpu_rows_carry_what_gpu_check_reads(tmp_path):
    """bench_gpu.measure_row with the CPU standing in for both devices: every key the bench parser reads
    is written (the canned dry-run row has the same keys), the three comparisons agree, and the parser
    passes the real row and fails it once a stage differs."""
    bench_gpu = _bench_module("bench_gpu")
    sc = dict(n=600, classes=3, dim=10)
    logits, labels = bench_gpu._data(sc["n"], sc["classes"], sc["dim"], "cpu")
    row = bench_gpu.measure_row("cifar", sc, 0.1, logits, labels, device="cpu", repeats=1, predicted_ms=1.5,
                                variant="v2")
    required, optional = _keys_the_bench_parser_reads()
    assert {"proxies_equal", "shared_proxies_divergence", "first_divergence", "gains_equal"} <= required
    assert required | optional <= set(row), sorted(required | optional - set(row))
    assert set(_canned_bench_row()) == set(row)
    assert (row["proxies_equal"], row["shared_proxies_divergence"], row["first_divergence"], row["gains_equal"]) \
        == (True, "none", "none", True)
    assert row["predicted_ms"] == 1.5 and row["cpu_classes"] == row["classes"] == 3 and row["budget_pct"] == 10
    assert row["variant"] == "v2" and "AUGCORE_CUDA_GREEDY" not in os.environ  # set around the device calls only

    def report(rows):
        path = tmp_path / "bench.json"
        path.write_text(json.dumps(rows))
        return subprocess.run(["bash", "bench/gpu_check.sh", "--report", "bench", str(path)], cwd=ROOT,
                              env=dict(os.environ, PYTHON=sys.executable), capture_output=True, text=True, timeout=60)

    ok = report([row])
    assert ok.returncode == 0 and "bench: ok" in ok.stdout, ok.stdout + ok.stderr
    for key, bad in [("proxies_equal", False), ("shared_proxies_divergence", "class 0 step 2: cpu 5 gpu 7"),
                     ("first_divergence", "class 1 step 0: cpu 3 gpu 4"), ("gains_equal", False)]:
        failed = report([dict(row, **{key: bad})])
        assert failed.returncode == 1 and "FAIL" in failed.stdout, (key, failed.stdout)


def test_first_divergence_names_the_first_differing_pick():
    """Two selections that differ (other seeds): the first (class, step) where the picks differ, found
    by a plain scan, and "none" for a selection against itself."""
    bench_gpu = _bench_module("bench_gpu")
    logits, labels = bench_gpu._data(300, 3, 10, "cpu")
    proxies = torch.softmax(logits, 1)
    a = facility_location(proxies, 30, labels, method="stochastic", seed=1, num_groups=3)
    b = facility_location(proxies, 30, labels, method="stochastic", seed=2, num_groups=3)
    expected = None
    for c in range(3):
        pa = a.indices[a.group_ptr[c]:a.group_ptr[c + 1]].tolist()
        pb = b.indices[b.group_ptr[c]:b.group_ptr[c + 1]].tolist()
        diffs = [s for s, (u, v) in enumerate(zip(pa, pb)) if u != v]
        if diffs:
            expected = f"class {c} step {diffs[0]}: cpu {pa[diffs[0]]} gpu {pb[diffs[0]]}"
            break
    assert expected is not None
    assert bench_gpu.describe_divergence(bench_gpu.first_divergence(a, b, range(3))) == expected
    assert bench_gpu.describe_divergence(bench_gpu.first_divergence(a, a, range(3))) == "none"
