"""Speculative decoding bookkeeping over the paged fake runner: outputs unchanged, KV rollback invariants.

The fake model reads its context back through the block tables, so a draft left in the KV after
rejection, a block hashed with a rejected draft, or a wrong rollback changes the output or trips a check.
"""

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.config import CacheConfig, EngineConfig, SpeculativeConfig
from inference.engine import Engine
from inference.request import FinishReason
from inference.sampling import SamplingParams
from inference.speculative import Speculator
from inference.speculative.ngram import NgramIndex, NgramProposer
from tests.inference.engine_fakes import EOS, FakeRunner, reference_tokens

PROMPTS = ["def add(a, b):", "hello world, this is a test", "x", "def add(a, b): return"]


class OracleProposer:
    """Drafts the fake model's true next tokens, with some replaced by a wrong one: ``wrong(step, i)``
    says whether draft i of this proposal is corrupted."""

    def __init__(self, params: SamplingParams, wrong, eos_every: int = 0) -> None:
        self.params, self.wrong, self.eos_every = params, wrong, eos_every
        self.calls = 0

    def propose(self, seqs, limits):
        out = []
        for seq, limit in zip(seqs, limits, strict=True):
            self.calls += 1
            truth = reference_tokens(seq.token_ids[:seq.num_prompt_tokens], seq.params, seq.sample_index,
                                     self.eos_every)
            drafts = truth[seq.num_generated:seq.num_generated + limit]
            out.append([(t + 1) % 256 if self.wrong(self.calls, i) else t for i, t in enumerate(drafts)])
        return out


def make_engine(proposer=None, num_blocks=64, block_size=4, caching=True, budget=16, max_num_seqs=8,
                num_tokens=4, max_batch=8, **runner_kw):
    runner = FakeRunner(block_size=block_size, **runner_kw)
    cache = CacheConfig(block_size=block_size, kv_cache_bytes=num_blocks * 1000, enable_prefix_caching=caching)
    config = EngineConfig(cache=cache, max_num_batched_tokens=budget, max_num_seqs=max_num_seqs)
    engine = Engine(config, runner=runner)
    if proposer is not None:
        spec = SpeculativeConfig(method="ngram", num_tokens=num_tokens, max_batch=max_batch, adaptive=False)
        engine.speculator = Speculator(spec, proposer, engine.max_model_len)
    return engine


def check_kv(engine: Engine) -> None:
    """The KV invariants that must hold between steps (see KVCacheManager / Sequence docstrings)."""
    kv, runner = engine.kv, engine.runner
    kv.pool.check()
    holders: Counter[int] = Counter()
    for seq in engine.scheduler.running:
        assert len(seq.block_table) == kv.blocks_for(seq.num_computed_tokens), "blocks past computed positions"
        assert seq.num_computed_tokens < seq.num_tokens and not seq.draft_token_ids
        holders.update(seq.block_table)
    for block_id in range(kv.pool.num_blocks):
        assert kv.pool.ref_counts[block_id] == holders[block_id]
    bs = kv.block_size
    for block_id, (_, key) in kv.prefix_cache._keys.items():  # a hashed block holds exactly its key's tokens
        assert runner.slots[block_id * bs:(block_id + 1) * bs] == list(key.token_ids)
    if not engine.has_unfinished():
        assert kv.pool.num_owned == 0


def run_checked(engine: Engine, prompts, params) -> list:
    ids = [engine.add_request(p, params) for p in prompts]
    final = {}
    while engine.has_unfinished():
        for out in engine.step():
            if out.finished:
                final[out.request_id] = out
        check_kv(engine)
    return [final[i] for i in ids]


@pytest.mark.parametrize("wrong", [lambda step, i: False, lambda step, i: i == 2, lambda step, i: True,
                                   lambda step, i: (step + i) % 3 == 0],
                         ids=["all-right", "third-wrong", "all-wrong", "mixed"])
def test_outputs_equal_plain_decoding_whatever_is_accepted(wrong):
    params = SamplingParams(max_tokens=20, ignore_eos=True)
    engine = make_engine(OracleProposer(params, wrong))
    outs = run_checked(engine, PROMPTS, params)
    for prompt, out in zip(PROMPTS, outs, strict=True):
        assert out.outputs[0].token_ids == reference_tokens(list(prompt.encode()), params)
    stats = engine.stats()
    assert stats.num_draft_tokens > 0 and stats.num_generated_tokens == 80
    if wrong(0, 0) is False and wrong(1, 2) is False:
        assert stats.num_accepted_tokens == stats.num_draft_tokens and stats.num_steps < 40
    if wrong(0, 0) is True and wrong(1, 1) is True:
        assert stats.num_accepted_tokens == 0


def test_stop_inside_accepted_drafts_cuts_there():
    params = SamplingParams(max_tokens=40)
    engine = make_engine(OracleProposer(params, lambda step, i: False, eos_every=5), eos_every=5)
    outs = run_checked(engine, PROMPTS, params)
    for prompt, out in zip(PROMPTS, outs, strict=True):
        expected = reference_tokens(list(prompt.encode()), params, eos_every=5)
        assert out.outputs[0].token_ids == expected
        assert out.outputs[0].finish_reason is (FinishReason.STOP if expected[-1] == EOS else FinishReason.LENGTH)
    assert engine.stats().num_accepted_tokens > 0


def test_drafts_never_pass_max_tokens_or_max_model_len():
    params = SamplingParams(max_tokens=7, ignore_eos=True)
    engine = make_engine(OracleProposer(params, lambda step, i: False), num_tokens=8, max_model_len=40)
    outs = run_checked(engine, PROMPTS + ["y" * 36], params)
    assert [len(o.outputs[0].token_ids) for o in outs] == [7, 7, 7, 7, 4]
    for batch in engine.runner.batches:
        for chunk in batch.chunks:
            assert chunk.num_computed_tokens + len(chunk.token_ids) <= 40


def test_seeded_sampling_is_the_same_with_drafts():
    params = SamplingParams(max_tokens=16, temperature=0.8, seed=3, n=2, ignore_eos=True)
    plain = make_engine().generate(PROMPTS, params)
    spec = run_checked(make_engine(OracleProposer(params, lambda step, i: i == 3)), PROMPTS, params)
    assert [[c.token_ids for c in o.outputs] for o in spec] == [[c.token_ids for c in o.outputs] for o in plain]


def test_preemption_and_small_budget_with_drafts():
    params = SamplingParams(max_tokens=30, ignore_eos=True)
    engine = make_engine(OracleProposer(params, lambda step, i: step % 4 == i), num_blocks=16, budget=9,
                         num_tokens=6)
    outs = run_checked(engine, PROMPTS * 2, params)
    assert engine.stats().num_preemptions > 0
    for prompt, out in zip(PROMPTS * 2, outs, strict=True):
        assert out.outputs[0].token_ids == reference_tokens(list(prompt.encode()), params)
    assert all(b.num_tokens <= 9 for b in engine.runner.batches)


def test_speculation_pauses_above_max_batch():
    params = SamplingParams(max_tokens=6, ignore_eos=True)
    proposer = OracleProposer(params, lambda step, i: False)
    engine = make_engine(proposer, max_batch=2, budget=64)
    run_checked(engine, PROMPTS, params)
    with_drafts = [sum(c.num_draft_tokens > 0 for c in b.chunks) for b in engine.runner.batches]
    decoding = [sum(len(c.token_ids) - c.num_draft_tokens == 1 for c in b.chunks) for b in engine.runner.batches]
    assert all(d == 0 for d, n in zip(with_drafts, decoding, strict=True) if n > 2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompts=st.lists(st.text("abcdefgh ij", min_size=1, max_size=30), min_size=1, max_size=5),
       pattern=st.lists(st.booleans(), min_size=1, max_size=24), num_blocks=st.integers(14, 40),
       num_tokens=st.integers(1, 6), budget=st.integers(8, 24), caching=st.booleans())
def test_rollback_invariants_hold_for_any_mix(prompts, pattern, num_blocks, num_tokens, budget, caching):
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    proposer = OracleProposer(params, lambda step, i: pattern[(step + i) % len(pattern)])
    engine = make_engine(proposer, num_blocks=num_blocks, budget=budget, num_tokens=num_tokens, caching=caching)
    outs = run_checked(engine, prompts, params)
    for prompt, out in zip(prompts, outs, strict=True):
        assert out.outputs[0].token_ids == reference_tokens(list(prompt.encode()), params)


def test_ngram_index_finds_the_latest_longest_match():
    index = NgramIndex(min_n=1, max_n=3)
    tokens = [1, 2, 3, 9, 1, 2, 3, 7, 8, 5, 2, 3]
    assert index.propose(tokens, 3) == [7, 8, 5]  # "2 3" last seen before position 5: followed by 7 8 5
    tokens += [7]
    assert index.propose(tokens, 2) == [8, 5]  # "2 3 7" beats shorter matches
    assert NgramIndex(1, 3).propose([4, 5, 6], 3) == []
    assert NgramIndex(2, 2).propose([5, 5, 5, 5], 4) == [5]  # overlapping self-repeat, never the suffix itself


def test_ngram_proposer_limits_and_end_to_end():
    engine = make_engine(NgramProposer(min_n=1, max_n=3), budget=64)
    params = SamplingParams(max_tokens=24, ignore_eos=True)
    prompts = ["abab abab abab", "hello hello hello"]
    outs = run_checked(engine, prompts, params)
    for prompt, out in zip(prompts, outs, strict=True):
        assert out.outputs[0].token_ids == reference_tokens(list(prompt.encode()), params)
    assert engine.stats().num_draft_tokens > 0


def test_adaptive_draft_length_follows_acceptance_and_row_costs():
    flat = Speculator(SpeculativeConfig(method="ngram", num_tokens=6), NgramProposer(), 1000,
                      row_cost=lambda rows: 1.0 + 0.05 * (rows - 1))  # extra rows nearly free
    assert flat.draft_length(1) == 4  # the prior p = 0.6: a 5th and 6th draft cost more than they bring
    steep = Speculator(SpeculativeConfig(method="ngram", num_tokens=6), NgramProposer(), 1000,
                       row_cost=lambda rows: float(rows))  # every row costs a full step
    assert steep.draft_length(1) == 0
    for _ in range(50):
        flat.observe(4, 0)  # drafts keep failing
    assert flat.acceptance < 0.1 and flat.draft_length(1) <= 1
    for _ in range(50):
        flat.observe(4, 4)
    assert flat.acceptance > 0.9 and flat.draft_length(1) == 6
    fixed = Speculator(SpeculativeConfig(method="ngram", num_tokens=3, adaptive=False), NgramProposer(), 1000,
                       row_cost=lambda rows: float(rows))
    assert fixed.draft_length(4) == 3


def test_speculation_turned_off_by_rejections_tries_again_later():
    """With no drafts there is no new evidence: steps without drafts let the estimate drift back to the
    prior, so one stretch of code that repeats nothing does not end speculation for the editor's session."""
    from inference.sampling import SamplingParams
    from inference.sequence import Sequence

    spec = Speculator(SpeculativeConfig(method="ngram", num_tokens=4), NgramProposer(), 1000,
                      row_cost=lambda rows: 1.0 + 0.2 * (rows - 1))
    for _ in range(60):
        spec.observe(4, 0)
    assert spec.draft_length(1) == 0
    tokens = [1, 2, 3, 4, 1, 2, 3]  # "1 2 3" came before: "4" is a draft once speculation runs again
    seq = Sequence(0, "r", tokens, SamplingParams(max_tokens=50), num_computed_tokens=len(tokens) - 1)
    seq.num_prompt_tokens = 3
    steps = 0
    while not seq.draft_token_ids and steps < 1000:
        spec.propose([seq])
        steps += 1
    assert seq.is_decoding and 10 < steps < 300 and seq.draft_token_ids[:1] == [4]


def test_a_slow_proposer_earns_fewer_drafts():
    class Slow:
        step_seconds = 0.0

        def propose(self, seqs, limits):
            return [[] for _ in seqs]

    proposer = Slow()
    spec = Speculator(SpeculativeConfig(method="draft", draft_model="x", num_tokens=6), proposer, 1000,
                      row_cost=lambda rows: 1.0 + 0.05 * (rows - 1))
    for _ in range(50):
        spec.observe(4, 2)  # p ~ 2/3
    spec.observe_step(0.100, 1)  # a decode step takes 100 ms
    free = spec.draft_length(1)
    assert free >= 4  # free drafts: long ones pay
    proposer.step_seconds = 0.040  # each draft position costs 40% of a decode step
    assert 1 <= spec.draft_length(1) < free
    proposer.step_seconds = 0.5  # drafting is slower than decoding
    assert spec.draft_length(1) == 0
