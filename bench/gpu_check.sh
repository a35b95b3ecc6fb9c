#!/usr/bin/env bash
# Everything a GPU session owes, in one call (docs/gpu.md, "The one-call device check"):
#   1. build the extension for sm_90 only (with the compiler's register/spill report);
#   2. the CUDA tests;
#   3. compute-sanitizer memcheck, racecheck and synccheck over bench/gpu_sanitize_driver.py
#      (groups of 40, 100, 300, 700, 5,000; every method; exp and craig; dense and on-the-fly);
#   4. bench/bench_gpu.py at CIFAR-10 and ImageNet scale: CUDA op, plain PyTorch on the GPU and
#      the CPU kernels in the same run, with the first CPU/GPU pick divergence;
#   5. one table.
# Budget: under 9 minutes on a bare H200 (torch, nvcc, compute-sanitizer, ninja; no network):
# every step has a cap and the whole run a deadline, so a slow step is cut, not the table.
# Logs go to $OUT (when set) or build/gpu-check-out/.
#
#   bash bench/gpu_check.sh            run it (needs a GPU)
#   bash bench/gpu_check.sh --dry-run  print the plan and check what can be checked without a GPU
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dry_run=0
[ "${1:-}" = "--dry-run" ] && dry_run=1
if [ -z "${PYTHON:-}" ]; then
  if [ "$dry_run" = 1 ] && [ -x .venv/bin/python ]; then PYTHON=$root/.venv/bin/python; else PYTHON=python3; fi
fi
out=${OUT:-$root/build/gpu-check-out}
mkdir -p "$out"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
cuda_home=${CUDA_HOME:-/usr/local/cuda}
start=$(date +%s)
deadline=$((start + 530))
summary=()

# run NAME CAP_SECONDS COMMAND...: runs with the smaller of its cap and the time left, logs to $out/NAME.log
run() {
  local name=$1 cap=$2
  shift 2
  local left=$((deadline - $(date +%s)))
  if [ "$left" -lt 20 ]; then
    summary+=("$(printf '%-22s %-10s %6s' "$name" "skipped" "-")  (out of time)")
    return 0
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  local t0
  t0=$(date +%s)
  echo "== $name (cap ${cap}s): $*" | tee -a "$out/gpu_check.log"
  timeout --kill-after=10 "$cap" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  local status=ok
  [ "$rc" -ne 0 ] && status="FAIL($rc)"
  [ "$rc" -eq 124 ] && status="TIMEOUT"
  summary+=("$(printf '%-22s %-10s %5ss' "$name" "$status" "$(($(date +%s) - t0))")  $out/$name.log")
  tail -n 5 "$out/$name.log" | sed 's/^/   /'
  return 0
}

build_cmd=(bash -c "
  cmake -S '$root' -B '$root/build/gpu-check' -GNinja -DCMAKE_BUILD_TYPE=Release \
    -DAUGCORE_CUDA=ON -DAUGCORE_CUDA_ARCHS=90 -DCMAKE_CUDA_COMPILER='$cuda_home/bin/nvcc' \
    -DCMAKE_CUDA_FLAGS='-Xptxas=-v' -DPython3_EXECUTABLE=\$(command -v $PYTHON) \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY='$root/augcore' &&
  cmake --build '$root/build/gpu-check' --parallel \$(nproc)")
tests_cmd=("$PYTHON" -m pytest python_tests/test_cuda_selection.py python_tests/test_selection_cuda.py
           python_tests/test_ops_launch_plan.py -q -p no:cacheprovider -x)
sanitize=("$cuda_home/bin/compute-sanitizer" --error-exitcode 1)
driver=("$PYTHON" bench/gpu_sanitize_driver.py)
bench_cmd=("$PYTHON" bench/bench_gpu.py --scenario all --repeats 5 --json "$out/bench.json")

if [ "$dry_run" = 1 ]; then
  echo "gpu_check.sh plan (deadline 530 s; each step capped):"
  echo "  build      240 s  ${build_cmd[*]}"
  echo "  tests      150 s  ${tests_cmd[*]}"
  echo "  memcheck    90 s  PYTORCH_NO_CUDA_MEMORY_CACHING=1 ${sanitize[*]} --tool memcheck ${driver[*]}"
  echo "  racecheck   75 s  ${sanitize[*]} --tool racecheck ${driver[*]} --quick --sizes 40,100,700,5000"
  echo "  synccheck   60 s  ${sanitize[*]} --tool synccheck ${driver[*]} --quick"
  echo "  bench      180 s  ${bench_cmd[*]}"
  echo "logs: $out"
  echo "checks without a GPU:"
  rc=0
  bash -n "$0" && echo "  ok   this script parses" || rc=1
  "$PYTHON" -m py_compile bench/bench_gpu.py bench/gpu_sanitize_driver.py && echo "  ok   bench scripts compile" || rc=1
  "$PYTHON" bench/gpu_sanitize_driver.py --device cpu --sizes 40,100,300 --budget 2 > "$out/driver_cpu.log" 2>&1 \
    && echo "  ok   sanitizer driver runs on the CPU ($(grep -c '^ok' "$out/driver_cpu.log") calls)" || rc=1
  "$PYTHON" - <<'EOF' || rc=1
import torch
import augcore  # noqa: F401
H200_OPTIN = 232_448
for name, sizes in {"sanitizer groups": [40, 100, 300, 700, 5000], "cifar": [5000] * 10,
                    "imagenet": [1281] * 1000}.items():
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.tensor(sizes), 0)
    groups, launches = torch.ops.augcore.cuda_launch_plan(ptr, torch.tensor([max(1, s // 10) for s in sizes]),
                                                          False, 0, 8 << 30, H200_OPTIN)
    kinds = ["shared", "global", "on-the-fly"]
    plan = ", ".join(f"{kinds[r[0]]} x{r[2]} (max n {r[3]}, {r[4]} B dynamic smem)" for r in launches.tolist())
    print(f"  ok   launch plan, {name}: {plan}")
EOF
  for tool in nvidia-smi "$cuda_home/bin/nvcc" "$cuda_home/bin/compute-sanitizer" ninja cmake; do
    command -v "$tool" > /dev/null 2>&1 && echo "  info $tool found" || echo "  info $tool not found here"
  done
  [ "$rc" = 0 ] && echo "dry run: ok" || echo "dry run: FAILED"
  exit "$rc"
fi

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; "$cuda_home/bin/nvcc" --version | tail -1;
  "$PYTHON" -c "import torch; print('torch', torch.__version__, torch.version.cuda)"; } > "$out/machine.log" 2>&1
cat "$out/machine.log"
run build 240 "${build_cmd[@]}"
grep -E "registers|spill|smem" "$out/build.log" | grep -i greedy > "$out/ptxas_greedy.log" 2>/dev/null
run tests 150 "${tests_cmd[@]}"
run memcheck 90 env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "${sanitize[@]}" --tool memcheck "${driver[@]}"
run racecheck 75 "${sanitize[@]}" --tool racecheck "${driver[@]}" --quick --sizes 40,100,700,5000
run synccheck 60 "${sanitize[@]}" --tool synccheck "${driver[@]}" --quick
run bench 180 "${bench_cmd[@]}"

echo
echo "== gpu_check summary ($(($(date +%s) - start)) s; logs in $out)"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
if [ -s "$out/bench.json" ]; then
  "$PYTHON" - "$out/bench.json" <<'EOF' | tee -a "$out/summary.txt"
import json, sys
rows = json.load(open(sys.argv[1]))
print(f"{'scenario':9s} {'budget':>6s} {'cuda ms':>9s} {'sim ms':>8s} {'greedy ms':>9s} {'torch ms':>9s} {'cpu ms':>9s}  "
      "first CPU/GPU divergence, gains equal")
for r in rows:
    print(f"{r['scenario']:9s} {r['budget_pct']:5d}% {r['cuda_ms']:9.2f} {r['cuda_similarity_ms']:8.2f} "
          f"{r['cuda_greedy_ms']:9.2f} {r.get('torch_ms', float('nan')):9.2f} {r['cpu_ms']:9.2f}  "
          f"{r['first_divergence']}, {r['gains_equal']}"
          + ("" if r["cpu_classes"] == r["classes"] else f"  (cpu: {r['cpu_classes']} classes, time scaled)"))
EOF
fi
