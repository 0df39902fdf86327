#!/usr/bin/env bash
# Create .venv and install codeloop with its dev, rl and cluster extras (the tests start a real 2-node Ray
# cluster; cluster stays its own extra because it is what a deployment installs, not a developer tool).
# torch: on a machine without an NVIDIA GPU we want the CPU build. The pinned CPU wheel lies on this kind of
# machine's disk (pip finds it through its configured find-links); elsewhere PyTorch's CPU index serves it.
# A bare `pip install torch` would pull a multi-GB CUDA build, so torch is installed first, explicitly.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_CPU_VERSION=${TORCH_CPU_VERSION:-2.13.0}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip -q --disable-pip-version-check)

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    "${PIP[@]}" install "torch>=2.4"
  elif ! "${PIP[@]}" install "torch==${TORCH_CPU_VERSION}" 2>/dev/null; then
    "${PIP[@]}" install "torch==${TORCH_CPU_VERSION}" --index-url https://download.pytorch.org/whl/cpu \
      || "${PIP[@]}" install "torch==${TORCH_CPU_VERSION}+cpu" --extra-index-url https://download.pytorch.org/whl/cpu
  fi
fi
"${PIP[@]}" install -e ".[dev,rl,cluster]"
# Our CPU kernels (inference/kernels/), built once per torch and CPU: now (~15 s), not on the editor's first start.
"$VENV/bin/python" -c "from inference import kernels
print('native kernels:', 'built' if kernels.available() else 'not on this CPU (torch kernels are used)')" || true
touch "$VENV/.installed"
echo "codeloop installed in $VENV"
