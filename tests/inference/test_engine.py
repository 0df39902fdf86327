"""Engine over a paged fake runner: outputs, stop rules, streaming, abort, preemption, n > 1, stats."""

import pytest

from inference.config import CacheConfig, EngineConfig
from inference.engine import Engine
from inference.request import FinishReason, Priority
from inference.sampling import SamplingParams
from tests.inference.engine_fakes import EOS, FakeRunner, reference_tokens

PROMPTS = ["def add(a, b):", "hello world, this is a test", "x", "def add(a, b): return"]


def make_engine(num_blocks=64, block_size=4, caching=True, budget=16, max_num_seqs=8, **runner_kw):
    runner = FakeRunner(block_size=block_size, **runner_kw)
    cache = CacheConfig(block_size=block_size, kv_cache_bytes=num_blocks * 1000, enable_prefix_caching=caching)
    config = EngineConfig(cache=cache, max_num_batched_tokens=budget, max_num_seqs=max_num_seqs)
    return Engine(config, runner=runner)


def text_of(tokens):
    return bytes(t for t in tokens if t < 256).decode("utf-8", errors="replace")


def test_outputs_match_the_unpaged_reference_in_input_order():
    engine = make_engine()
    params = SamplingParams(max_tokens=12)
    outs = engine.generate(PROMPTS, params)
    assert [o.request_id for o in outs] == ["req-0", "req-1", "req-2", "req-3"]
    for prompt, out in zip(PROMPTS, outs, strict=True):
        expected = reference_tokens(list(prompt.encode()), params)
        assert out.finished and out.outputs[0].token_ids == expected
        assert out.outputs[0].text == text_of(expected)
        assert out.outputs[0].finish_reason is FinishReason.LENGTH
    stats = engine.stats()
    assert stats.num_blocks_owned == 0 and stats.num_running == 0 and stats.num_requests_finished == 4
    assert stats.num_generated_tokens == 48 and stats.max_batch_size >= 2


def test_prefix_cache_and_batching_never_change_outputs():
    params = SamplingParams(max_tokens=10)
    cached = make_engine(caching=True)
    cached.generate(PROMPTS, params)  # warm the cache
    warm = cached.generate(PROMPTS, params)
    assert cached.stats().prefix_hit_tokens > 0 and warm[3].num_cached_tokens >= 4
    uncached = make_engine(caching=False)
    one_by_one = [uncached.generate([p], params)[0] for p in PROMPTS]
    assert uncached.stats().prefix_hit_tokens == 0
    assert [o.outputs[0].token_ids for o in warm] == [o.outputs[0].token_ids for o in one_by_one]


def test_kv_exhaustion_preempts_without_changing_outputs():
    params = SamplingParams(max_tokens=30, ignore_eos=True)
    engine = make_engine(num_blocks=16, budget=64)
    outs = engine.generate(PROMPTS * 2, params)
    assert engine.stats().num_preemptions > 0 and engine.stats().num_blocks_owned == 0
    for prompt, out in zip(PROMPTS * 2, outs, strict=True):
        assert out.outputs[0].token_ids == reference_tokens(list(prompt.encode()), params)


def test_stop_rules():
    engine = make_engine(eos_every=5)
    prompt = list(b"stop rules")
    eos_out = engine.generate([prompt], SamplingParams(max_tokens=200))[0].outputs[0]
    assert eos_out.finish_reason is FinishReason.STOP and eos_out.token_ids[-1] == EOS
    assert EOS not in eos_out.token_ids[:-1]
    assert eos_out.text == text_of(eos_out.token_ids)
    ignore = engine.generate([prompt], SamplingParams(max_tokens=40, ignore_eos=True))[0].outputs[0]
    assert len(ignore.token_ids) == 40 and ignore.finish_reason is FinishReason.LENGTH
    stop_id = ignore.token_ids[3]
    by_id = engine.generate([prompt], SamplingParams(max_tokens=40, ignore_eos=True, stop_token_ids=[stop_id]))
    first = ignore.token_ids.index(stop_id)
    assert by_id[0].outputs[0].token_ids == ignore.token_ids[:first + 1]
    assert by_id[0].outputs[0].finish_reason is FinishReason.STOP


def test_stop_string_is_cut_and_never_streamed():
    engine = make_engine()
    base = engine.generate(["stop string"], SamplingParams(max_tokens=40, ignore_eos=True))[0].outputs[0].text
    stop = base[10:13]
    cut = base.index(stop)
    rid = engine.add_request("stop string", SamplingParams(max_tokens=40, ignore_eos=True, stop=[stop, "zzz"]))
    deltas, final = [], None
    while engine.has_unfinished():
        for out in engine.step():
            deltas.append(out.outputs[0].delta_text)
            assert stop not in out.outputs[0].text
            final = out
    assert final.request_id == rid and final.outputs[0].finish_reason is FinishReason.STOP
    assert final.outputs[0].text == base[:cut] == "".join(deltas)


def test_max_model_len_and_prompt_validation():
    engine = make_engine(max_model_len=20)
    out = engine.generate(["0123456789"], SamplingParams(max_tokens=100))[0].outputs[0]
    assert out.finish_reason is FinishReason.LENGTH and len(out.token_ids) == 10
    one = engine.generate(["x" * 20], SamplingParams(max_tokens=5))[0].outputs[0]
    assert len(one.token_ids) == 1 and one.finish_reason is FinishReason.LENGTH
    with pytest.raises(ValueError, match="max_model_len"):
        engine.add_request("x" * 21)
    with pytest.raises(ValueError, match="empty"):
        engine.add_request("")
    with pytest.raises(ValueError, match="token ids"):
        engine.add_request([1, 2, 9999])
    with pytest.raises(ValueError, match="temperature"):
        engine.add_request("hi", SamplingParams(temperature=-1))
    with pytest.raises(ValueError, match="n="):
        engine.add_request("hi", SamplingParams(n=100))
    with pytest.raises(ValueError, match="adapter"):
        engine.add_request("hi", adapter_id="lora")
    engine.add_request("hi", request_id="same")
    with pytest.raises(ValueError, match="already in use"):
        engine.add_request("hi", request_id="same")
    assert make_engine(num_blocks=2).generate(["hi"], SamplingParams(max_tokens=4))[0].finished
    with pytest.raises(ValueError, match="max_tokens"):
        make_engine(num_blocks=2).add_request("hi", SamplingParams(max_tokens=20))


def test_abort():
    engine = make_engine()
    engine.abort("unknown")
    assert engine.step() == [] and not engine.has_unfinished()
    rid = engine.add_request("abort me", SamplingParams(max_tokens=50))
    keep = engine.add_request("keep me", SamplingParams(max_tokens=5))
    engine.step()
    engine.abort(rid)
    assert engine.stats().num_blocks_owned > 0  # keep's blocks
    outs = engine.step()
    aborted = [o for o in outs if o.request_id == rid]
    assert len(aborted) == 1 and aborted[0].finished
    assert aborted[0].outputs[0].finish_reason is FinishReason.ABORT
    engine.abort(rid)  # finished: no-op
    while engine.has_unfinished():
        for out in engine.step():
            assert out.request_id == keep
    assert engine.stats().num_blocks_owned == 0


def test_n_samples_are_seeded_and_fork_the_prompt():
    params = SamplingParams(max_tokens=15, n=3, temperature=0.8, seed=11)
    engine = make_engine(caching=False)
    out = engine.generate(["forked prompt!"], params)[0]
    again = make_engine().generate(["forked prompt!"], params)[0]
    assert [c.index for c in out.outputs] == [0, 1, 2]
    for sample in out.outputs:
        assert sample.token_ids == reference_tokens(list(b"forked prompt!"), params, sample.index)
    assert [c.token_ids for c in out.outputs] == [c.token_ids for c in again.outputs]
    assert len({tuple(c.token_ids) for c in out.outputs}) == 3
    assert any(batch.copies for batch in engine.runner.batches)  # the partial tail was copied on write
    single = make_engine().generate([[42]], params)[0]  # 1-token prompt: no fork, n independent sequences
    assert [c.token_ids for c in single.outputs] == [reference_tokens([42], params, i) for i in range(3)]
    assert engine.stats().num_blocks_owned == 0


def test_priority_runs_interactive_first():
    engine = make_engine(max_num_seqs=1)
    batch = engine.add_request("batch job", SamplingParams(max_tokens=5), priority=Priority.BATCH)
    inter = engine.add_request("typing", SamplingParams(max_tokens=5), priority=Priority.INTERACTIVE)
    order = []
    while engine.has_unfinished():
        order += [o.request_id for o in engine.step() if o.finished]
    assert order == [inter, batch]


def test_logprobs_and_streaming_deltas():
    engine = make_engine()
    rid = engine.add_request("stream", SamplingParams(max_tokens=8, logprobs=True))
    outs = []
    while engine.has_unfinished():
        outs += engine.step()
    assert all(o.request_id == rid for o in outs) and outs[-1].finished
    final = outs[-1].outputs[0]
    assert "".join(o.outputs[0].delta_text for o in outs) == final.text
    assert final.logprobs == [-float(t % 7) for t in final.token_ids]


def test_generate_keeps_outputs_of_other_requests():
    engine = make_engine()
    other = engine.add_request("other", SamplingParams(max_tokens=30))
    engine.generate(["mine"], SamplingParams(max_tokens=3))
    seen = []
    while engine.has_unfinished():
        seen += engine.step()
    assert {o.request_id for o in seen} == {other} and seen[-1].finished
    assert "".join(o.outputs[0].delta_text for o in seen) == seen[-1].outputs[0].text
    assert len(seen[-1].outputs[0].token_ids) == 30


def test_cache_sizing():
    from inference.kv_cache.sizing import available_memory_bytes, num_kv_blocks

    assert available_memory_bytes("cpu") > 0
    assert num_kv_blocks(CacheConfig(kv_cache_bytes=10_500), 1000, "cpu", 100, 4096) == 10
    assert num_kv_blocks(CacheConfig(kv_cache_bytes=10_500), 1000, "cpu", 4, 4096) == 4
    assert num_kv_blocks(CacheConfig(kv_cache_fraction=0.5), 1000, "cpu", 7, 4096) == 7
    with pytest.raises(ValueError, match="kv_cache_bytes"):
        num_kv_blocks(CacheConfig(kv_cache_bytes=999), 1000, "cpu", 100, 4096)
