"""KV pool sizing (defect 12): the pool is sized from what is asked (context x expected sessions, or a
budget in tokens or bytes), capped by free memory, and its memory is committed only as blocks are used."""

from __future__ import annotations

from pathlib import Path

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


def _resident_pages(t) -> int:
    """Pages of ``t``'s memory in RAM (mincore(2))."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    start = t.data_ptr() // mmap.PAGESIZE * mmap.PAGESIZE
    length = t.data_ptr() + t.numel() * t.element_size() - start
    vec = (ctypes.c_ubyte * -(-length // mmap.PAGESIZE))()
    assert libc.mincore(ctypes.c_void_p(start), ctypes.c_size_t(length), vec) == 0, ctypes.get_errno()
    return sum(b & 1 for b in vec)


def test_pool_tensors_are_untouched_whatever_the_heap_holds():
    """A layer's K/V of the 0.5B (8 MiB) is under glibc's mmap threshold once it has grown: calloc served it
    from heap memory the loader had freed and zeroed it, making the pool resident at load."""
    import numpy as np
    import torch

    from inference.kv_memory import lazy_zeros

    big = np.ones(30 << 20, dtype=np.uint8)  # freeing a 30 MiB mapping raises glibc's mmap threshold to 30 MiB
    del big
    scratch = [np.ones(1 << 20, dtype=np.uint8) for _ in range(16)]  # heap memory, written, then freed
    del scratch
    t = lazy_zeros((1024, 16, 2, 64), torch.bfloat16, "cpu")  # 4 MiB
    assert _resident_pages(t) == 0
    t[3].fill_(1.0)
    assert 1 <= _resident_pages(t) <= 2 and float(t.sum()) == 16 * 2 * 64
    maps = [line.split() for line in Path("/proc/self/maps").read_text().splitlines()]
    mine = [m for m in maps if int(m[0].split("-")[0], 16) <= t.data_ptr() < int(m[0].split("-")[1], 16)]
    assert mine[0][1] == "rw-p"  # private: mmap(-1, n) alone is shared memory a forked child writes through
