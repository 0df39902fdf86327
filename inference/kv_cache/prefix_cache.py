"""Content-addressed index of full KV blocks: chained block hash -> physical block."""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

ROOT_HASH = b""
"""Parent hash of a sequence's first block."""


def hash_block(parent_hash: bytes, token_ids: Sequence[int], extra_key: str | None = None) -> bytes:
    """Chained hash of one full block: depends on every token before it and on ``extra_key``.

    ``extra_key`` carries whatever else changes the KV (the LoRA adapter id and version).
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(parent_hash)
    h.update(b"\x00" if extra_key is None else b"\x01" + extra_key.encode() + b"\x00")
    h.update(array("q", token_ids).tobytes())
    return h.digest()


@dataclass(frozen=True)
class BlockKey:
    """Everything a cached block's KV depends on; compared in full on a hit."""

    parent_hash: bytes
    token_ids: tuple[int, ...]
    extra_key: str | None

    @property
    def block_hash(self) -> bytes:
        return hash_block(self.parent_hash, self.token_ids, self.extra_key)


@dataclass
class PrefixCacheStats:
    """Hit/miss counters; ``queried_tokens`` counts prompt tokens that could have hit."""

    num_requests: int = 0
    num_hit_requests: int = 0
    num_queried_tokens: int = 0
    num_hit_tokens: int = 0

    @property
    def token_hit_rate(self) -> float:
        return self.num_hit_tokens / self.num_queried_tokens if self.num_queried_tokens else 0.0

    @property
    def request_hit_rate(self) -> float:
        return self.num_hit_requests / self.num_requests if self.num_requests else 0.0


class PrefixCache:
    """Maps block hashes to block ids holding that KV.

    Invariant: a block id appears at most once and only while the pool marks it hashed; a lookup returns a
    block only when its full key (parent hash, tokens, extra key) equals the query, so a hash collision can
    never serve the wrong KV.
    """

    def __init__(self) -> None:
        self._by_hash: dict[bytes, int] = {}
        self._keys: dict[int, tuple[bytes, BlockKey]] = {}
        self.stats = PrefixCacheStats()

    def __len__(self) -> int:
        return len(self._by_hash)

    def lookup(self, block_hash: bytes, key: BlockKey) -> int | None:
        block_id = self._by_hash.get(block_hash)
        if block_id is None or self._keys[block_id][1] != key:
            return None
        return block_id

    def insert(self, block_id: int, block_hash: bytes, key: BlockKey) -> bool:
        """Index a block; False (and nothing changes) if the hash is already served by another block."""
        if block_hash in self._by_hash or block_id in self._keys:
            return False
        self._by_hash[block_hash] = block_id
        self._keys[block_id] = (block_hash, key)
        return True

    def remove(self, block_id: int) -> None:
        """Forget a block (it was evicted); unknown ids are ignored."""
        entry = self._keys.pop(block_id, None)
        if entry is not None:
            del self._by_hash[entry[0]]

    def record(self, num_queried_tokens: int, num_hit_tokens: int) -> None:
        self.stats.num_requests += 1
        self.stats.num_hit_requests += num_hit_tokens > 0
        self.stats.num_queried_tokens += num_queried_tokens
        self.stats.num_hit_tokens += num_hit_tokens
