"""``lazy_zeros``: a zeroed tensor whose CPU memory is committed page by page, on first write.

The KV pool is sized for the sessions it may have to hold, not for what it holds now; on CPU its pages
should cost resident memory only once a block is used (that is the pool "growing on demand", up to its
size). ``torch.zeros`` writes every page; ``calloc`` (numpy's ``zeros``) serves a large allocation from a
fresh anonymous mapping, which the kernel hands out as zero pages without touching them.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def lazy_zeros(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """Zeros of ``shape``/``dtype``; on CPU backed by calloc'd memory (committed on first write)."""
    if torch.device(device).type != "cpu":
        return torch.zeros(shape, dtype=dtype, device=device)
    itemsize = torch.empty((), dtype=dtype).element_size()
    raw = np.zeros(math.prod(shape) * itemsize, dtype=np.uint8)
    return torch.from_numpy(raw).view(dtype).view(shape)
