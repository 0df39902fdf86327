#!/usr/bin/env bash
# The CI test selection (`make test`'s pytest run) under Python 3.10, the oldest release pyproject admits.
# A venv in $VENV (default .venv-py310) from the first CPython 3.10 found: $PYTHON310, `python3.10` on PATH,
# pyenv's 3.10.x (this machine image has 3.10.13 there). None of the package registries this project reaches
# serves a CPython 3.10 for Debian 12 (README, "Python 3.10"), so where the machine has none this script says
# so and exits 0 without testing. The venv is made by scripts/setup_venv.sh, the system is set up by
# scripts/setup_system.sh as for `make test`; torch for cp310 comes from PyPI, whose Linux wheel is the CUDA
# build (about 5 GB in the venv, downloaded once).
# Extra arguments go to pytest after `-m "not gpu"` (a later -m wins: `-m "not gpu and not slow and not docker
# and not e2e"` is `make test-fast`'s tier).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-py310}

is_py310() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }

PY310=""
candidates=("${PYTHON310:-}" "$(command -v python3.10 || true)")
if command -v pyenv >/dev/null 2>&1 || [ -d "${PYENV_ROOT:-$HOME/.pyenv}" ]; then
  for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10; do candidates+=("$p"); done
fi
for c in "${candidates[@]}"; do
  if is_py310 "$c"; then PY310=$c; break; fi
done
if [ -z "$PY310" ]; then
  echo "test-py310: SKIPPED: no CPython 3.10 on this machine (looked at \$PYTHON310, python3.10 on PATH," \
    "pyenv's versions/3.10*); the package registries this project reaches serve none for Debian 12."
  exit 0
fi
echo "test-py310: $("$PY310" -c 'import sys; print(sys.version.split()[0])') from $PY310, venv $VENV"

PYTHON=$PY310 VENV=$VENV scripts/setup_venv.sh
# `make system` for this venv: apt packages, a Docker daemon, the sandbox image, editors (Neovim into $VENV).
CODELOOP_PYTHON=$VENV/bin/python VENV=$VENV scripts/setup_system.sh
"$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 10), sys.version'
exec "$VENV/bin/pytest" -m "not gpu" "$@"
