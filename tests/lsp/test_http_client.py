"""The language server's HTTP engine client against servers other than a friendly codeloop serve: an API key,
an engine that fails mid-stream, and an OpenAI-compatible server that is not codeloop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from inference.server.launcher import free_port
from lsp.engine_client import EngineError, EngineStreamError, Generation
from lsp.http_client import EngineUnreachable, HttpClient

from .fake_engine import FakeEngine, FakeServer
from .lsp_session import inline_params, lsp_process, open_doc, start

URI = "file:///tmp/codeloop-test/keyed.py"
TEXT = "import math\n\n\ndef area(r):\n    return \n"
FIM = Generation(prompt="<|fim_prefix|>def f():\n    return<|fim_suffix|>\n<|fim_middle|>", max_tokens=8)


async def _text(client: HttpClient, gen: Generation = FIM) -> str:
    text = ""
    async for chunk in client.stream(gen):
        text = chunk.text
    return text


async def test_api_key_is_sent_and_a_wrong_one_is_named() -> None:
    engine = FakeEngine(api_key="s3cret", default="1\n")
    with FakeServer(engine) as fake:
        good = HttpClient(fake.url, api_key="s3cret")
        assert await _text(good) == "1\n"
        assert engine.headers[-1]["authorization"] == "Bearer s3cret"
        bad = HttpClient(fake.url, api_key="wrong")
        with pytest.raises(EngineError, match=r"refused the API key \(HTTP 401\).*CODELOOP_API_KEY"):
            await _text(bad)
        await good.aclose()
        await bad.aclose()


async def test_a_mid_stream_error_is_an_error_not_a_short_answer() -> None:
    with FakeServer(FakeEngine(default="return a + b\n", error_after=2)) as fake:
        client = HttpClient(fake.url)
        with pytest.raises(EngineStreamError, match="engine failed mid-stream: engine error: RuntimeError"):
            await _text(client)
        with pytest.raises(EngineStreamError):
            async for _ in client.chat([{"role": "user", "content": "hi"}], 16):
                pass
        assert client.stats.num_failed == 2 and client.stats.num_finished == 0
        await client.aclose()


@pytest.mark.parametrize("owned_by", ["vllm", None])  # another server, or one without /v1/models
async def test_other_servers_get_neither_priority_nor_suffix(owned_by: str | None) -> None:
    engine = FakeEngine(owned_by=owned_by, rejects=frozenset({"priority", "suffix"}), default="x\n")
    with FakeServer(engine) as fake:
        client = HttpClient(fake.url)
        assert await _text(client) == "x\n"  # a strict server would have answered 400
        body = engine.bodies[-1]
        assert body["prompt"] == FIM.prompt and "suffix" not in body and "priority" not in body
        async for _ in client.chat([{"role": "user", "content": "hi"}], 16):
            pass
        assert "priority" not in engine.bodies[-1] and "temperature" not in engine.bodies[-1]
        await client.aclose()


async def test_a_codeloop_server_gets_the_prompt_and_priority() -> None:
    engine = FakeEngine(default="x\n")
    with FakeServer(engine) as fake:
        client = HttpClient(fake.url)
        await _text(client)
        body = engine.bodies[-1]
        assert (body["prompt"], body["priority"]) == (FIM.prompt, "interactive") and "suffix" not in body
        async for _ in client.chat([{"role": "user", "content": "hi"}], 16, temperature=0.2):
            pass
        assert engine.bodies[-1]["priority"] == "chat" and engine.bodies[-1]["temperature"] == 0.2
        assert "seed" not in engine.bodies[-1]
        async for _ in client.chat([{"role": "user", "content": "hi"}], 16, seed=7):
            pass
        assert engine.bodies[-1]["seed"] == 7 and "temperature" not in engine.bodies[-1]
        await client.aclose()


async def test_the_editor_gets_no_suggestion_one_log_line_and_one_message(capfd: pytest.CaptureFixture[str]) -> None:
    """``codeloop lsp`` with ``$CODELOOP_API_KEY`` in its environment, against a keyed engine that fails
    mid-stream: no suggestion (not the partial text), the user told once, one log line per failure."""
    engine = FakeEngine(api_key="k3y", default="math.pi * r ** 2\n", error_after=2)
    with FakeServer(engine) as fake:
        async with lsp_process(env={**os.environ, "CODELOOP_API_KEY": "k3y"}) as client:
            await start(client, {"engineUrl": fake.url, "debounceMs": 0})
            open_doc(client, URI, TEXT)
            for _ in range(2):
                result = await client.text_document_inline_completion_async(inline_params(URI, 4, 11))
                assert not result.items
            assert sum("mid-stream" in m.message for m in client.messages) == 1
    assert engine.headers[-1]["authorization"] == "Bearer k3y"  # the key came from the environment
    logged = [line for line in capfd.readouterr().err.splitlines() if "mid-stream" in line]
    assert len(logged) == 2 and all("Traceback" not in line for line in logged)


@contextlib.contextmanager
def _dropping_server() -> Iterator[str]:
    """A port that accepts connections and closes them unanswered (a kept-alive connection to a killed server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drop() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                listener.accept()[0].close()

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("failure", ["refused", "dropped"])
async def test_a_server_gone_is_relaunched_once_for_requests_at_the_same_time(failure: str) -> None:
    """Defect 2 of issue 22 (the shared server exited): the launcher gives a live server and each request is sent
    again; two requests failing together share one relaunch and the user is told once."""
    with FakeServer(FakeEngine(default="x\n")) as fake, _dropping_server() as dropping:
        relaunched: list[str] = []
        gone = dropping if failure == "dropped" else f"http://127.0.0.1:{free_port()}"
        client = HttpClient(gone, relaunch=lambda: relaunched.append(fake.url) or fake.url)
        told: list[str] = []
        client.on_relaunch = told.append
        assert await asyncio.gather(_text(client), _text(client)) == ["x\n", "x\n"]
        assert await _text(client) == "x\n"
        assert len(relaunched) == 1 and len(told) == 1 and "started again" in told[0]
        await client.aclose()


async def test_a_failed_relaunch_is_an_error_and_not_tried_again_on_every_keystroke() -> None:
    attempts: list[int] = []

    def relaunch() -> str:
        attempts.append(1)
        raise RuntimeError("shared server exited with code 1")

    client = HttpClient(f"http://127.0.0.1:{free_port()}", relaunch=relaunch)
    with pytest.raises(EngineError, match="could not be started again: shared server exited with code 1"):
        await _text(client)
    with pytest.raises(EngineUnreachable):
        await _text(client)
    assert len(attempts) == 1
    await client.aclose()


def test_greedy_first_goes_only_to_a_codeloop_server():
    from lsp.engine_client import Generation
    from lsp.http_client import _completion_body

    gen = Generation(prompt="p", max_tokens=8, temperature=0.7, greedy_first=True)
    assert _completion_body(gen, codeloop=True)["greedy_first"] is True
    assert "greedy_first" not in _completion_body(gen, codeloop=False)  # an OpenAI server would refuse it
    assert "greedy_first" not in _completion_body(Generation(prompt="p", max_tokens=8), codeloop=True)
