#!/usr/bin/env bash
# Rebuild security/data/copyleft.idx (+ copyleft.json, the manifest: every candidate, included or not, why,
# and the evidence for its licence), the licence fingerprint index shipped with codeloop.
# Source: the sdists (from PyPI, with pip) of the candidates in security/data/copyleft_candidates.tsv that
# their own metadata and licence files declare GPL, LGPL or AGPL. k-grams of Python's standard library and
# of a third of the installed permissive packages are kept out (security/permissive_corpus.py).
# Long string literals (>= 24 characters) are fingerprinted too (security/fingerprint.py); vendored folders
# (_vendor, extern, external, thirdparty, ...) are not the project's code (security/sdist.py).
# Usage: scripts/build_scan_index.sh [CACHE_DIR]   (needs PyPI once; ~400 MB of sdists)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
CACHE="${1:-${HOME}/.cache/codeloop/scan}"
"$PY" -m codeloop scan index --projects --cache "$CACHE" --out security/data/copyleft.idx
