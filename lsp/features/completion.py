"""``textDocument/completion``: the inline suggestion as one completion item, for clients without inline
completion (Neovim <= 0.11, Vim ALE, Emacs eglot)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lsprotocol import types

from lsp.context import index_to_utf16
from lsp.features.inline_completion import accept_command
from lsp.suggestion import Suggestion

if TYPE_CHECKING:
    from lsp.server import CodeloopServer

_WORD_TAIL = re.compile(r"[A-Za-z0-9_]+$")
TRIGGER_CHARACTERS = [".", "(", "[", ",", " ", "="]


def to_completion_list(suggestion: Suggestion | None, encoding: str = "utf-16") -> types.CompletionList:
    """label = first line, full text in ``textEdit`` replacing the word being typed (so client-side
    filtering by that word keeps the item)."""
    if suggestion is None:
        return types.CompletionList(is_incomplete=True, items=[])
    if suggestion.replace_from == 0:
        start, new_text = 0, suggestion.insert_text
    else:
        word = _WORD_TAIL.search(suggestion.line_prefix)
        head = word.group(0) if word else ""
        start = suggestion.character - index_to_utf16(head, len(head), encoding)
        new_text = head + suggestion.text
    first = new_text.strip().split("\n", 1)[0]
    rng = types.Range(start=types.Position(suggestion.line, start),
                      end=types.Position(suggestion.line, suggestion.character))
    item = types.CompletionItem(
        label=first[:80] or new_text[:80],
        kind=types.CompletionItemKind.Snippet,
        detail="codeloop" + (f" ⚠ {suggestion.warnings[0]}" if suggestion.warnings else "")
               + (f" · {suggestion.check.summary()}" if suggestion.check else ""),
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{new_text}\n```"),
        filter_text=new_text,
        sort_text="0",
        preselect=True,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=rng, new_text=new_text),
        command=accept_command(suggestion),
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def register(server: CodeloopServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=TRIGGER_CHARACTERS))
    async def completion(ls: CodeloopServer, params: types.CompletionParams) -> types.CompletionList:
        suggestion = await ls.suggest(params.text_document.uri, params.position, "completion")
        return to_completion_list(suggestion, ls.position_encoding)
