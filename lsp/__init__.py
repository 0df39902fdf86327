"""codeloop lsp package."""
