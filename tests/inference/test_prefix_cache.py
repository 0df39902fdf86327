"""Prefix cache: chained hashes, verified hits, LRU eviction of cached blocks, counters."""

from inference.kv_cache.manager import KVCacheManager
from inference.kv_cache.prefix_cache import ROOT_HASH, BlockKey, PrefixCache, hash_block
from inference.sampling import SamplingParams
from inference.sequence import Sequence


def make_seq(token_ids, seq_id=0, extra_key=None):
    return Sequence(seq_id=seq_id, request_id=f"r{seq_id}", token_ids=list(token_ids), params=SamplingParams(),
                    extra_key=extra_key)


def compute(kv: KVCacheManager, seq: Sequence) -> None:
    """Allocate and 'compute' the whole sequence (what a step plus update do)."""
    prefix = kv.match_prefix(seq)
    assert kv.allocate(seq, seq.num_uncomputed - len(prefix) * kv.block_size, prefix) is not None
    seq.num_computed_tokens = seq.num_tokens
    kv.cache_full_blocks(seq)


def test_hash_is_chained_and_keyed():
    h0 = hash_block(ROOT_HASH, [1, 2, 3, 4])
    assert h0 == hash_block(ROOT_HASH, [1, 2, 3, 4])
    assert h0 != hash_block(ROOT_HASH, [1, 2, 3, 5])
    assert h0 != hash_block(ROOT_HASH, [1, 2, 3, 4], "adapter@1")
    assert hash_block(ROOT_HASH, [1, 2, 3, 4], "adapter@1") != hash_block(ROOT_HASH, [1, 2, 3, 4], "adapter@2")
    assert hash_block(h0, [5, 6, 7, 8]) != hash_block(hash_block(ROOT_HASH, [0, 2, 3, 4]), [5, 6, 7, 8])


def test_lookup_verifies_tokens_not_just_the_hash():
    cache = PrefixCache()
    key = BlockKey(ROOT_HASH, (1, 2), None)
    assert cache.insert(5, b"h", key)
    assert cache.lookup(b"h", key) == 5
    assert cache.lookup(b"h", BlockKey(ROOT_HASH, (1, 3), None)) is None  # a colliding hash
    assert not cache.insert(6, b"h", key)  # the hash is already served
    cache.remove(5)
    assert cache.lookup(b"h", key) is None
    cache.remove(5)  # unknown: ignored


def test_hit_reuses_full_blocks_and_recomputes_the_tail():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    a = make_seq(range(10), seq_id=0)
    compute(kv, a)
    assert a.block_table == [0, 1, 2] and len(a.block_hashes) == 2
    kv.free(a)
    # released tail first: block 2 (partial, unhashed) is free; 1 then 0 are cached, 1 evicted first
    assert kv.pool.cached_lru() == [1, 0] and kv.pool.num_owned == 0
    b = make_seq(list(range(8)) + [99, 98], seq_id=1)
    prefix = kv.match_prefix(b)
    assert prefix.block_ids == [0, 1]
    assert kv.allocate(b, 2, prefix) == []
    assert b.block_table == [0, 1, 3] and b.num_computed_tokens == 8
    assert kv.pool.ref_counts[:2] == [1, 1] and kv.pool.cached_lru() == []


def test_last_prompt_token_is_always_recomputed():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    compute(kv, a := make_seq(range(8)))
    kv.free(a)
    b = make_seq(range(8), seq_id=1)
    assert kv.match_prefix(b).block_ids == [0]  # not both blocks: position 7 must run to sample from it
    c = make_seq(range(9), seq_id=2)
    assert kv.match_prefix(c).block_ids == [0, 1]


def test_extra_key_separates_adapters():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    compute(kv, a := make_seq(range(10), extra_key="lora-a@1"))
    kv.free(a)
    assert kv.match_prefix(make_seq(range(10), seq_id=1)).block_ids == []
    assert kv.match_prefix(make_seq(range(10), seq_id=2, extra_key="lora-a@2")).block_ids == []
    assert kv.match_prefix(make_seq(range(10), seq_id=3, extra_key="lora-a@1")).block_ids == [0, 1]


def test_eviction_forgets_blocks_tail_first():
    kv = KVCacheManager(num_blocks=4, block_size=4)
    compute(kv, a := make_seq(range(12)))
    kv.free(a)
    assert kv.pool.cached_lru() == [2, 1, 0] and kv.pool.num_free == 1
    other = make_seq([50 + i for i in range(8)], seq_id=1)
    assert kv.allocate(other, 8) == []
    assert other.block_table == [3, 2]  # the free block, then the oldest cached one (a's tail)
    assert kv.match_prefix(make_seq(range(13), seq_id=2)).block_ids == [0, 1]
    kv.free(other)
    assert kv.allocate(make_seq(range(100, 116), seq_id=3), 16) == []  # takes every block
    assert kv.match_prefix(make_seq(range(13), seq_id=4)).block_ids == []
    assert len(kv.prefix_cache) == 0


def test_allocate_changes_nothing_when_short():
    kv = KVCacheManager(num_blocks=2, block_size=4)
    compute(kv, a := make_seq(range(6)))
    kv.free(a)
    b = make_seq(list(range(4)) + [7, 7, 7, 7, 7, 7, 7], seq_id=1)
    prefix = kv.match_prefix(b)
    assert prefix.block_ids == [0]
    assert kv.allocate(b, 7, prefix) is None
    assert b.block_table == [] and b.num_computed_tokens == 0 and kv.pool.cached_lru() == [0]


def test_disabled_prefix_caching_never_hits():
    kv = KVCacheManager(num_blocks=8, block_size=4, enable_prefix_caching=False)
    compute(kv, a := make_seq(range(10)))
    kv.free(a)
    assert kv.pool.num_cached == 0 and kv.pool.num_free == 8
    assert kv.match_prefix(make_seq(range(10), seq_id=1)).block_ids == []


def test_counters():
    kv = KVCacheManager(num_blocks=8, block_size=4)
    kv.record_prefix_hit(make_seq(range(10)), 0)
    kv.record_prefix_hit(make_seq(range(10)), 8)
    stats = kv.stats
    assert (stats.num_requests, stats.num_hit_requests, stats.num_queried_tokens, stats.num_hit_tokens) == (
        2, 1, 20, 8)
    assert stats.token_hit_rate == 0.4 and stats.request_hit_rate == 0.5
