"""Prompt fitting over HTTP (defect 1 of issue 22): the language server on a shared ``codeloop serve`` (or another
OpenAI-compatible server) fits the prompt to the server's context, from the ``max_model_len`` that ``/v1/models``
advertises and the token counts of ``POST /tokenize``; a server without ``/tokenize`` gets a safe estimate.
Before, an over-long document on a short-context server got HTTP 400 on every keystroke."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lsp.completer import Completer
from lsp.config import Settings
from lsp.http_client import HttpClient
from lsp.suggestion import Document, Suggestion
from tests.inference.server_fixtures import serve_subprocess

from .fake_engine import FakeEngine, FakeServer
from .lsp_session import inline_params, lsp_process, open_doc, start

LONG = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(200)) + "def main():\n    return "
"""About 6,000 characters: a prompt of the default 3,000-character budget is far above a short context."""
LAST_LINE = LONG.count("\n")
URI = "file:///tmp/codeloop-test/long.py"


async def test_counts_come_from_the_servers_tokenize_once_per_text() -> None:
    engine = FakeEngine(tokenize=True, max_model_len=1000)
    with FakeServer(engine) as fake:
        client = HttpClient(fake.url)
        await client.ready()
        assert client.max_prompt_tokens(100) == 900
        for _ in range(3):  # a keystroke that rebuilds the same prompt asks nothing
            assert await asyncio.to_thread(client.count_tokens, LONG) == -(-len(LONG) // 4)
        assert engine.tokenized == [LONG]
        await client.aclose()


@pytest.mark.parametrize("max_model_len", [1000, None])
async def test_a_server_without_tokenize_gets_a_safe_estimate_and_no_error(max_model_len: int | None) -> None:
    """Another OpenAI-compatible server: asked once whether it tokenizes; after that a bound on the count from
    the text's bytes (no tokenizer makes more tokens than bytes), never an error."""
    engine = FakeEngine(owned_by="vllm", max_model_len=max_model_len)
    with FakeServer(engine) as fake:
        client = HttpClient(fake.url)
        await client.ready()
        assert client.max_prompt_tokens(100) == (None if max_model_len is None else 900)
        for text in ("x = 1\n", LONG, "é" * 10):
            assert await asyncio.to_thread(client.count_tokens, text) >= len(text.encode())
        assert len(engine.tokenized) <= 1
        await client.aclose()


async def _suggest_at_the_end_of_long(max_model_len: int) -> tuple[Suggestion | None, FakeEngine]:
    """The completer's suggestion at the end of LONG over HTTP from a tokenizing server with ``max_model_len``."""
    engine = FakeEngine(tokenize=True, max_model_len=max_model_len, default="1\n")
    with FakeServer(engine) as fake:
        client = HttpClient(fake.url)
        completer = Completer(client, Settings().merged({"debounceMs": 0}))
        doc = Document(URI, "/tmp/codeloop-test/long.py", LONG)
        try:
            return await completer.suggest(doc, LAST_LINE, len("    return ")), engine
        finally:
            await client.aclose()


async def test_the_completer_over_http_fits_the_servers_context() -> None:
    suggestion, engine = await _suggest_at_the_end_of_long(300)
    assert suggestion is not None and suggestion.text == "1"
    body = engine.bodies[-1]
    prompt = body["prompt"]
    assert -(-len(prompt) // 4) + body["max_tokens"] <= 300
    assert len(body["prompt"]) > 100  # fitted, not emptied


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_an_over_long_document_on_a_short_context_server_gets_completions(tiny_qwen2_dir: Path) -> None:
    """The reproduction: ``codeloop serve --max-model-len 256`` and a 6,000-character document. Every
    keystroke was an HTTP 400 (prompt longer than the context)."""
    with serve_subprocess(tiny_qwen2_dir, "--dtype", "float32", "--max-model-len", "256") as url:
        async with lsp_process("--engine-url", url) as client:
            await start(client, {"debounceMs": 0, "maxTokens": 8, "maxTokensMultiline": 16})
            open_doc(client, URI, LONG)
            for character in (len("    return "), len("    ret")):
                result = await client.text_document_inline_completion_async(
                    inline_params(URI, LAST_LINE, character))
                assert result is not None
            assert not client.messages  # no error pop-up


async def test_a_prompt_that_surely_fits_costs_no_round_trip() -> None:
    suggestion, engine = await _suggest_at_the_end_of_long(32768)
    assert suggestion is not None
    assert engine.tokenized == [] and len(engine.bodies) == 1
