"""KV pool sizing (defect 12): the pool is sized from what is asked (context x expected sessions, or a
budget in tokens or bytes), capped by free memory, and its memory is committed only as blocks are used."""

from __future__ import annotations

import psutil
import pytest

from inference.config import CacheConfig
from inference.kv_cache.sizing import num_kv_blocks

GIB = 1 << 30


def test_default_pool_holds_the_asked_sessions_not_a_quarter_of_ram():
    """`codeloop serve` held 7.1 GiB for the 0.5B: 25% of free RAM whatever the use."""
    bytes_per_block = 16 * 12_288  # 0.5B bf16: 12 KiB per token
    blocks = num_kv_blocks(CacheConfig(), bytes_per_block, "cpu", max_useful_blocks=10**9, max_model_len=8192)
    assert blocks == 4 * 8192 // 16  # expected_sessions (4) full contexts
    two = num_kv_blocks(CacheConfig(expected_sessions=2), bytes_per_block, "cpu", 10**9, max_model_len=8192)
    assert two == 2 * 8192 // 16


def test_budget_in_tokens_or_bytes_and_the_caps():
    bpb = 16 * 1000
    assert num_kv_blocks(CacheConfig(kv_cache_tokens=1600), bpb, "cpu", 10**9, max_model_len=8192) == 100
    assert num_kv_blocks(CacheConfig(kv_cache_bytes=50 * bpb), bpb, "cpu", 10**9, max_model_len=8192) == 50
    assert num_kv_blocks(CacheConfig(kv_cache_tokens=10**12), bpb, "cpu", 10**9, max_model_len=8192) * bpb \
        <= 0.95 * psutil.virtual_memory().available  # a token budget is still capped by free memory
    assert num_kv_blocks(CacheConfig(), bpb, "cpu", max_useful_blocks=7, max_model_len=8192) == 7
    with pytest.raises(ValueError, match="kv_cache_tokens"):
        CacheConfig(kv_cache_tokens=0)
    with pytest.raises(ValueError, match="expected_sessions"):
        CacheConfig(expected_sessions=0)


def test_unused_blocks_cost_no_resident_memory(tiny_qwen2_dir):
    """A pool is virtual until written: RSS grows with the blocks used, up to the pool (grow on demand)."""
    from inference.config import EngineConfig
    from inference.model_runner import ModelRunner

    runner = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", cache=CacheConfig(block_size=16)))
    num_blocks = (256 << 20) // runner.bytes_per_block()  # a 256 MiB pool
    process = psutil.Process()
    before = process.memory_info().rss
    runner.allocate_kv(num_blocks)
    grown = process.memory_info().rss - before
    assert grown < 64 << 20, f"allocating an unused 256 MiB pool made {grown >> 20} MiB resident"
    cache = runner.kv_caches[0]
    assert float(cache.k.abs().sum()) == 0.0 and float(cache.v.abs().sum()) == 0.0  # still zeroed
