#!/usr/bin/env bash
# The Neovim plugin as its own git repository (branch `nvim`), for plugin managers that install a repository
# root: lazy.nvim, vim.pack (0.12), packer, rocks-git. The plugin is editors/nvim (lua/codeloop.lua,
# lsp/codeloop.lua for Neovim 0.11's vim.lsp.config); this copies that tree as it is now into OUT.
# Publish it as the project's `nvim` branch:  git -C OUT push <project remote> nvim
# (equivalently, from committed history: git subtree split --prefix=editors/nvim -b nvim).
# Usage: scripts/nvim_plugin.sh OUT_DIR
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: scripts/nvim_plugin.sh OUT_DIR}"
rm -rf "$OUT"
mkdir -p "$OUT"
cp -R "$REPO/editors/nvim/." "$OUT/"
git -C "$OUT" init -q -b nvim
git -C "$OUT" add -A
git -C "$OUT" -c user.name=codeloop -c user.email=codeloop@localhost commit -q \
  -m "codeloop Neovim plugin from $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo a source tree)"
echo "$OUT (branch nvim)"
