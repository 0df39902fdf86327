"""codeloop inference engine: paged KV cache, prefix reuse, continuous batching."""
