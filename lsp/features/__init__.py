"""LSP features. Each module exposes ``register(server)``; ``lsp.server.FEATURE_MODULES`` lists them."""
