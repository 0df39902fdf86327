"""The server end to end (subprocess over stdio) against a scripted OpenAI-compatible engine.

The scripted engine makes the text deterministic, so these tests check what the editor receives; the
tiny-model tests (test_server_engine.py) check the same paths against the real engine.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from .fake_engine import FakeEngine, FakeServer
from .lsp_session import (
    SERVER_COMMAND,
    change_doc,
    completion_params,
    inline_params,
    neovim_capabilities,
    open_doc,
    start,
    stats,
)

URI = "file:///tmp/codeloop-test/main.py"
TEXT = "import math\n\n\ndef area(r):\n    return \n\n\ndef main():\n    \n"


@pytest.fixture(scope="module")
def fake():
    engine = FakeEngine(answers={"return": "math.pi * r ** 2\n", "": "print(area(2))\n    return 0\n\n\nx = 1\n"})
    with FakeServer(engine) as server:
        yield server


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


def options(fake, **extra):
    return {"engineUrl": fake.url, "debounceMs": 0, **extra}


async def test_advertises_inline_completion_and_chat(client: LanguageClient, fake):
    result = await start(client, options(fake))
    caps = result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert "codeloop.chat" in caps.execute_command_provider.commands


async def test_single_line_inline(client: LanguageClient, fake):
    await start(client, options(fake, fimOrder="psm"))
    open_doc(client, URI, TEXT)
    result = await client.text_document_inline_completion_async(inline_params(URI, 4, 11))
    (item,) = result.items
    assert item.insert_text == "math.pi * r ** 2"
    assert item.range == types.Range(types.Position(4, 11), types.Position(4, 11))
    body = fake.engine.bodies[-1]
    assert body["priority"] == "interactive" and body["stream"] is True
    assert body["prompt"].startswith("<|fim_prefix|>import math") and "suffix" not in body  # laid out here
    assert "    return <|fim_suffix|>\n\n\ndef main" in body["prompt"] and body["prompt"].endswith("<|fim_middle|>")
    assert "heal" not in body


async def test_spm_lays_the_prompt_out_here_and_sends_it_whole(client: LanguageClient, fake):
    """The editor sends the prompt it laid out (spm, the default), healed."""
    await start(client, options(fake))
    open_doc(client, URI, TEXT)
    result = await client.text_document_inline_completion_async(inline_params(URI, 4, 11))
    assert result.items[0].insert_text == "math.pi * r ** 2"
    body = fake.engine.bodies[-1]
    assert "suffix" not in body and body["heal"] is True  # the prompt ends where the user types
    assert body["prompt"].startswith("<|fim_prefix|><|fim_suffix|>\n\n\ndef main")
    assert body["prompt"].endswith("<|fim_middle|>import math\n\n\ndef area(r):\n    return ")


async def test_multi_line_inline_on_indented_empty_line(client: LanguageClient, fake):
    await start(client, options(fake))
    open_doc(client, URI, TEXT)
    result = await client.text_document_inline_completion_async(inline_params(URI, 8, 4))
    (item,) = result.items
    # the range covers the indentation, so insertText must start with it (VS Code drops the item otherwise)
    assert item.range.start == types.Position(8, 0) and item.range.end == types.Position(8, 4)
    assert item.insert_text == "    print(area(2))\n    return 0"


async def test_completion_fallback_for_neovim(client: LanguageClient, fake):
    await start(client, options(fake), caps=neovim_capabilities())
    open_doc(client, URI, TEXT)
    result = await client.text_document_completion_async(completion_params(URI, 4, 11))
    (item,) = result.items
    assert item.label == "math.pi * r ** 2"
    assert item.text_edit.new_text == "math.pi * r ** 2"
    assert item.text_edit.range.start == types.Position(4, 11)
    result = await client.text_document_completion_async(completion_params(URI, 8, 4))
    (item,) = result.items
    assert item.label == "print(area(2))" and item.text_edit.new_text == "    print(area(2))\n    return 0"


async def test_typed_through_cache_answers_without_engine(client: LanguageClient, fake):
    await start(client, options(fake))
    open_doc(client, URI, TEXT)
    await client.text_document_inline_completion_async(inline_params(URI, 4, 11))
    before = len(fake.engine.bodies)
    change_doc(client, URI, 2, 4, 11, "math.")
    result = await client.text_document_inline_completion_async(inline_params(URI, 4, 16))
    assert [i.insert_text for i in result.items] == ["pi * r ** 2"]
    assert len(fake.engine.bodies) == before
    s = await stats(client)
    assert s["completer"]["num_typed_through_hits"] == 1


async def _engine_received(fake, num_bodies: int, timeout_s: float = 20.0) -> None:
    """Wait until the engine has received ``num_bodies`` requests (a busy machine may take seconds)."""
    for _ in range(int(timeout_s / 0.02)):
        if len(fake.engine.bodies) >= num_bodies:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the engine received {len(fake.engine.bodies)} requests, not {num_bodies}")


async def test_newer_request_supersedes_and_client_cancel_aborts(client: LanguageClient, fake):
    fake.engine.delay_s = 0.2
    try:
        await start(client, options(fake))
        open_doc(client, URI, TEXT)
        aborted = fake.engine.num_aborted
        first = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(URI, 8, 4)))
        await _engine_received(fake, len(fake.engine.bodies) + 1)  # its stream has started: superseding aborts it
        second = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params(URI, 4, 11)))
        with pytest.raises(Exception, match="cancel"):
            await first
        assert (await second).items[0].insert_text == "math.pi * r ** 2"
        # an explicit $/cancelRequest aborts the engine stream too
        change_doc(client, URI, 2, 0, 0, "# x\n")
        received = len(fake.engine.bodies)
        third = asyncio.ensure_future(client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(URI, 9, 4), msg_id="cancel-me"))
        await _engine_received(fake, received + 1)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-me"))
        with pytest.raises(Exception, match="cancel"):
            await third
        for _ in range(50):
            if fake.engine.num_aborted >= aborted + 2:
                break
            await asyncio.sleep(0.05)
        assert fake.engine.num_aborted >= aborted + 2
        s = await stats(client)
        assert s["client"]["num_aborted"] >= 2 and s["completer"]["num_superseded"] >= 1
    finally:
        fake.engine.delay_s = 0.02


async def test_chat_streams_progress(client: LanguageClient, fake):
    await start(client, options(fake))
    open_doc(client, URI, TEXT)
    args = {"messages": [{"role": "user", "content": "square a list?"}], "textDocument": {"uri": URI}}
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="codeloop.chat", arguments=[args]))
    assert result["text"] == fake.engine.chat_answer
    (reports,) = client.progress_reports.values()
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    streamed = "".join(r.message or "" for r in reports if isinstance(r, types.WorkDoneProgressReport))
    assert streamed == fake.engine.chat_answer and len(reports) > 3
    messages = fake.engine.bodies[-1]["messages"]
    # the open document is context at the head of the question's message; the question comes last
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "def area(r)" in messages[-1]["content"] and messages[-1]["content"].endswith("\n\nsquare a list?")
    # the custom request, with a client-provided token
    client.progress_reports["tok-1"] = []
    out = await client.protocol.send_request_async("codeloop/chat", {**args, "workDoneToken": "tok-1"})
    assert out.text == fake.engine.chat_answer and len(client.progress_reports["tok-1"]) > 2


async def test_bad_requests_get_errors_and_server_stays_up(client: LanguageClient, fake):
    await start(client, options(fake))
    open_doc(client, URI, TEXT)
    with pytest.raises(Exception, match="past the end"):
        await client.text_document_inline_completion_async(inline_params(URI, 500, 0))
    with pytest.raises(Exception, match="not open"):
        await client.text_document_inline_completion_async(inline_params("file:///nope.py", 0, 0))
    with pytest.raises(Exception, match="messages"):
        await client.protocol.send_request_async("codeloop/chat", {"messages": "hi"})
    with pytest.raises(Exception, match="[Mm]ethod"):
        await client.protocol.send_request_async("codeloop/nothing", {})
    # a character past the end of the line means the end of the line, per the spec
    result = await client.text_document_inline_completion_async(inline_params(URI, 4, 999))
    assert result.items[0].insert_text == "math.pi * r ** 2"
    assert (await stats(client))["completer"]["num_requests"] >= 2


async def test_settings_change_disables_suggestions(client: LanguageClient, fake):
    await start(client, options(fake))
    open_doc(client, URI, TEXT)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"codeloop": {"enable": False}}))
    result = await client.text_document_inline_completion_async(inline_params(URI, 4, 11))
    assert list(result.items) == []


async def test_many_edits_keep_memory_bounded(client: LanguageClient, fake):
    await start(client, options(fake))
    open_doc(client, URI, TEXT)
    for version in range(2, 2002):
        change_doc(client, URI, version, 8, 4, "x")
    s = await stats(client)
    assert s["protocol"]["num_tracked_futures"] < 10
    result = await client.text_document_inline_completion_async(inline_params(URI, 4, 11))
    assert result.items[0].insert_text == "math.pi * r ** 2"


async def test_unreachable_engine_is_an_error_not_a_crash(client: LanguageClient, fake):
    await start(client, {"engineUrl": "http://127.0.0.1:9", "debounceMs": 0})
    open_doc(client, URI, TEXT)
    for _ in range(2):
        with pytest.raises(Exception, match="unreachable"):
            await client.text_document_inline_completion_async(inline_params(URI, 4, 11))
    assert sum("unreachable" in m.message for m in client.messages) == 1  # told once
    assert (await stats(client))["client"]["num_failed"] == 2
