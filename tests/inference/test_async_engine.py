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

    def execute(self, batch):
        time.sleep(0.002)
        return super().execute(batch)


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
