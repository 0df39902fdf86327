"""Physical KV blocks: who owns them, which are free, which hold reusable cached KV."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable


class NoFreeBlocks(Exception):
    """Raised by ``BlockPool.allocate`` when every block is owned."""


class BlockPool:
    """A fixed set of ``num_blocks`` KV blocks with reference counts.

    Invariant: every block is in exactly one state:
      - free: ref count 0, not hashed, in the free list;
      - cached: ref count 0, hashed (its KV may be reused), in the LRU (oldest first) and evictable;
      - owned: ref count > 0 (used by one or more sequences), in neither list.

    ``allocate`` takes a free block first and only then evicts the least recently released cached block,
    calling ``on_evict(block_id)`` so the prefix cache can forget it.
    """

    def __init__(self, num_blocks: int, on_evict: Callable[[int], None] | None = None) -> None:
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        self.num_blocks = num_blocks
        self.ref_counts = [0] * num_blocks
        self.hashed = [False] * num_blocks
        self._free: deque[int] = deque(range(num_blocks))
        self._cached: OrderedDict[int, None] = OrderedDict()
        self._on_evict = on_evict

    @property
    def num_free(self) -> int:
        """Blocks with no KV worth keeping."""
        return len(self._free)

    @property
    def num_cached(self) -> int:
        """Unreferenced blocks holding reusable KV (evictable)."""
        return len(self._cached)

    @property
    def num_available(self) -> int:
        """Blocks ``allocate`` can hand out now (free + cached)."""
        return len(self._free) + len(self._cached)

    @property
    def num_owned(self) -> int:
        return self.num_blocks - self.num_available

    def cached_lru(self) -> list[int]:
        """Cached block ids, next to be evicted first."""
        return list(self._cached)

    def allocate(self) -> int:
        """Hand out an unreferenced block with ref count 1; raises ``NoFreeBlocks`` when none is left."""
        if self._free:
            block_id = self._free.popleft()
        elif self._cached:
            block_id, _ = self._cached.popitem(last=False)
            self.hashed[block_id] = False
            if self._on_evict is not None:
                self._on_evict(block_id)
        else:
            raise NoFreeBlocks
        self.ref_counts[block_id] = 1
        return block_id

    def touch(self, block_id: int) -> None:
        """Take one more reference on a block (a prefix-cache hit or a shared fork)."""
        if self.ref_counts[block_id] == 0:
            if not self.hashed[block_id]:
                raise ValueError(f"block {block_id} is free; allocate it instead of touching it")
            del self._cached[block_id]
        self.ref_counts[block_id] += 1

    def release(self, block_id: int) -> None:
        """Drop one reference; at zero the block becomes cached (if hashed) or free."""
        if self.ref_counts[block_id] <= 0:
            raise ValueError(f"block {block_id} released more times than referenced")
        self.ref_counts[block_id] -= 1
        if self.ref_counts[block_id] == 0:
            if self.hashed[block_id]:
                self._cached[block_id] = None
            else:
                self._free.append(block_id)

    def mark_hashed(self, block_id: int) -> None:
        """Record that an owned block now holds full, hashed KV that may be reused after release."""
        if self.ref_counts[block_id] == 0:
            raise ValueError(f"block {block_id} must be owned to be hashed")
        self.hashed[block_id] = True

    def unmark_hashed(self, block_id: int) -> None:
        """An owned block's KV is about to change: it no longer holds reusable cached KV."""
        if self.ref_counts[block_id] == 0:
            raise ValueError(f"block {block_id} must be owned to be unhashed")
        self.hashed[block_id] = False

    def reset_cache(self) -> None:
        """Forget every cached block (they become free); owned blocks are untouched."""
        while self._cached:
            block_id, _ = self._cached.popitem(last=False)
            self.hashed[block_id] = False
            if self._on_evict is not None:
                self._on_evict(block_id)
            self._free.append(block_id)

    def check(self) -> None:
        """Assert the free/cached/owned invariant (for tests and debugging)."""
        free, cached = set(self._free), set(self._cached)
        assert len(free) == len(self._free) and not free & cached
        for block_id in range(self.num_blocks):
            ref = self.ref_counts[block_id]
            assert ref >= 0
            if block_id in free:
                assert ref == 0 and not self.hashed[block_id]
            elif block_id in cached:
                assert ref == 0 and self.hashed[block_id]
            else:
                assert ref > 0, f"block {block_id} is neither free, cached nor owned"
