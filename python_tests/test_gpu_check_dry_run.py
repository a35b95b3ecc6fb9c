"""bench/gpu_check.sh --dry-run: the one-call GPU check prints its plan, runs every log parser
(ptxas, SASS, compute-sanitizer summaries, bench table) on canned logs with the verdict each must
give, runs the sanitizer driver on the CPU and the scenarios' launch plans, exit 0; $OUT gets
exactly the summary and one archive."""
import os
import subprocess
import sys
from pathlib import Path

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
    assert "FAIL report" not in out and "dry run: ok" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_check_logs.tar.gz", "gpu_check_summary.txt"]
