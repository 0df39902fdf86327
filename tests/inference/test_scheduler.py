"""Scheduler: token budget, chunked prefill, decodes first, priorities, preemption, fork, abort."""

import subprocess
import sys

from inference.batch import BlockCopy, SampledToken
from inference.kv_cache.manager import KVCacheManager
from inference.request import FinishReason, Priority
from inference.sampling import SamplingParams
from inference.scheduler import Scheduler
from inference.sequence import Sequence, SequenceStatus


def make_scheduler(num_blocks=8, block_size=4, max_num_seqs=4, budget=16, caching=False):
    kv = KVCacheManager(num_blocks, block_size, enable_prefix_caching=caching)
    return Scheduler(kv, max_num_seqs, budget)


def add(sched, name, num_tokens, priority=Priority.INTERACTIVE, forks=0):
    seq = Sequence(seq_id=sched.new_seq_id(), request_id=name, token_ids=list(range(1, num_tokens + 1)),
                   params=SamplingParams(), priority=priority, num_forks_pending=forks)
    sched.add([seq])
    return seq


def step(sched, token=7):
    out = sched.schedule()
    sampled = [SampledToken(c.seq_id, token) for c in out.batch.chunks if c.sample]
    sched.update(out, sampled)
    return out


def layout(out):
    return [(c.seq_id, c.num_computed_tokens, len(c.token_ids), c.block_table, c.sample) for c in out.batch.chunks]


def test_chunked_prefill_decodes_first_and_budget():
    sched = make_scheduler()
    a, b, c = add(sched, "a", 10), add(sched, "b", 10), add(sched, "c", 10)
    out = step(sched)
    assert layout(out) == [(a.seq_id, 0, 10, [0, 1, 2], True), (b.seq_id, 0, 6, [3, 4], False)]
    assert [s.request_id for s in sched.running] == ["a", "b"] and sched.waiting == [c]
    out = step(sched)
    # a decodes first; b finishes its prompt; c (3 blocks) does not fit the 2 left and waits
    assert layout(out) == [(a.seq_id, 10, 1, [0, 1, 2], True), (b.seq_id, 6, 4, [3, 4, 5], True)]
    assert out.batch.num_tokens == 5 and sched.waiting == [c]
    out = step(sched)
    assert layout(out) == [(a.seq_id, 11, 1, [0, 1, 2], True), (b.seq_id, 10, 1, [3, 4, 5], True)]
    sched.finish(a, FinishReason.STOP)
    assert sched.kv.pool.num_owned == 3
    out = step(sched)
    assert layout(out) == [(b.seq_id, 11, 1, [3, 4, 5], True), (c.seq_id, 0, 10, [6, 7, 2], True)]  # never-used blocks first


def test_max_num_seqs_limits_running():
    sched = make_scheduler(num_blocks=16, max_num_seqs=2, budget=64)
    seqs = [add(sched, f"r{i}", 3) for i in range(3)]
    out = step(sched)
    assert [c.seq_id for c in out.batch.chunks] == [seqs[0].seq_id, seqs[1].seq_id]
    assert sched.waiting == [seqs[2]]


def test_priorities_then_fifo():
    sched = make_scheduler(num_blocks=16, budget=64)
    batch = add(sched, "batch", 3, Priority.BATCH)
    chat1 = add(sched, "chat1", 3, Priority.CHAT)
    inter = add(sched, "inter", 3, Priority.INTERACTIVE)
    chat2 = add(sched, "chat2", 3, Priority.CHAT)
    out = step(sched)
    assert [c.seq_id for c in out.batch.chunks] == [s.seq_id for s in (inter, chat1, chat2, batch)]


def test_waiting_interactive_preempts_running_batch_when_full():
    sched = make_scheduler(num_blocks=16, max_num_seqs=1, budget=64)
    batch = add(sched, "batch", 5, Priority.BATCH)
    step(sched)
    inter = add(sched, "inter", 3)
    out = step(sched)
    assert [c.seq_id for c in out.batch.chunks] == [inter.seq_id]
    assert out.preempted == [batch] and batch.status is SequenceStatus.WAITING
    assert batch.block_table == [] and batch.num_computed_tokens == 0 and batch.num_tokens == 6
    sched.finish(inter, FinishReason.STOP)
    out = step(sched)
    assert layout(out) == [(batch.seq_id, 0, 6, out.batch.chunks[0].block_table, True)]  # recompute all


def test_equal_priority_waits_instead_of_preempting():
    sched = make_scheduler(num_blocks=16, max_num_seqs=1, budget=64)
    add(sched, "first", 5)
    step(sched)
    second = add(sched, "second", 3)
    out = step(sched)
    assert len(out.batch.chunks) == 1 and out.preempted == [] and sched.waiting == [second]


def test_kv_exhaustion_preempts_newest_and_recomputes():
    sched = make_scheduler(num_blocks=4, budget=64)
    a, b = add(sched, "a", 7), add(sched, "b", 7)
    assert layout(step(sched)) == [(a.seq_id, 0, 7, [0, 1], True), (b.seq_id, 0, 7, [2, 3], True)]
    step(sched)  # positions 7 still fit
    out = step(sched)  # a needs a third block: b (newest) is preempted
    assert out.preempted == [b]
    assert layout(out) == [(a.seq_id, 8, 1, [0, 1, 3], True)]
    assert b.status is SequenceStatus.WAITING and b.num_tokens == 9 and sched.num_preemptions == 1
    sched.finish(a, FinishReason.STOP)
    out = step(sched)
    assert layout(out) == [(b.seq_id, 0, 9, [2, 3, 1], True)]
    sched.finish(b, FinishReason.STOP)
    assert sched.kv.pool.num_owned == 0 and not sched.has_unfinished()


def test_a_lone_sequence_preempts_itself_instead_of_crashing():
    sched = make_scheduler(num_blocks=2, budget=64)
    a = add(sched, "a", 8)
    step(sched)
    out = step(sched)  # needs a third block; nobody else to preempt
    assert out.preempted == [a] and out.batch.chunks == []
    assert sched.kv.pool.num_owned == 0


def test_fork_shares_prompt_blocks_and_copies_the_partial_tail():
    sched = make_scheduler(num_blocks=8, budget=64, caching=True)
    parent = add(sched, "r", 6, forks=2)
    out = step(sched)
    assert layout(out) == [(parent.seq_id, 0, 5, [0, 1], False)]  # all but the last prompt token
    out = step(sched)
    seqs = sched.requests["r"]
    assert [s.sample_index for s in seqs] == [0, 1, 2]
    assert layout(out) == [
        (seqs[0].seq_id, 5, 1, [0, 2], True),
        (seqs[1].seq_id, 5, 1, [0, 3], True),
        (seqs[2].seq_id, 5, 1, [0, 1], True),
    ]
    assert out.batch.copies == [BlockCopy(src=1, dst=2), BlockCopy(src=1, dst=3)]
    assert sched.kv.pool.ref_counts[:4] == [3, 1, 1, 1]
    for seq in seqs:
        sched.finish(seq, FinishReason.STOP)
    assert sched.kv.pool.num_owned == 0 and "r" not in sched.requests


def test_abort_frees_blocks_and_ignores_unknown_ids():
    sched = make_scheduler()
    a, b = add(sched, "a", 10), add(sched, "b", 10)
    step(sched)
    assert sched.abort("nope") == []
    assert sched.abort("a") == [a] and a.finish_reason is FinishReason.ABORT
    assert sched.abort("a") == []
    assert sched.abort("b") == [b]
    assert sched.kv.pool.num_owned == 0 and not sched.has_unfinished()


def test_bookkeeping_does_not_import_torch():
    code = ("import sys, inference.scheduler, inference.kv_cache.manager, inference.engine, inference.sequence;"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
