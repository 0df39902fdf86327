"""Helpers for driving the server under test through pytest-lsp."""

from __future__ import annotations

import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

SERVER_COMMAND = [sys.executable, "-m", "lsp", "lsp"]


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
    return _plain(result)


def _plain(value):
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
