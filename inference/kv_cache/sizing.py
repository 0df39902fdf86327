"""How many KV blocks fit the configured memory budget."""

from __future__ import annotations

import os
from pathlib import Path

from inference.config import CacheConfig


def available_memory_bytes(device: str) -> int:
    """Free memory where the KV cache will live: HBM on a CUDA device, otherwise available RAM."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def num_kv_blocks(cache: CacheConfig, bytes_per_block: int, device: str, max_useful_blocks: int,
                  max_model_len: int) -> int:
    """Blocks in the pool, sized from what is asked: ``kv_cache_bytes``, else ``kv_cache_tokens``, else
    ``expected_sessions`` sequences of ``max_model_len`` tokens.

    A token-derived budget is capped by ``kv_cache_fraction`` of free memory (an explicit byte budget is
    taken as given); never more than ``max_useful_blocks`` (every sequence at full length). Raises
    ValueError when not even one block fits.
    """
    if bytes_per_block <= 0:
        raise ValueError(f"bytes_per_block must be > 0, got {bytes_per_block}")
    block_size = cache.block_size
    budget = cache.kv_cache_bytes
    if budget is None:
        tokens = cache.kv_cache_tokens or cache.expected_sessions * max_model_len
        cap = int(cache.kv_cache_fraction * available_memory_bytes(device))
        budget = min(-(-tokens // block_size) * bytes_per_block, cap)
    num_blocks = min(budget // bytes_per_block, max_useful_blocks)
    if num_blocks < 1:
        raise ValueError(
            f"KV cache budget of {budget} bytes holds no block of {bytes_per_block} bytes; "
            "raise cache.kv_cache_bytes, cache.kv_cache_tokens or cache.kv_cache_fraction"
        )
    return num_blocks
