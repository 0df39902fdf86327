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


def num_kv_blocks(cache: CacheConfig, bytes_per_block: int, device: str, max_useful_blocks: int) -> int:
    """Blocks in the pool: the byte budget (explicit, or a fraction of free memory) / bytes per block.

    Never more than ``max_useful_blocks`` (every sequence at full length), so a tiny model does not take a
    quarter of RAM. Raises ValueError when not even one block fits.
    """
    if bytes_per_block <= 0:
        raise ValueError(f"bytes_per_block must be > 0, got {bytes_per_block}")
    budget = cache.kv_cache_bytes
    if budget is None:
        budget = int(cache.kv_cache_fraction * available_memory_bytes(device))
    num_blocks = min(budget // bytes_per_block, max_useful_blocks)
    if num_blocks < 1:
        raise ValueError(
            f"KV cache budget of {budget} bytes holds no block of {bytes_per_block} bytes; "
            "raise cache.kv_cache_bytes or cache.kv_cache_fraction"
        )
    return num_blocks
