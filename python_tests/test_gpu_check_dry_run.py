"""bench/gpu_check.sh --dry-run: the one-call GPU check prints its plan and checks what a
machine without a GPU can (the script parses, the bench scripts compile, the sanitizer
driver runs on the CPU, the launch plans of the scenarios), exit 0."""
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
    for step in ("build", "tests", "memcheck", "racecheck", "synccheck", "bench"):
        assert f"  {step} " in out
    assert "sanitizer driver runs on the CPU" in out
    assert "launch plan, cifar: global x10" in out
    assert "dry run: ok" in out
    assert "driver: 0 mismatches" in (tmp_path / "driver_cpu.log").read_text()
