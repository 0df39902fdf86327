"""``InProcessClient.samples``: n samples of one request from the real engine (tiny random model)."""

from __future__ import annotations

import asyncio
import contextlib

from lsp.engine_client import Generation
from lsp.inprocess_client import InProcessClient


def test_n_samples_share_one_request_carry_log_probs_and_abort_when_closed(tiny_qwen2_dir):
    async def run():
        client = InProcessClient(str(tiny_qwen2_dir))
        client.start()
        await client.ready()
        try:
            gen = Generation(prompt="def add(a, b):\n    return", max_tokens=8, temperature=0.7)
            last = None
            async with contextlib.aclosing(client.samples(gen, 3)) as stream:
                async for batch in stream:
                    last = batch
            assert last is not None and last.finished and [s.index for s in last.samples] == [0, 1, 2]
            assert all(s.finished and s.logprob is not None and s.logprob <= 0 for s in last.samples)
            long = Generation(prompt="def add(a, b):\n    return", max_tokens=200, temperature=0.7)
            async with contextlib.aclosing(client.samples(long, 2)) as stream:
                async for _ in stream:
                    break  # closing early aborts the request
            stats = client.stats
            assert stats.num_started == 2 and stats.num_finished == 1 and stats.num_aborted == 1
            for _ in range(200):  # the aborted request's KV blocks go back within a step or two
                engine = client.engine_stats()
                if engine.get("num_running") == 0 and engine.get("num_blocks_owned") == 0:
                    break
                await asyncio.sleep(0.02)
            assert engine.get("num_running") == 0 and engine.get("num_blocks_owned") == 0, engine
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_chat_seed_reaches_the_engine_and_makes_the_answer_reproducible(tiny_qwen2_dir):
    async def answer(client: InProcessClient, seed: int) -> str:
        text = ""
        async for chunk in client.chat([{"role": "user", "content": "hi"}], 16, 1.0, seed=seed):
            text = chunk.text
        return text

    async def run():
        client = InProcessClient(str(tiny_qwen2_dir))
        client.start()
        await client.ready()
        try:
            first, again = await answer(client, 7), await answer(client, 7)
            others = {await answer(client, seed) for seed in (1, 2, 3)}
        finally:
            await client.aclose()
        assert first and first == again
        assert len(others | {first}) > 1  # random weights at temperature 1: unseeded runs differ

    asyncio.run(run())
