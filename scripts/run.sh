#!/usr/bin/env bash
# One entry point that sets everything up, then runs a job:
#   bash scripts/run.sh demo [args]   the main job: augcore's demo on the embedded digits data
#   bash scripts/run.sh test [args]   the test suite (what CI runs)
#   bash scripts/run.sh bench [args]  the selection benchmark (`augcore bench`, bench/README.md)
#   bash scripts/run.sh docs          the API reference (Sphinx, warnings are errors) into build/docs
#   bash scripts/run.sh shell         a shell inside the environment
# Set-up is idempotent: a virtual env in .venv, packages from requirements-dev.txt
# (re-installed only when that file changes), and the compiled extension (rebuilt
# incrementally in build/). Environment: AUGCORE_VENV (default .venv), AUGCORE_CUDA
# (AUTO|ON|OFF), CUDA_HOME (default /usr/local/cuda when present), AUGCORE_SETUP=done
# (skip the set-up: a caller that already ran it, e.g. the documented-commands test).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=${AUGCORE_VENV:-$root/.venv}
py=$venv/bin/python

if [ "${AUGCORE_SETUP:-}" != done ]; then
  if [ ! -x "$py" ]; then
    echo "[augcore] creating virtual environment in $venv"
    python3 -m venv "$venv"
  fi

  # pip on this kind of machine may be preset to a local CPU-only torch wheel that
  # cannot load torchvision's ops: install from the package registry itself.
  pip_install() {
    env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null "$py" -m pip install --disable-pip-version-check -q \
      ${PIP_CERT:+--cert "$PIP_CERT"} "$@"
  }

  stamp=$venv/.augcore-requirements
  if ! cmp -s requirements-dev.txt "$stamp" 2>/dev/null; then
    echo "[augcore] installing packages (requirements-dev.txt)"
    pip_install --upgrade pip
    pip_install -r requirements-dev.txt
    cp requirements-dev.txt "$stamp"
  fi

  if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
    export CUDA_HOME=/usr/local/cuda
  fi
  echo "[augcore] building the extension (incremental; log in build/last-build.log)"
  mkdir -p build
  if ! "$py" -m pip install --disable-pip-version-check --no-deps --no-build-isolation -e . > build/last-build.log 2>&1; then
    tail -n 60 build/last-build.log >&2
    echo "[augcore] build failed; full log: build/last-build.log" >&2
    exit 1
  fi
fi

job=${1:-demo}
shift || true
export PATH="$venv/bin:$PATH"
case "$job" in
  demo) exec "$venv/bin/augcore" demo "$@" ;;
  test) exec "$py" -m pytest python_tests -q -p no:cacheprovider "$@" ;;
  bench) exec "$venv/bin/augcore" bench "$@" ;;
  docs) exec "$py" -m sphinx -E -W --keep-going -q -b html docs/api build/docs "$@" ;;
  shell) exec bash ;;
  *) echo "unknown job '$job' (demo | test | bench | docs | shell)" >&2; exit 2 ;;
esac
