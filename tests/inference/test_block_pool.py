"""BlockPool: exact block ids, ref counts and LRU eviction order."""

import random

import pytest

from inference.kv_cache.block_pool import BlockPool, NoFreeBlocks


def test_allocates_free_blocks_in_order_and_reuses_released_last():
    pool = BlockPool(4)
    assert [pool.allocate() for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(NoFreeBlocks):
        pool.allocate()
    pool.release(2)
    pool.release(0)
    assert pool.num_free == 2 and pool.num_owned == 2
    assert [pool.allocate(), pool.allocate()] == [2, 0]
    pool.check()


def test_cached_blocks_are_evicted_least_recently_released_first():
    evicted = []
    pool = BlockPool(3, on_evict=evicted.append)
    a, b, c = pool.allocate(), pool.allocate(), pool.allocate()
    pool.mark_hashed(a)
    pool.mark_hashed(b)
    pool.release(b)
    pool.release(a)
    pool.release(c)  # not hashed: free
    assert pool.cached_lru() == [b, a]
    assert (pool.num_free, pool.num_cached, pool.num_owned) == (1, 2, 0)
    assert pool.allocate() == c  # free blocks go before cached ones
    assert evicted == []
    assert pool.allocate() == b
    assert evicted == [b]
    assert not pool.hashed[b]
    assert pool.allocate() == a
    assert evicted == [b, a]
    pool.check()


def test_touch_revives_a_cached_block_and_counts_references():
    pool = BlockPool(2)
    block = pool.allocate()
    pool.mark_hashed(block)
    pool.release(block)
    assert pool.cached_lru() == [block]
    pool.touch(block)
    pool.touch(block)
    assert pool.ref_counts[block] == 2 and pool.cached_lru() == []
    pool.release(block)
    assert pool.num_owned == 1
    pool.release(block)
    assert pool.cached_lru() == [block]
    pool.check()


def test_misuse_raises():
    pool = BlockPool(2)
    with pytest.raises(ValueError):
        pool.release(0)
    with pytest.raises(ValueError):
        pool.touch(0)
    with pytest.raises(ValueError):
        pool.mark_hashed(1)
    with pytest.raises(ValueError):
        BlockPool(0)


def test_reset_cache_frees_cached_blocks_only():
    evicted = []
    pool = BlockPool(3, on_evict=evicted.append)
    blocks = [pool.allocate() for _ in range(3)]
    for block in blocks:
        pool.mark_hashed(block)
    pool.release(blocks[0])
    pool.release(blocks[1])
    pool.reset_cache()
    assert evicted == [0, 1] and pool.num_free == 2 and pool.num_owned == 1
    pool.check()


def test_random_operations_keep_the_invariant():
    rng = random.Random(7)
    pool = BlockPool(16)
    refs: list[int] = []
    for _ in range(5000):
        op = rng.random()
        if op < 0.4 and pool.num_available:
            block = pool.allocate()
            if rng.random() < 0.5:
                pool.mark_hashed(block)
            refs.append(block)
        elif op < 0.7 and refs:
            pool.release(refs.pop(rng.randrange(len(refs))))
        elif op < 0.85 and pool.cached_lru():
            block = rng.choice(pool.cached_lru())
            pool.touch(block)
            refs.append(block)
        elif refs:
            block = rng.choice(refs)
            pool.touch(block)
            refs.append(block)
        pool.check()
        assert pool.num_owned == len(set(refs))
    for block in refs:
        pool.release(block)
    assert pool.num_owned == 0
    pool.check()
