"""Security diagnostics (the security scanner) and the security settings on suggestions, end to end."""

from __future__ import annotations

import ast
import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from .fake_engine import FakeEngine, FakeServer
from .lsp_session import SERVER_COMMAND, completion_params, inline_params, open_doc, start

pytest.importorskip("security")
URI = "file:///tmp/codeloop-diag/run.py"
RISKY = 'import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n\nkey = \n'
SECRET = '"AKIAIOSFODNN7EXAMPLE"\n'


@pytest.fixture(scope="module")
def fake():
    with FakeServer(FakeEngine(answers={"key =": SECRET})) as server:
        yield server


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


async def _diagnostics(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    for _ in range(200):
        if client.diagnostics.get(uri):
            return client.diagnostics[uri]
        await asyncio.sleep(0.05)
    pytest.fail("no diagnostics published")


async def test_findings_published_with_explain_action(client: LanguageClient, fake):
    await start(client, {"engineUrl": fake.url})
    open_doc(client, URI, RISKY)
    diags = await _diagnostics(client, URI)
    b602 = next(d for d in diags if d.code == "codeloop.B602")
    assert b602.source == "codeloop" and b602.range.start.line == 4
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(URI), range=b602.range,
        context=types.CodeActionContext(diagnostics=[b602])))
    (action,) = actions
    assert action.title == "Explain codeloop.B602"
    # NOTE: lsprotocol's client-side converter reads a CodeAction with a command as a Command
    c = action.command
    if isinstance(c, str) and c.startswith("{"):  # the client's converter stringified the nested Command
        c = ast.literal_eval(c)
    if isinstance(c, dict):
        name, args = c["command"], c["arguments"]
    elif isinstance(c, str):
        name, args = c, action.arguments
    else:
        name, args = c.command, c.arguments
    text = await client.workspace_execute_command_async(types.ExecuteCommandParams(command=name, arguments=args))
    assert "B602" in text and "shell" in text


async def test_secret_suggestions_blocked_or_marked(client: LanguageClient, fake):
    await start(client, {"engineUrl": fake.url, "debounceMs": 0, "security": {"secrets": "block"}})
    open_doc(client, URI, RISKY)
    result = await client.text_document_inline_completion_async(inline_params(URI, 6, 6))
    assert list(result.items) == []
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"codeloop": {"security": {"secrets": "warn"}}}))
    result = await client.text_document_completion_async(completion_params(URI, 6, 6))
    (item,) = result.items
    assert item.text_edit.new_text == SECRET.strip() and "⚠" in item.detail
