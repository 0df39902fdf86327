"""release_free_heap: freed heap memory below live objects leaves RAM (glibc)."""

from __future__ import annotations

import ctypes
import errno
import mmap

import numpy as np
import pytest

from inference.heap import _malloc_trim, release_free_heap


def _resident(start: int, length: int) -> int:
    """Resident pages of the range, page by page: a page no longer mapped at all (the trim may unmap the top
    of the heap; mincore then fails with ENOMEM) is not resident."""
    libc = ctypes.CDLL(None, use_errno=True)
    first = start // mmap.PAGESIZE * mmap.PAGESIZE
    vec = (ctypes.c_ubyte * 1)()
    resident = 0
    for page in range(first, start + length, mmap.PAGESIZE):
        if libc.mincore(ctypes.c_void_p(page), ctypes.c_size_t(mmap.PAGESIZE), vec) == 0:
            resident += vec[0] & 1
        else:
            assert ctypes.get_errno() == errno.ENOMEM, ctypes.get_errno()
    return resident


@pytest.mark.skipif(_malloc_trim() is None, reason="no malloc_trim in this C library")
def test_freed_heap_pages_below_live_objects_leave_ram():
    big = np.ones(30 << 20, dtype=np.uint8)  # freeing a 30 MiB mapping raises glibc's mmap threshold
    del big
    freed = np.ones(8 << 20, dtype=np.uint8)  # 8 MiB: now a heap chunk
    above = np.ones(1 << 20, dtype=np.uint8)  # lives on above it, so the heap top cannot shrink past it
    start, length = freed.ctypes.data + mmap.PAGESIZE, (8 << 20) - 2 * mmap.PAGESIZE  # inner pages only
    del freed
    assert _resident(start, length) > 0  # free() kept them
    assert release_free_heap()
    assert _resident(start, length) == 0
    assert above.sum() == 1 << 20
