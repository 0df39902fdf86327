"""``textDocument/inlineCompletion`` (LSP 3.18): ghost text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from lsp.acceptance import ACCEPT_COMMAND
from lsp.suggestion import Suggestion

if TYPE_CHECKING:
    from lsp.server import CodeloopServer


def to_inline_list(suggestion: Suggestion | None) -> types.InlineCompletionList:
    """One item whose range starts where its insertText starts (VS Code drops other items)."""
    if suggestion is None:
        return types.InlineCompletionList(items=[])
    rng = types.Range(
        start=types.Position(line=suggestion.line, character=suggestion.replace_from),
        end=types.Position(line=suggestion.line, character=suggestion.character),
    )
    item = types.InlineCompletionItem(insert_text=suggestion.insert_text, range=rng, command=accept_command(suggestion))
    return types.InlineCompletionList(items=[item])


def accept_command(suggestion: Suggestion) -> types.Command | None:
    """The command the editor runs when the item is accepted (telemetry on), else None."""
    if suggestion.accept_id is None:
        return None
    return types.Command(title="codeloop: suggestion accepted", command=ACCEPT_COMMAND,
                         arguments=[suggestion.accept_id])


def register(server: CodeloopServer) -> None:
    # NOTE: the options argument makes pygls 2.1 advertise inlineCompletionProvider.
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: CodeloopServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        return to_inline_list(await ls.suggest(params.text_document.uri, params.position, "inline"))
