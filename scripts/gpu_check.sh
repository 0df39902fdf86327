#!/usr/bin/env bash
# One command for the GPU machine: gpu-marked tests, Triton kernel tests on CUDA, then the GPU engine
# benchmark (dummy weights, Qwen2.5-Coder 1.5B/7B shapes, vs HF transformers). Results land in OUTDIR:
#   env.txt, pytest_gpu.txt/.xml, pytest_triton_cuda.txt/.xml, bench_gpu.json (+ part_*.json), summary.json
# Every step has its own timeout and a failure is recorded, not fatal; at most ~7.7 minutes (4.1 on an H200, 2026-12-04).
# Usage: bash scripts/gpu_check.sh OUTDIR   (run from the repository root; no network needed)
set -u
OUT="${1:?usage: scripts/gpu_check.sh OUTDIR}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET
PY="${PYTHON:-python3}"

{ nvidia-smi || true; "$PY" -c 'import torch, triton, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__, "transformers", transformers.__version__)'; } > "$OUT/env.txt" 2>&1

# Optional: a bitsandbytes wheel carried along in .whl/ (no network on the GPU machine).
if ls .whl/bitsandbytes-*.whl >/dev/null 2>&1; then
  "$PY" -m pip install --no-deps --no-index .whl/bitsandbytes-*.whl >> "$OUT/env.txt" 2>&1 || true
fi

# The gpu-marked files by name: collecting the whole tree would import packages the GPU image may lack.
timeout 95 "$PY" -m pytest -q -m gpu tests/inference/test_gpu_triton.py tests/inference/test_gpu_bnb.py -p no:cacheprovider \
  --junitxml "$OUT/pytest_gpu.xml" > "$OUT/pytest_gpu.txt" 2>&1
rc_gpu=$?
timeout 55 "$PY" -m pytest -q -m "not slow" tests/inference/test_triton_kernels.py tests/inference/test_triton_backend.py \
  -p no:cacheprovider --junitxml "$OUT/pytest_triton_cuda.xml" > "$OUT/pytest_triton_cuda.txt" 2>&1
rc_kernels=$?
timeout 310 "$PY" -m bench.gpu "$OUT" --budget-s 300 > "$OUT/bench_gpu.stdout" 2>&1
rc_bench=$?

cat > "$OUT/summary.json" <<JSON
{"pytest_gpu_rc": $rc_gpu, "pytest_triton_cuda_rc": $rc_kernels, "bench_gpu_rc": $rc_bench}
JSON
tail -n 3 "$OUT/pytest_gpu.txt" "$OUT/pytest_triton_cuda.txt"
cat "$OUT/summary.json"
