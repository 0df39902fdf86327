"""AsyncEngine: streaming to asyncio and sync consumers, cancellation = abort, shutdown."""

import asyncio
import contextlib
import threading
import time

import pytest

from inference.async_engine import AsyncEngine
from inference.config import CacheConfig, EngineConfig
from inference.engine import Engine
from inference.request import FinishReason
from inference.sampling import SamplingParams
from tests.inference.engine_fakes import FakeRunner, reference_tokens


class SlowRunner(FakeRunner):
    """Takes a little time per step so consumers can act while a request is running."""

    def execute(self, batch, check=None):
        time.sleep(0.002)
        return super().execute(batch, check)


@pytest.fixture
def engine():
    runner = SlowRunner(block_size=4, max_model_len=256)
    config = EngineConfig(cache=CacheConfig(block_size=4, kv_cache_bytes=128 * 1000), max_num_batched_tokens=32)
    async_engine = AsyncEngine(Engine(config, runner=runner))
    yield async_engine
    async_engine.shutdown()


def wait_idle(async_engine, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = async_engine.stats()
        if stats.num_running == 0 and stats.num_waiting == 0:
            return stats
        time.sleep(0.01)
    raise AssertionError("engine did not go idle")


async def test_concurrent_streams_match_the_reference(engine):
    params = SamplingParams(max_tokens=20)

    async def run(prompt):
        outs = [out async for out in engine.generate(prompt, params)]
        assert outs[-1].finished and not any(o.finished for o in outs[:-1])
        assert "".join(o.outputs[0].delta_text for o in outs) == outs[-1].outputs[0].text
        return outs[-1].outputs[0].token_ids

    prompts = ["alpha", "beta beta", "gamma gamma gamma"]
    results = await asyncio.gather(*(run(p) for p in prompts))
    assert results == [reference_tokens(list(p.encode()), params) for p in prompts]


async def test_cancelling_the_consumer_aborts_and_frees_blocks(engine):
    got_first = asyncio.Event()
    outs = []

    async def consume():
        async for out in engine.generate("long one", SamplingParams(max_tokens=200, ignore_eos=True),
                                         request_id="long"):
            outs.append(out)
            got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = await asyncio.to_thread(wait_idle, engine)
    assert stats.num_blocks_owned == 0
    assert len(outs[-1].outputs[0].token_ids) < 200


async def test_breaking_out_aborts(engine):
    agen = engine.generate("break early", SamplingParams(max_tokens=200, ignore_eos=True))
    async with contextlib.aclosing(agen):
        async for _out in agen:
            break
    stats = await asyncio.to_thread(wait_idle, engine)
    assert stats.num_blocks_owned == 0 and stats.num_generated_tokens < 200


async def test_rejected_request_raises_in_the_consumer(engine):
    with pytest.raises(ValueError, match="max_model_len"):
        async for _ in engine.generate("x" * 300):
            pass
    with pytest.raises(ValueError, match="empty"):
        async for _ in engine.generate(""):
            pass
    engine.abort("never-existed")
    out = [o async for o in engine.generate("still works", SamplingParams(max_tokens=3))]
    assert out[-1].finished


async def test_explicit_abort_ends_the_stream_with_abort(engine):
    outs = []
    async for out in engine.generate("abort me", SamplingParams(max_tokens=200, ignore_eos=True),
                                     request_id="victim"):
        outs.append(out)
        if len(outs) == 2:
            engine.abort("victim")
    assert outs[-1].finished and outs[-1].outputs[0].finish_reason is FinishReason.ABORT


def test_sync_use_from_threads(engine):
    params = SamplingParams(max_tokens=10)
    results = {}

    def worker(prompt):
        results[prompt] = engine.complete(prompt, params).outputs[0].token_ids

    threads = [threading.Thread(target=worker, args=(p,)) for p in ("one", "two", "three")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {p: reference_tokens(list(p.encode()), params) for p in ("one", "two", "three")}
    stream = engine.stream("closed early", SamplingParams(max_tokens=200, ignore_eos=True))
    next(stream)
    stream.close()
    assert wait_idle(engine).num_blocks_owned == 0


def test_shutdown_ends_streams_with_abort(engine):
    stream = engine.stream("in flight", SamplingParams(max_tokens=200, ignore_eos=True))
    first = next(stream)
    assert not first.finished
    engine.shutdown()
    rest = list(stream)
    assert rest[-1].finished and rest[-1].outputs[0].finish_reason is FinishReason.ABORT
    with pytest.raises(RuntimeError, match="shut down"):
        engine.complete("too late")



class LongPromptRunner(FakeRunner):
    """A prompt step takes about a second, checking between its 100 "layers" like the model does."""

    layers_run = 0
    on_layer = None
    """Called before each layer (a test's stand-in for another thread acting meanwhile)."""

    def execute(self, batch, check=None):
        if any(c.num_computed_tokens < c.num_prompt_tokens for c in batch.chunks):
            for _ in range(100):
                if self.on_layer is not None:
                    self.on_layer()
                if check is not None:
                    check()
                time.sleep(0.01)
                self.layers_run += 1
        return super().execute(batch)


def long_prompt_engine():
    runner = LongPromptRunner(block_size=4, max_model_len=256)
    config = EngineConfig(cache=CacheConfig(block_size=4, kv_cache_bytes=128 * 1000), max_num_batched_tokens=64)
    return runner, AsyncEngine(Engine(config, runner=runner))


def in_thread(fn):
    """Run ``fn()`` in a thread; returns a function that joins it and gives its result."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", fn()))
    thread.start()

    def result():
        thread.join(10)
        return box["value"]
    return result


def test_abort_ends_a_long_prompt_step_between_layers_and_keeps_nothing_of_it():
    """The editor cancels a request one keystroke later: the engine is free again within a layer, not a
    step, nothing of the stopped step is cached, and the next request is answered as if it never ran."""
    runner, async_engine = long_prompt_engine()
    try:
        head = "the file above the cursor, " * 2
        async_engine.complete(head, SamplingParams(max_tokens=1))  # cached: the stale step computes the tail
        prompt = head + "x = 1"
        runner.layers_run = 0
        stale = in_thread(lambda: list(async_engine.stream(prompt, SamplingParams(max_tokens=5),
                                                           request_id="stale")))
        time.sleep(0.2)  # its prompt step is running now
        async_engine.abort("stale")
        rest = stale()
        assert rest[-1].outputs[0].finish_reason is FinishReason.ABORT and rest[-1].outputs[0].token_ids == []
        assert 0 < runner.layers_run < 80  # stopped between two "layers", long before the step's end
        stats = wait_idle(async_engine)
        assert stats.num_interrupted_steps == 1 and stats.num_blocks_owned == 0
        params = SamplingParams(max_tokens=8)
        again = async_engine.complete(prompt, params)
        assert again.num_cached_tokens == len(head) // 4 * 4  # the head's blocks, nothing of the stopped step
        assert again.outputs[0].token_ids == reference_tokens(list(prompt.encode()), params)
    finally:
        async_engine.shutdown()


def sync_long_prompt_engine():
    runner = LongPromptRunner(block_size=4, max_model_len=256)
    config = EngineConfig(cache=CacheConfig(block_size=4, kv_cache_bytes=128 * 1000), max_num_batched_tokens=64)
    return runner, Engine(config, runner=runner)


def test_a_step_with_a_live_request_runs_to_its_end():
    """Only a step whose every request was aborted stops early: a neighbour's prompt is never cut short."""
    runner, engine = sync_long_prompt_engine()
    params = SamplingParams(max_tokens=6)
    heads = ["the live file above, " * 2, "the stale file above, " * 2]
    engine.generate(heads, SamplingParams(max_tokens=1))
    engine.add_request(heads[0] + "a = 1", params, request_id="live")
    engine.add_request(heads[1] + "b = 2", params, request_id="stale")
    runner.layers_run = 0
    runner.on_layer = lambda: engine.request_stop("stale")  # arrives while both tails run in one step
    engine.step()
    runner.on_layer = None
    assert runner.layers_run == 100 and engine.stats().num_interrupted_steps == 0
    engine.abort("stale")
    outs = {}
    while engine.has_unfinished():
        outs.update((o.request_id, o) for o in engine.step())
    assert outs["stale"].outputs[0].finish_reason is FinishReason.ABORT
    assert outs["live"].outputs[0].token_ids == reference_tokens(list((heads[0] + "a = 1").encode()), params)
    assert engine.stats().num_blocks_owned == 0


def test_a_step_computing_most_of_its_prompt_runs_to_its_end():
    """A step computing most of a prompt (a new context) does work the next keystroke's prompt shares: an
    abort waits for its end, and its blocks are cached for the next request."""
    runner, engine = sync_long_prompt_engine()
    prompt = "a context the cache has never seen " * 2
    engine.add_request(prompt, SamplingParams(max_tokens=6), request_id="stale")
    runner.on_layer = lambda: engine.request_stop("stale")
    engine.step()
    runner.on_layer = None
    assert runner.layers_run == 100 and engine.stats().num_interrupted_steps == 0
    engine.abort("stale")
    while engine.has_unfinished():
        engine.step()
    again = engine.generate([prompt + " more"], SamplingParams(max_tokens=2))[0]
    assert again.num_cached_tokens >= len(prompt) // 4 * 4 - 4
