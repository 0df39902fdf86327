"""Block tables of sequences over a shared pool, with prefix reuse and copy-on-write."""

from __future__ import annotations

from dataclasses import dataclass

from inference.batch import BlockCopy
from inference.kv_cache.block_pool import BlockPool
from inference.kv_cache.prefix_cache import ROOT_HASH, BlockKey, PrefixCache, PrefixCacheStats
from inference.sequence import Sequence


@dataclass(frozen=True)
class CachedPrefix:
    """Full blocks of a sequence found in the prefix cache (not yet referenced)."""

    block_ids: list[int]
    block_hashes: list[bytes]

    def __len__(self) -> int:
        return len(self.block_ids)


NO_PREFIX = CachedPrefix([], [])


def block_extra_key(seq: Sequence, start: int, block_size: int) -> str | None:
    """The ``extra_key`` of the block of ``seq`` starting at position ``start``: the adapter key, plus the
    offset where generated tokens begin when the block holds any."""
    num_prompt_in_block = seq.num_prompt_tokens - start
    if num_prompt_in_block >= block_size:
        return seq.extra_key
    return f"{seq.extra_key or ''}\x00generated-from:{max(num_prompt_in_block, 0)}"


class KVCacheManager:
    """Gives sequences KV blocks.

    Invariants: a sequence only ever writes positions ``>= num_computed_tokens``, so full blocks are
    immutable and may be shared (prefix hits, forks); a shared partial block is copied before it is
    written (``BlockCopy``). ``allocate`` changes nothing when it returns None. When no sequence holds
    blocks, ``pool.num_owned == 0``. Speculative drafts are written like any new tokens; ``rollback``
    then releases the blocks past the accepted positions (never a shared or hashed block), and only
    computed, accepted tokens are ever hashed.

    A block's key also says where the sequence's prompt ends inside it (``block_extra_key``): prompt rows
    and generated rows may be computed by different kernels (hybrid weights), so a block holding generated
    tokens is only reused where the same tokens were generated, e.g. by the same sequence after preemption.
    """

    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True) -> None:
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.prefix_cache = PrefixCache()
        self.pool = BlockPool(num_blocks, on_evict=self.prefix_cache.remove)

    @property
    def stats(self) -> PrefixCacheStats:
        return self.prefix_cache.stats

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def match_prefix(self, seq: Sequence) -> CachedPrefix:
        """Longest run of cached full blocks for a sequence holding no blocks.

        At least one position is left to compute, so the runner has a token to sample from.
        """
        if not self.enable_prefix_caching or seq.block_table:
            return NO_PREFIX
        max_blocks = max(seq.target_computed - 1, 0) // self.block_size
        block_ids: list[int] = []
        hashes: list[bytes] = []
        parent = ROOT_HASH
        for i in range(max_blocks):
            key = self._key(seq, i, parent)
            block_hash = key.block_hash
            block_id = self.prefix_cache.lookup(block_hash, key)
            if block_id is None:
                break
            block_ids.append(block_id)
            hashes.append(block_hash)
            parent = block_hash
        return CachedPrefix(block_ids, hashes)

    def allocate(self, seq: Sequence, num_new_tokens: int,
                 prefix: CachedPrefix = NO_PREFIX) -> list[BlockCopy] | None:
        """Make ``seq.block_table`` cover ``num_new_tokens`` more positions (after ``prefix``).

        Returns the block copies the runner must do first, or None (nothing changed) when the pool is short.
        """
        pool = self.pool
        num_computed = seq.num_computed_tokens + len(prefix) * self.block_size
        num_table = len(seq.block_table) + len(prefix)
        num_new_blocks = max(self.blocks_for(num_computed + num_new_tokens) - num_table, 0)
        cow_index = num_computed // self.block_size
        needs_copy = (num_computed % self.block_size != 0 and cow_index < len(seq.block_table)
                      and pool.ref_counts[seq.block_table[cow_index]] > 1)
        num_revived = sum(1 for b in prefix.block_ids if pool.ref_counts[b] == 0)
        if num_new_blocks + needs_copy + num_revived > pool.num_available:
            return None
        for block_id in prefix.block_ids:
            pool.touch(block_id)
        if prefix.block_ids:
            seq.block_table.extend(prefix.block_ids)
            seq.block_hashes.extend(prefix.block_hashes)
            seq.num_computed_tokens = num_computed
        copies = []
        if needs_copy:
            src = seq.block_table[cow_index]
            dst = pool.allocate()
            pool.release(src)
            seq.block_table[cow_index] = dst
            copies.append(BlockCopy(src=src, dst=dst))
        seq.block_table.extend(pool.allocate() for _ in range(num_new_blocks))
        return copies

    def cache_full_blocks(self, seq: Sequence) -> None:
        """Hash the sequence's newly computed full blocks so later sequences can reuse them."""
        if not self.enable_prefix_caching:
            return
        num_full = seq.num_computed_tokens // self.block_size
        while len(seq.block_hashes) < num_full:
            i = len(seq.block_hashes)
            parent = seq.block_hashes[-1] if seq.block_hashes else ROOT_HASH
            key = self._key(seq, i, parent)
            block_hash = key.block_hash
            block_id = seq.block_table[i]
            if not self.pool.hashed[block_id] and self.prefix_cache.insert(block_id, block_hash, key):
                self.pool.mark_hashed(block_id)
            seq.block_hashes.append(block_hash)

    def _key(self, seq: Sequence, index: int, parent: bytes) -> BlockKey:
        start = index * self.block_size
        return BlockKey(parent, tuple(seq.token_ids[start:start + self.block_size]),
                        block_extra_key(seq, start, self.block_size))

    def rollback(self, seq: Sequence, num_computed: int | None = None) -> int:
        """Forget ``seq``'s KV past ``num_computed`` positions (default: its computed ones); returns how many
        blocks were released.

        Blocks wholly past that point are released (a hashed one stays cached: its KV is valid for its key).
        The block the next write lands in is unhashed first if ``seq`` alone holds it (a shared one is
        copied on write by ``allocate``), so cached KV is never overwritten.
        """
        if num_computed is not None:
            seq.num_computed_tokens = min(seq.num_computed_tokens, num_computed)
        keep = self.blocks_for(seq.num_computed_tokens)
        tail = seq.block_table[keep:]
        for block_id in reversed(tail):
            self.pool.release(block_id)
        del seq.block_table[keep:]
        num_full = seq.num_computed_tokens // self.block_size
        del seq.block_hashes[num_full:]
        if num_full < keep:
            boundary = seq.block_table[num_full]
            if self.pool.hashed[boundary] and self.pool.ref_counts[boundary] == 1:
                self.prefix_cache.remove(boundary)
                self.pool.unmark_hashed(boundary)
        return len(tail)

    def fork(self, parent: Sequence, child: Sequence) -> None:
        """Give ``child`` the parent's KV by reference (no copy until a shared partial block is written)."""
        if child.block_table:
            raise ValueError("fork target must hold no blocks")
        for block_id in parent.block_table:
            self.pool.touch(block_id)
        child.block_table = list(parent.block_table)
        child.block_hashes = list(parent.block_hashes)
        child.num_computed_tokens = parent.num_computed_tokens

    def free(self, seq: Sequence) -> None:
        """Release the sequence's blocks, tail first so the LRU evicts tails before shared heads."""
        for block_id in reversed(seq.block_table):
            self.pool.release(block_id)
        seq.block_table = []
        seq.block_hashes = []
        seq.num_computed_tokens = 0

    def record_prefix_hit(self, seq: Sequence, num_hit_tokens: int) -> None:
        self.prefix_cache.record(seq.num_tokens, num_hit_tokens)
