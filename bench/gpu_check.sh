#!/usr/bin/env bash
# Everything a GPU session owes, in one call (docs/gpu.md, "The one-call device check"):
#   1. build the extension for sm_90 only, with ptxas's register/spill report, and read it
#      (and the SASS, when cuobjdump is there): spills in any kernel fail the step;
#   2. the CUDA tests;
#   3. compute-sanitizer memcheck, racecheck and synccheck over bench/gpu_sanitize_driver.py
#      (small groups: every kernel path, both greedy kernels v1 and v2); the verdict is the
#      sanitizer's own ERROR SUMMARY, apart from the driver's CPU/GPU comparison;
#   4. bench/bench_gpu.py at CIFAR-10 and ImageNet scale, greedy kernels v1 and v2 (and v2's
#      batched lazy greedy), measured beside predicted; bench/bench_triton.py beside it when
#      that file exists;
#   5. one summary.
# Budget: 345 s from the first step (the machine's start excluded), so that a second call
# still fits a 15-minute lease. Every step has a cap and the run a deadline: a slow step is
# cut, never the summary. $OUT (default build/gpu-check-out) receives exactly two files:
# gpu_check_summary.txt and gpu_check_logs.tar.gz (every log; the device tool returns <= 8 files).
#
#   bash bench/gpu_check.sh                        run it (needs a GPU)
#   bash bench/gpu_check.sh --dry-run              the plan, and every parser run on canned logs
#   bash bench/gpu_check.sh --report KIND FILE     one parser on one log (KIND: ptxas, sass,
#                                                  sanitizer, bench); exit 1 on a failing verdict
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=$root/.venv/bin/python; else PYTHON=python3; fi
fi
cuda_home=${CUDA_HOME:-/usr/local/cuda}
export PATH="$PATH:$cuda_home/bin"  # cuobjdump, compute-sanitizer

# report KIND FILE: the one parser of every log this script reads (also run by --dry-run and
# python_tests/test_ptxas_spills.py). Prints a verdict; exit status 1 when it fails.
report() {
  "$PYTHON" - "$@" <<'EOF'
import json, re, shutil, subprocess, sys

kind, path = sys.argv[1], sys.argv[2]
text = open(path, errors="replace").read()

def short(name):
    """A kernel's demangled name without namespaces or parameters (the mangled one without c++filt)."""
    if shutil.which("c++filt"):
        name = subprocess.run(["c++filt", name], capture_output=True, text=True).stdout.strip() or name
    name = re.sub(r"\(anonymous namespace\)::", "", name)
    head = re.split(r"\((?![^<]*>)", name, maxsplit=1)[0]  # drop the parameter list
    head = re.sub(r"^\w[\w ]* (?=[\w:]+(<|$))", "", head)   # drop "void "
    return re.sub(r"^(\w+::)+", "", head)

if kind == "ptxas":
    # "Function properties for NAME" comes first; then its stack/spill line, then "Used N registers"
    rows, cur, arch = [], None, "?"
    for line in text.splitlines():
        if m := re.search(r"Compiling entry function '([^']+)' for '(sm_\w+)'", line):
            arch = m.group(2)
        elif m := re.search(r"Function properties for (\S+)", line):
            cur = {"name": m.group(1), "arch": arch, "stack": 0, "stores": 0, "loads": 0}
        elif cur and (m := re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)):
            cur.update(stack=int(m.group(1)), stores=int(m.group(2)), loads=int(m.group(3)))
        elif cur and (m := re.search(r"Used (\d+) registers", line)):
            cur["regs"] = int(m.group(1))
            rows.append(cur)
            cur = None
    if not rows:
        print("ptxas: no 'Function properties' / 'Used N registers' pairs found (was -Xptxas -v passed?)")
        sys.exit(1)
    bad = [r for r in rows if r["stores"] or r["loads"]]
    for r in rows:
        flag = "  SPILLS" if r in bad else ""
        print(f"  {r['arch']:6s} {short(r['name'])[:60]:60s} {r['regs']:4d} regs  stack {r['stack']:4d}  "
              f"spill {r['stores']}/{r['loads']} B{flag}")
    print(f"ptxas: {len(rows)} kernels, {len(bad)} with spills: " + ("FAIL" if bad else "ok"))
    sys.exit(1 if bad else 0)

if kind == "sass":
    # cuobjdump -sass: local-memory loads/stores (LDL/STL) in a kernel are spills or stack
    # arrays; the proxies kernels must not use the hardware exp/log (MUFU.EX2/LG2): the CPU
    # cannot reproduce them, the shared polynomials (csrc/common/softmax.h) are the contract
    funcs = re.split(r"\n\s*Function : (\S+)", text)
    bad, n = [], 0
    for name, body in zip(funcs[1::2], funcs[2::2]):
        n += 1
        local = len(re.findall(r"\b(LDL|STL)\b", body))
        mufu = len(re.findall(r"MUFU\.(EX2|LG2)", body))
        if local and re.search(r"greedy_(v2_)?(cluster_)?kernel|group_tiles_blocked_kernel", name):
            bad.append(f"{short(name)}: {local} local-memory instructions")
        if mufu and "grad_proxies_kernel" in name:
            bad.append(f"{short(name)}: {mufu} MUFU.EX2/LG2 (hardware exp/log)")
    if n == 0:
        print("sass: no 'Function :' sections found")
        sys.exit(1)
    for b in bad:
        print(f"  {b}")
    print(f"sass: {n} kernels read, {len(bad)} problems: " + ("FAIL" if bad else "ok"))
    sys.exit(1 if bad else 0)

if kind == "sanitizer":
    # compute-sanitizer's own summary decides; the driver's CPU/GPU comparison is reported apart
    race = re.findall(r"RACECHECK SUMMARY: (\d+) hazards? displayed \((\d+) errors?, (\d+) warnings?\)", text)
    errors = re.findall(r"ERROR SUMMARY: (\d+) errors?", text)
    driver = re.findall(r"driver: (\d+) mismatches", text)
    drv = f"driver: {driver[-1]} CPU/GPU mismatches" if driver else "driver: did not finish"
    if race:
        hazards, errs, warns = map(int, race[-1])
        verdict = f"racecheck {errs} errors, {warns} warnings"
        failed = errs > 0
    elif errors:
        verdict = f"{int(errors[-1])} sanitizer errors"
        failed = int(errors[-1]) > 0
    else:
        verdict, failed = "no sanitizer summary (crashed, or cut by its cap)", True
    print(f"{verdict}; {drv}: " + ("FAIL" if failed or not driver or driver[-1] != "0" else "ok"))
    sys.exit(1 if failed or not driver or driver[-1] != "0" else 0)

if kind == "bench":
    rows = json.loads(text)
    print(f"{'scenario':9s} {'budget':>6s} {'method':10s} {'kernel':12s} {'C':>2s} {'cuda ms':>9s} {'predicted':>10s} "
          f"{'sim ms':>8s} {'greedy ms':>9s} {'torch ms':>9s} {'cpu ms':>9s}  proxies equal, greedy on shared "
          "proxies, end to end")
    failed = False
    for r in rows:
        failed |= not (r["proxies_equal"] and r["shared_proxies_divergence"] == "none"
                       and r["first_divergence"] == "none" and r["gains_equal"])
        print(f"{r['scenario']:9s} {r['budget_pct']:5d}% {r['method']:10s} {r['variant']:12s} "
              f"{r.get('cluster_size', 1):2d} {r['cuda_ms']:9.2f} "
              f"{r.get('predicted_ms', float('nan')):10.2f} "
              f"{r['cuda_similarity_ms']:8.2f} {r['cuda_greedy_ms']:9.2f} {r.get('torch_ms', float('nan')):9.2f} "
              f"{r['cpu_ms']:9.2f}  {r['proxies_equal']}, {r['shared_proxies_divergence']}, "
              f"{r['first_divergence']} (gains equal: {r['gains_equal']})"
              + ("" if r["cpu_classes"] == r["classes"] else f"  (cpu: {r['cpu_classes']} classes, time scaled)"))
    print("bench: " + ("FAIL (a CPU/GPU difference)" if failed else "ok"))
    sys.exit(1 if failed else 0)

print(f"unknown report kind {kind!r}")
sys.exit(2)
EOF
}

if [ "${1:-}" = "--report" ]; then
  [ $# -eq 3 ] || { echo "usage: bash bench/gpu_check.sh --report ptxas|sass|sanitizer|bench FILE"; exit 2; }
  report "$2" "$3"
  exit $?
fi

dry_run=0
[ "${1:-}" = "--dry-run" ] && dry_run=1
out=${OUT:-$root/build/gpu-check-out}
logs=$root/build/gpu-check-logs
rm -rf "$logs"
mkdir -p "$out" "$logs"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
deadline=$((start + 345))
summary=()

# note LINE: one line of the summary
note() { summary+=("$1"); echo "$1"; }

# run NAME CAP COMMAND...: runs with the smaller of its cap and the time left; log in $logs/NAME.log
run() {
  local name=$1 cap=$2
  shift 2
  local left=$((deadline - $(date +%s)))
  if [ "$left" -lt 15 ]; then
    note "$(printf '%-11s %-8s %5s' "$name" "skipped" "-")  out of time"
    return 1
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  local t0 rc
  t0=$(date +%s)
  echo "== $name (cap ${cap}s): $*"
  timeout --kill-after=5 "$cap" "$@" > "$logs/$name.log" 2>&1
  rc=$?
  local status=ok
  [ "$rc" -ne 0 ] && status="rc=$rc"
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && status="TIMEOUT"
  note "$(printf '%-11s %-8s %4ss' "$name" "$status" "$(($(date +%s) - t0))")"
  tail -n 3 "$logs/$name.log" | sed 's/^/   /'
  return "$rc"
}

# verdict NAME KIND FILE: a parser's verdict as summary lines
verdict() {
  local text
  text=$(report "$2" "$3" 2>&1)
  while IFS= read -r line; do note "  $1: $line"; done <<< "$text"
}

bundle() {
  printf '%s\n' "${summary[@]}" > "$out/gpu_check_summary.txt"
  tar czf "$out/gpu_check_logs.tar.gz" -C "$logs" . 2> /dev/null
}

# every step's cap in seconds, one table for the run and the plan --dry-run prints (sum <= the deadline)
declare -A cap=([build]=130 [tests]=35 [memcheck]=40 [racecheck]=25 [synccheck]=15 [bench_cifar]=40
                [bench_imagenet]=45 [triton]=15)
cap_total=0
for step in "${!cap[@]}"; do cap_total=$((cap_total + cap[$step])); done

build_cmd=(bash -c "
  cmake -S '$root' -B '$root/build/gpu-check' -GNinja -DCMAKE_BUILD_TYPE=Release \
    -DAUGCORE_CUDA=ON -DAUGCORE_CUDA_ARCHS=90 -DCMAKE_CUDA_COMPILER='$cuda_home/bin/nvcc' \
    -DCMAKE_CUDA_FLAGS='-Xptxas=-v' -DPython3_EXECUTABLE=\$(command -v $PYTHON) \
    -DCMAKE_LIBRARY_OUTPUT_DIRECTORY='$root/augcore' &&
  cmake --build '$root/build/gpu-check' --parallel \$(nproc)")
tests_cmd=("$PYTHON" -m pytest python_tests/test_cuda_selection.py python_tests/test_cuda_greedy_v2.py
           python_tests/test_cuda_tiles_blocked.py python_tests/test_selection_cuda.py
           python_tests/test_ops_launch_plan.py -q -p no:cacheprovider -x)
# 97: a sanitizer error; the driver itself exits 3 on a CPU/GPU mismatch
sanitize=("$cuda_home/bin/compute-sanitizer" --error-exitcode 97 --print-limit 20)
driver=("$PYTHON" bench/gpu_sanitize_driver.py)
small=(--quick --sizes 40,100,300 --budget 2)  # racecheck/synccheck: shared and global rows, few steps
# both greedy kernels (v1, the default, and v2 with its batched lazy greedy), measured beside predicted;
# CIFAR adds v2 on one block per group (beside v2's clusters), ImageNet v2 with the register-blocked tiles
bench_cifar=("$PYTHON" bench/bench_gpu.py --scenario cifar --repeats 5 --variants v1,v2,v2+cluster1 --lazy-v2
             --json "$logs/bench_cifar.json")
bench_imagenet=("$PYTHON" bench/bench_gpu.py --scenario imagenet --repeats 3 --skip-torch --variants v1,v2,v2+blocked
                --lazy-v2 --json "$logs/bench_imagenet.json")
triton_cmd=("$PYTHON" bench/bench_triton.py --json "$logs/triton.json")

if [ "$dry_run" = 1 ]; then
  echo "gpu_check.sh plan (deadline 345 s; each step capped; caps sum to ${cap_total} s):"
  echo "  build      ${cap[build]} s  ${build_cmd[*]}"
  echo "  ptxas             report ptxas build.log; report sass (cuobjdump -sass augcore/_C*.so)"
  echo "  tests       ${cap[tests]} s  ${tests_cmd[*]}"
  echo "  memcheck    ${cap[memcheck]} s  ${sanitize[*]} --tool memcheck ${driver[*]} --sizes 40,100,300,700,2000"
  echo "  racecheck   ${cap[racecheck]} s  ${sanitize[*]} --tool racecheck ${driver[*]} ${small[*]}"
  echo "  synccheck   ${cap[synccheck]} s  ${sanitize[*]} --tool synccheck ${driver[*]} ${small[*]}"
  echo "  bench_cifar ${cap[bench_cifar]} s  ${bench_cifar[*]}"
  echo "  bench_imagenet ${cap[bench_imagenet]} s  ${bench_imagenet[*]}"
  echo "  triton      ${cap[triton]} s  ${triton_cmd[*]}  (when bench/bench_triton.py exists)"
  echo "  (the sanitizer driver and bench_gpu.py run each greedy kernel, AUGCORE_CUDA_GREEDY=v1 and v2, and"
  echo "   both tile kernels, AUGCORE_CUDA_TILES=v1 and blocked; bench_gpu.py v2 with AUGCORE_CUDA_CLUSTER=1)"
  echo "out: $out/gpu_check_summary.txt and $out/gpu_check_logs.tar.gz"
  echo "checks without a GPU:"
  rc=0
  bash -n "$0" && echo "  ok   this script parses" || rc=1
  if [ "$cap_total" -le 345 ]; then echo "  ok   step caps sum to ${cap_total} s <= 345 s"; else
    echo "  FAIL step caps sum to ${cap_total} s > 345 s"; rc=1; fi
  "$PYTHON" -m py_compile bench/bench_gpu.py bench/gpu_model.py bench/bench_triton.py bench/gpu_sanitize_driver.py \
    && echo "  ok   bench scripts compile" || rc=1
  "$PYTHON" bench/gpu_sanitize_driver.py --device cpu --sizes 40,100,300 --budget 2 > "$logs/driver_cpu.log" 2>&1 \
    && echo "  ok   sanitizer driver runs on the CPU ($(grep -c '^ok' "$logs/driver_cpu.log") calls)" || rc=1
  # every parser on canned logs, with the verdict each must give (canned: taken from real tool output)
  canned=$logs/canned
  mkdir -p "$canned"
  cat > "$canned/ptxas_clean.log" <<'EOF'
ptxas info    : Compiling entry function '_ZN7augcore4cuda58_GLOBAL__N__127f5032_25_facility_location_cuda_cu_6bac7c1413greedy_kernelILi2EEEvNS1_10GreedyArgsE' for 'sm_90'
ptxas info    : Function properties for _ZN7augcore4cuda58_GLOBAL__N__127f5032_25_facility_location_cuda_cu_6bac7c1413greedy_kernelILi2EEEvNS1_10GreedyArgsE
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 128 registers, used 1 barriers, 10592 bytes smem, 568 bytes cmem[0]
ptxas info    : Compiling entry function '_ZN7augcore4cuda58_GLOBAL__N__127f5032_25_facility_location_cuda_cu_6bac7c1416greedy_v2_kernelILi1ELb1EEEvNS1_10GreedyArgsE' for 'sm_90'
ptxas info    : Function properties for _ZN7augcore4cuda58_GLOBAL__N__127f5032_25_facility_location_cuda_cu_6bac7c1416greedy_v2_kernelILi1ELb1EEEvNS1_10GreedyArgsE
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 93 registers, used 1 barriers, 2400 bytes smem, 568 bytes cmem[0]
ptxas info    : Compiling entry function '_ZN7augcore4cuda19grad_proxies_kernelIffEEvPKT_PKllllPfS7_S7_' for 'sm_90'
ptxas info    : Function properties for _ZN7augcore4cuda19grad_proxies_kernelIffEEvPKT_PKllllPfS7_S7_
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 32 registers, used 0 barriers, 416 bytes cmem[0]
EOF
  cat > "$canned/ptxas_spills.log" <<'EOF'
ptxas info    : Compiling entry function '_ZN7augcore4cuda58_GLOBAL__N__127f5032_25_facility_location_cuda_cu_6bac7c1413greedy_kernelILi0EEEvNS1_10GreedyArgsE' for 'sm_90'
ptxas info    : Function properties for _ZN7augcore4cuda58_GLOBAL__N__127f5032_25_facility_location_cuda_cu_6bac7c1413greedy_kernelILi0EEEvNS1_10GreedyArgsE
    112 bytes stack frame, 180 bytes spill stores, 256 bytes spill loads
ptxas info    : Used 64 registers, used 1 barriers, 112 bytes cumulative stack size, 10592 bytes smem
EOF
  cat > "$canned/sass_bad.txt" <<'EOF'
	code for sm_90
		Function : _ZN7augcore4cuda58_GLOBAL__N__127f5032_25_facility_location_cuda_cu_6bac7c1413greedy_kernelILi0EEEvNS1_10GreedyArgsE
        /*0a10*/                   STL [R1+0x8], R20 ;
        /*0a20*/                   LDL R21, [R1+0x8] ;
		Function : _ZN7augcore4cuda19grad_proxies_kernelIffEEvPKT_PKllllPfS7_S7_
        /*0100*/                   MUFU.EX2 R4, R4 ;
		Function : _ZN7augcore4cuda58_GLOBAL__N__127f5032_25_facility_location_cuda_cu_6bac7c1416greedy_v2_kernelILi2ELb0EEEvNS1_10GreedyArgsE
        /*0b30*/                   LDL.64 R8, [R1+0x10] ;
EOF
  cat > "$canned/memcheck_clean.log" <<'EOF'
========= COMPUTE-SANITIZER
ok grad_proxies
driver: 0 mismatches
========= ERROR SUMMARY: 0 errors
EOF
  cat > "$canned/memcheck_errors.log" <<'EOF'
========= COMPUTE-SANITIZER
========= Invalid __global__ write of size 4 bytes
=========     at greedy_kernel<1>(GreedyArgs)+0x1c30
MISMATCH grad_proxies
driver: 1 mismatches
========= ERROR SUMMARY: 1 error
EOF
  cat > "$canned/racecheck_clean.log" <<'EOF'
========= COMPUTE-SANITIZER
driver: 0 mismatches
========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)
EOF
  printf '========= COMPUTE-SANITIZER\nok grad_proxies\n' > "$canned/synccheck_cut.log"
  cat > "$canned/bench.json" <<'EOF'
[{"scenario": "cifar", "budget_pct": 10, "method": "stochastic", "variant": "v1", "classes": 10, "cuda_ms": 40.1,
  "predicted_ms": 38.0, "cluster_size": 1, "cuda_similarity_ms": 0.5, "cuda_greedy_ms": 39.0, "torch_ms": 900.0, "cpu_ms": 300.0,
  "cpu_classes": 10, "proxies_equal": true, "shared_proxies_divergence": "none", "first_divergence": "none",
  "gains_equal": true}]
EOF
  # the same row as v2's lazy greedy with gains that differ from the CPU's: the verdict must fail
  sed -e 's/"method": "stochastic", "variant": "v1"/"method": "lazy", "variant": "v2"/' \
    -e 's/"gains_equal": true/"gains_equal": false/' "$canned/bench.json" > "$canned/bench_v2_differs.json"
  expect() {  # expect KIND FILE STATUS WORDS: the parser's exit status and output
    local got
    got=$(report "$1" "$2" 2>&1)
    local st=$?
    if [ "$st" = "$3" ] && grep -q -- "$4" <<< "$got"; then
      echo "  ok   report $1 $(basename "$2"): $(tail -n 1 <<< "$got")"
    else
      echo "  FAIL report $1 $(basename "$2") (status $st, want $3 and '$4'):"; sed 's/^/       /' <<< "$got"; rc=1
    fi
  }
  expect ptxas "$canned/ptxas_clean.log" 0 "greedy_kernel<2> *128 regs"
  expect ptxas "$canned/ptxas_clean.log" 0 "greedy_v2_kernel<1, true> *93 regs"
  expect ptxas "$canned/ptxas_spills.log" 1 "1 with spills: FAIL"
  expect sass "$canned/sass_bad.txt" 1 "3 kernels read, 3 problems: FAIL"
  expect sanitizer "$canned/memcheck_clean.log" 0 "0 sanitizer errors; driver: 0 CPU/GPU mismatches: ok"
  expect sanitizer "$canned/memcheck_errors.log" 1 "1 sanitizer errors; driver: 1 CPU/GPU mismatches: FAIL"
  expect sanitizer "$canned/racecheck_clean.log" 0 "racecheck 0 errors, 0 warnings"
  expect sanitizer "$canned/synccheck_cut.log" 1 "no sanitizer summary"
  expect bench "$canned/bench.json" 0 "stochastic v1            1     40.10      38.00"
  expect bench "$canned/bench_v2_differs.json" 1 "lazy       v2 .*(gains equal: False)"
  sed -e 's/"variant": "v1"/"variant": "v2+cluster1"/' "$canned/bench.json" > "$canned/bench_cluster1.json"
  expect bench "$canned/bench_cluster1.json" 0 "stochastic v2+cluster1   1     40.10"
  "$PYTHON" - <<'EOF' || rc=1
import torch
import augcore  # noqa: F401
H100_OPTIN = 232_448  # sm_90's opt-in shared memory per block
for name, sizes in {"sanitizer groups": [40, 100, 300, 700, 2000], "cifar": [5000] * 10,
                    "imagenet": [1281] * 1000}.items():
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.int64)
    ptr[1:] = torch.cumsum(torch.tensor(sizes), 0)
    for label, variant, method in [("", 1, 2), (", v2 lazy", 2, 1)]:  # v1 (any method); v2's lazy state
        groups, launches = torch.ops.augcore.cuda_launch_plan(ptr, torch.tensor([max(1, s // 10) for s in sizes]),
                                                              False, 0, 8 << 30, H100_OPTIN, -1, variant, method)
        kinds = ["shared", "global", "on-the-fly"]
        plan = ", ".join(f"{kinds[r[0]]} x{r[2]} (max n {r[3]}, {r[4]} B dynamic smem)" for r in launches.tolist())
        print(f"  ok   launch plan, {name}{label}: {plan}")
EOF
  for tool in nvidia-smi nvcc compute-sanitizer cuobjdump c++filt ninja cmake; do
    command -v "$tool" > /dev/null 2>&1 && echo "  info $tool found" || echo "  info $tool not found here"
  done
  [ -f bench/bench_triton.py ] && echo "  info bench/bench_triton.py present: timed beside CUDA" \
    || echo "  info bench/bench_triton.py absent: the triton step is skipped"
  summary=("dry run: $([ "$rc" = 0 ] && echo ok || echo FAILED)")
  bundle
  [ "$rc" = 0 ] && echo "dry run: ok" || echo "dry run: FAILED"
  exit "$rc"
fi

trap bundle EXIT  # the summary and the archive, however the run ends
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; "$cuda_home/bin/nvcc" --version | tail -1;
  "$PYTHON" -c "import torch; print('torch', torch.__version__, torch.version.cuda)"; } > "$logs/machine.log" 2>&1
while IFS= read -r line; do note "machine: $line"; done < "$logs/machine.log"

if run build "${cap[build]}" "${build_cmd[@]}"; then
  verdict ptxas ptxas "$logs/build.log"
  if command -v cuobjdump > /dev/null 2>&1; then
    cuobjdump -sass augcore/_C*.so > "$logs/sass.txt" 2>&1
    verdict sass sass "$logs/sass.txt"
  else
    note "  sass: cuobjdump not found, SASS not read"
  fi
  run tests "${cap[tests]}" "${tests_cmd[@]}"
  run memcheck "${cap[memcheck]}" "${sanitize[@]}" --tool memcheck "${driver[@]}" --sizes 40,100,300,700,2000
  verdict memcheck sanitizer "$logs/memcheck.log"
  run racecheck "${cap[racecheck]}" "${sanitize[@]}" --tool racecheck "${driver[@]}" "${small[@]}"
  verdict racecheck sanitizer "$logs/racecheck.log"
  run synccheck "${cap[synccheck]}" "${sanitize[@]}" --tool synccheck "${driver[@]}" "${small[@]}"
  verdict synccheck sanitizer "$logs/synccheck.log"
  run bench_cifar "${cap[bench_cifar]}" "${bench_cifar[@]}"
  [ -s "$logs/bench_cifar.json" ] && verdict bench_cifar bench "$logs/bench_cifar.json"
  run bench_imagenet "${cap[bench_imagenet]}" "${bench_imagenet[@]}"
  [ -s "$logs/bench_imagenet.json" ] && verdict bench_imagenet bench "$logs/bench_imagenet.json"
  if [ -f bench/bench_triton.py ]; then
    run triton "${cap[triton]}" "${triton_cmd[@]}"
    while IFS= read -r line; do note "  triton: $line"; done < <(tail -n 12 "$logs/triton.log")
  fi
else
  note "build failed: nothing else can run (see build.log in the archive)"
  tail -n 30 "$logs/build.log" > "$logs/build_tail.log"
fi
note "gpu_check: $(($(date +%s) - start)) s; $out/gpu_check_summary.txt, $out/gpu_check_logs.tar.gz"
