#!/usr/bin/env bash
# Rebuild security/data/copyleft.idx, the licence fingerprint index shipped with codeloop.
# Source: the pylint 3.3.1 sdist from PyPI (GPL-2.0-or-later), its `pylint/` package only.
# Usage: scripts/build_scan_index.sh [CACHE_DIR]   (needs network access to PyPI once)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
CACHE="${1:-${HOME}/.cache/codeloop/scan}"
VERSION=3.3.1
mkdir -p "$CACHE"
if [ ! -d "$CACHE/pylint-$VERSION" ]; then
    "$PY" -m pip download --no-deps --no-binary :all: "pylint==$VERSION" -d "$CACHE"
    tar -xzf "$CACHE/pylint-$VERSION.tar.gz" -C "$CACHE"
fi
"$PY" -m codeloop scan index "$CACHE/pylint-$VERSION/pylint" \
    --licence GPL-2.0-or-later --name "pylint-$VERSION/pylint" \
    --out security/data/copyleft.idx
