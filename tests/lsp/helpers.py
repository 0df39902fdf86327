"""Shared helpers for lsp tests: a cursor marked with ``|`` in a text."""

from __future__ import annotations

from lsp.context import CompletionContext, build


def at_cursor(marked: str, **kwargs) -> tuple[str, int, int]:
    """(text without the marker, line, UTF-16 character) of the ``|`` in ``marked``."""
    offset = marked.index("|")
    text = marked[:offset] + marked[offset + 1 :]
    before = text[:offset]
    line = before.count("\n")
    col_text = before[before.rfind("\n") + 1 :]
    return text, line, sum(2 if ord(c) > 0xFFFF else 1 for c in col_text)


def ctx(marked: str, **kwargs) -> CompletionContext:
    text, line, character = at_cursor(marked)
    return build("a.py", text, line, character, **kwargs)
