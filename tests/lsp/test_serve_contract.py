"""The HTTP engine client against the real ``codeloop serve`` (tiny model): FIM, chat, abort on close."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request

import pytest

from inference.fim import fim_prompt
from lsp.engine_client import Generation
from lsp.http_client import HttpClient
from tests.inference.server_fixtures import serve_subprocess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serve_url(tiny_qwen2_dir):
    pytest.importorskip("inference.server.app")
    with serve_subprocess(tiny_qwen2_dir, start_timeout_s=120) as url:
        yield url


def _metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def test_fim_stream_chat_and_abort(serve_url):
    client = HttpClient(serve_url)
    try:
        gen = Generation(prompt=fim_prompt("def add(a, b):\n    return", "\n", order="spm"), max_tokens=8, heal=True)
        chunks = [c async for c in client.stream(gen)]
        assert chunks[-1].finished and chunks[-1].num_prompt_tokens > 0
        chat = [c async for c in client.chat([{"role": "user", "content": "hi"}], 6, 0.0)]
        assert chat[-1].finished
        before = _metric(serve_url, 'codeloop_requests_total{endpoint="completions",outcome="disconnected"}')
        long = Generation(prompt="x = ", max_tokens=400)
        async with contextlib.aclosing(client.stream(long)) as stream:
            async for _ in stream:
                break  # the editor moved on: closing the stream must abort the request
        await asyncio.sleep(1.0)
        after = _metric(serve_url, 'codeloop_requests_total{endpoint="completions",outcome="disconnected"}')
        assert after == before + 1
        assert client.stats.num_aborted == 1 and client.stats.num_finished == 2
    finally:
        await client.aclose()
