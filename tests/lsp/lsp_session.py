"""Helpers for driving the server under test through pytest-lsp."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client

from lsp.protocol import plain

SERVER_COMMAND = [sys.executable, "-m", "codeloop", "lsp"]


@contextlib.asynccontextmanager
async def lsp_process(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[LanguageClient]:
    """``codeloop lsp ARGS`` as a subprocess with a client on its stdio, for tests that need several servers
    at once (the ``pytest_lsp.fixture`` gives one per test). Shut down, or killed, on exit."""
    client = make_test_lsp_client()
    await client.start_io(*SERVER_COMMAND, *args, env=env)
    try:
        yield client
        await asyncio.wait_for(client.shutdown_session(), 30)
    finally:
        server = client._server  # NOTE: pytest-lsp keeps the process private; a failed test must not leak it
        if server is not None and server.returncode is None:
            server.kill()
        await client.stop()


def vscode_capabilities() -> types.ClientCapabilities:
    """pytest-lsp's VS Code profile predates LSP 3.18: add inline completion and progress."""
    caps = client_capabilities("visual-studio-code")
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities(dynamic_registration=False)
    caps.window.work_done_progress = True
    return caps


def neovim_capabilities() -> types.ClientCapabilities:
    return client_capabilities("neovim@v0.11.0")


async def start(client: LanguageClient, options: dict, caps: types.ClientCapabilities | None = None,
                root: Path | None = None) -> types.InitializeResult:
    return await client.initialize_session(types.InitializeParams(
        capabilities=caps or vscode_capabilities(), initialization_options=options,
        root_uri=root.as_uri() if root else None,
    ))


def open_doc(client: LanguageClient, uri: str, text: str, version: int = 1, language: str = "python") -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))


def change_doc(client: LanguageClient, uri: str, version: int, line: int, character: int, text: str) -> None:
    """Insert ``text`` at (line, character)."""
    pos = types.Position(line, character)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text=text)]))


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


def completion_params(uri: str, line: int, character: int) -> types.CompletionParams:
    return types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                  position=types.Position(line, character))


async def stats(client: LanguageClient) -> dict:
    result = await client.protocol.send_request_async("codeloop/stats", {})
    return plain(result)


