"""The server end to end with the real engine in process (tiny random model): plumbing, cancellation,
streaming and robustness. The tiny model's text is random, so content is checked by shape only."""

from __future__ import annotations

import asyncio
import os

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from .lsp_session import (
    SERVER_COMMAND,
    change_doc,
    completion_params,
    inline_params,
    open_doc,
    start,
    stats,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
URI = "file:///tmp/codeloop-engine-test/main.py"
TEXT = "import os\n\n\ndef add(a, b):\n    return a + b\n\n\ndef fib(n):\n    if n < 2:\n        return n\n    \n"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND), scope="module")
async def client(lsp_client: LanguageClient, tiny_qwen2_dir):
    # speculative none: the cancel test needs a generation that outlasts a stats round trip, and n-gram drafts on
    # the tiny model's repetitive text finish 24 tokens in a few steps (aborting while drafting:
    # tests/inference/test_speculative_tiny.py)
    await start(lsp_client, {"model": str(tiny_qwen2_dir), "debounceMs": 0, "maxTokens": 12,
                             "maxTokensMultiline": 24, "chatMaxTokens": 24, "speculative": "none"})
    open_doc(lsp_client, URI, TEXT)
    yield
    await lsp_client.shutdown_session()


async def _quiet_engine(client: LanguageClient) -> dict:
    """Stats once the engine has no running request (KV blocks all returned)."""
    for _ in range(100):
        s = await stats(client)
        if s["engine"].get("num_running") == 0 and s["engine"].get("num_blocks_owned") == 0:
            return s
        await asyncio.sleep(0.05)
    pytest.fail(f"engine never went idle: {s['engine']}")


async def test_single_line_inline(client: LanguageClient):
    result = await client.text_document_inline_completion_async(inline_params(URI, 4, 8))
    s = await stats(client)
    assert s["client"]["num_started"] >= 1 and s["engine"]["num_requests_finished"] >= 1
    for item in result.items:  # random text: any suggestion is one line, inserted at the cursor
        assert "\n" not in item.insert_text and item.insert_text.strip()
        assert item.range.start == item.range.end == types.Position(4, 8)


async def test_multi_line_inline_and_completion_fallback(client: LanguageClient):
    result = await client.text_document_inline_completion_async(inline_params(URI, 10, 4))
    for item in result.items:
        assert item.range.start == types.Position(10, 0) and item.insert_text.startswith("    ")
    comp = await client.text_document_completion_async(completion_params(URI, 10, 4))
    assert [i.text_edit.new_text for i in comp.items] == [i.insert_text for i in result.items]
    s = await stats(client)
    assert s["completer"]["num_exact_hits"] >= 1  # same version and position: from cache


async def test_cancel_aborts_engine_request_and_frees_kv(client: LanguageClient):
    before = (await _quiet_engine(client))["client"]["num_aborted"]
    change_doc(client, URI, 2, 0, 0, "# cancel test\n")
    task = asyncio.ensure_future(client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(URI, 11, 4), msg_id="engine-cancel"))
    for _ in range(200):  # wait until the engine is really generating for it
        if (await stats(client))["engine"].get("num_running", 0) > 0:
            break
        await asyncio.sleep(0.01)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="engine-cancel"))
    with pytest.raises(Exception, match="cancel"):
        await task
    after = await _quiet_engine(client)
    assert after["client"]["num_aborted"] == before + 1


async def test_chat_with_progress(client: LanguageClient):
    args = {"messages": [{"role": "user", "content": "what does fib do?"}], "textDocument": {"uri": URI},
            "selection": {"start": {"line": 7, "character": 0}, "end": {"line": 10, "character": 0}}}
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="codeloop.chat", arguments=[args]))
    assert isinstance(result["text"], str)
    (reports,) = [r for r in client.progress_reports.values() if r]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and isinstance(reports[-1], types.WorkDoneProgressEnd)
    streamed = "".join(r.message or "" for r in reports if isinstance(r, types.WorkDoneProgressReport))
    assert streamed == result["text"]


@pytest.mark.slow
async def test_flood_of_requests_with_cancellations(client: LanguageClient):
    """1,000 requests, most superseded or cancelled: every one gets a result or an error; the engine ends
    idle with no KV owned; the server still answers."""
    version = 10
    tasks = []
    for i in range(1000):
        if i % 50 == 0:
            version += 1
            change_doc(client, URI, version, 0, 0, "#")
        method = types.TEXT_DOCUMENT_INLINE_COMPLETION if i % 3 else types.TEXT_DOCUMENT_COMPLETION
        params = inline_params(URI, 11, 4) if i % 3 else completion_params(URI, 11, 4)
        tasks.append(asyncio.ensure_future(client.protocol.send_request_async(method, params, msg_id=f"f{i}")))
        if i % 7 == 0:
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=f"f{i}"))
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 120)
    assert len(results) == 1000
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all("cancel" in str(e).lower() for e in errors), errors[:3]
    s = await _quiet_engine(client)
    c = s["client"]
    assert c["num_started"] == c["num_finished"] + c["num_aborted"] + c["num_failed"]
    assert c["num_failed"] == 0
    done = s["completer"]
    # Nearly all were answered without an engine completion of their own: superseded or cancelled on a slow
    # machine, cache hits on a fast one (20 document versions: about one completion each).
    assert done["num_engine"] <= 100, done
    result = await client.text_document_inline_completion_async(inline_params(URI, 0, 0))
    assert result is not None


@pytest.mark.slow
async def test_huge_and_binary_documents(client: LanguageClient):
    big_uri = "file:///tmp/codeloop-engine-test/big.py"
    open_doc(client, big_uri, "x = 1\n" * 1_800_000)  # ~10 MB
    result = await client.text_document_inline_completion_async(inline_params(big_uri, 1_799_999, 5))
    assert result is not None
    bin_uri = "file:///tmp/codeloop-engine-test/blob.bin"
    open_doc(client, bin_uri, os.urandom(4096).decode("latin-1") + "\x00\ufffd", language="plaintext")
    result = await client.text_document_inline_completion_async(inline_params(bin_uri, 0, 3))
    assert result is not None
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(big_uri)))
