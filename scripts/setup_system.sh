#!/usr/bin/env bash
# System packages and services for the full test suite, on a fresh Debian 12 machine (as root).
# Idempotent: each part checks before it installs or starts anything.
set -euo pipefail
cd "$(dirname "$0")/.."
for part in sandbox_setup.sh editors_setup.sh; do
  if [ -x "scripts/$part" ]; then
    echo "== scripts/$part"
    "scripts/$part"
  fi
done
