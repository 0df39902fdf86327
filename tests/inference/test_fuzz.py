"""Seeded fuzz: 1,000 random requests with random aborts, priorities, n, tiny KV pool (preemption)."""

import random
from collections import Counter

from inference.config import CacheConfig, EngineConfig
from inference.engine import Engine
from inference.request import FinishReason, Priority
from inference.sampling import SamplingParams
from tests.inference.engine_fakes import FakeRunner, reference_tokens

NUM_REQUESTS = 1000
PREFIXES = [list(b"def solve(x):\n    "), list(b"# shared header\n"), [], list(b"import os\n")]


def random_request(rng: random.Random):
    prompt = rng.choice(PREFIXES) + [rng.randrange(256) for _ in range(rng.randint(1, 14))]
    n = rng.choice([1, 1, 1, 2, 3])
    params = SamplingParams(
        max_tokens=rng.randint(1, 16), n=n, temperature=0.0 if n == 1 and rng.random() < 0.5 else 0.9,
        seed=rng.randrange(1000), ignore_eos=rng.random() < 0.2,
        stop=["\n\n"] if rng.random() < 0.1 else [],
    )
    return prompt, params, rng.choice(list(Priority))


def test_random_traffic_keeps_every_invariant():
    rng = random.Random(1234)
    runner = FakeRunner(block_size=4, max_model_len=48, eos_every=11)
    cache = CacheConfig(block_size=4, kv_cache_bytes=20 * 1000)
    engine = Engine(EngineConfig(cache=cache, max_num_batched_tokens=24, max_num_seqs=6), runner=runner)
    requests, aborted, finals = {}, set(), {}
    finished_count: Counter[str] = Counter()
    while len(requests) < NUM_REQUESTS or engine.has_unfinished():
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            if len(requests) < NUM_REQUESTS:
                prompt, params, priority = random_request(rng)
                rid = engine.add_request(prompt, params, priority=priority)
                requests[rid] = (prompt, params)
        if requests and rng.random() < 0.15:
            rid = rng.choice([*requests, "unknown-id"])
            if rid in requests and rid not in finals:
                aborted.add(rid)
            engine.abort(rid)
        for out in engine.step():
            assert out.request_id not in finals, "output after the final one"
            if out.finished:
                finished_count[out.request_id] += 1
                finals[out.request_id] = out
        engine.kv.pool.check()
        if not engine.has_unfinished():
            assert engine.kv.pool.num_owned == 0
    assert set(finished_count) == set(requests) and set(finished_count.values()) == {1}
    assert engine.kv.pool.num_owned == 0 and not engine.scheduler.requests
    stats = engine.stats()
    assert stats.num_preemptions > 0 and stats.prefix_hit_tokens > 0 and stats.num_requests_finished == 1000
    num_checked = 0
    for rid, out in finals.items():
        prompt, params = requests[rid]
        reasons = {c.finish_reason for c in out.outputs}
        if rid in aborted:
            assert FinishReason.ABORT in reasons and None not in reasons
            continue
        assert FinishReason.ABORT not in reasons
        for sample in out.outputs:
            expected = reference_tokens(prompt, params, sample.index, eos_every=11, max_model_len=48)
            if params.stop:
                assert expected[:len(sample.token_ids)] == sample.token_ids
            else:
                assert sample.token_ids == expected
            num_checked += 1
    assert num_checked > 500
