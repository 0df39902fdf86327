"""``lazy_zeros``: a zeroed tensor whose CPU memory is committed page by page, on first write.

The KV pool is sized for the sessions it may have to hold, not for what it holds now; on CPU its pages
should cost resident memory only once a block is used (that is the pool "growing on demand", up to its
size). ``torch.zeros`` writes every page. ``calloc`` skips that only when it serves a fresh mapping: a
layer's K or V of the 0.5B is 8 MiB, under glibc's mmap threshold once it has grown (to 32 MiB), so it came
from heap memory the loader had freed and calloc zeroed it page by page. Each tensor here is its own
anonymous mapping (private: ``mmap(-1, n)`` alone would be shared memory, which a forked child
would write through), which the kernel hands out as zero pages without touching them.
"""

from __future__ import annotations

import math
import mmap

import torch

_PRIVATE = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)


def lazy_zeros(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """Zeros of ``shape``/``dtype``; on CPU backed by an anonymous mapping (committed on first write)."""
    count = math.prod(shape)
    if torch.device(device).type != "cpu" or count == 0:
        return torch.zeros(shape, dtype=dtype, device=device)
    itemsize = torch.empty((), dtype=dtype).element_size()
    buffer = mmap.mmap(-1, count * itemsize, flags=_PRIVATE) if _PRIVATE else mmap.mmap(-1, count * itemsize)
    return torch.frombuffer(buffer, dtype=dtype, count=count).view(shape)  # the tensor keeps the mapping
