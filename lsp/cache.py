"""Suggestion caches: exact (document version, position) and typed-through.

Typed-through: after a suggestion ``S`` was shown at a cursor with text ``P`` before it and ``X`` after it,
a request whose text before the cursor is ``P + t`` (``t`` a proper prefix of ``S``) and after it is
still ``X`` is answered with ``S[len(t):]`` without an engine call. Both caches are bounded LRUs.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

MAX_ENTRIES = 256
TAIL_CHARS = 4096
"""Typed-through compares the document only this far around the cursor (bounded work per keystroke),
plus full lengths, which catch edits further away."""


@dataclass(frozen=True)
class Shown:
    """A suggestion shown at a cursor."""

    uri: str
    before: str
    """Up to TAIL_CHARS of document text before the cursor."""
    after: str
    """Up to TAIL_CHARS of document text after the cursor."""
    len_before: int
    len_after: int
    text: str
    """The suggestion, relative to the cursor."""


def _shown(uri: str, text_before: str, text_after: str, suggestion: str) -> Shown:
    return Shown(uri, text_before[-TAIL_CHARS:], text_after[:TAIL_CHARS], len(text_before), len(text_after),
                 suggestion)


class SuggestionCache:
    """Invariant: at most MAX_ENTRIES exact entries and one typed-through anchor per document."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._exact: OrderedDict[tuple[str, int, int, int], str] = OrderedDict()
        self._shown: dict[str, Shown] = {}
        self.num_exact_hits = 0
        self.num_typed_through_hits = 0

    def get_exact(self, uri: str, version: int, line: int, character: int) -> str | None:
        key = (uri, version, line, character)
        hit = self._exact.get(key)
        if hit is not None:
            self._exact.move_to_end(key)
            self.num_exact_hits += 1
        return hit

    def put(self, uri: str, version: int, line: int, character: int, text_before: str, text_after: str,
            suggestion: str) -> None:
        """Remember ``suggestion`` for this version and position, and as the typed-through anchor."""
        self._exact[(uri, version, line, character)] = suggestion
        self._exact.move_to_end((uri, version, line, character))
        while len(self._exact) > self.max_entries:
            self._exact.popitem(last=False)
        if suggestion:
            self._shown[uri] = _shown(uri, text_before, text_after, suggestion)
            if len(self._shown) > self.max_entries:
                self._shown.pop(next(iter(self._shown)))

    def typed_through(self, uri: str, text_before: str, text_after: str) -> str | None:
        """The rest of the anchored suggestion if the user typed a proper prefix of it, else None."""
        shown = self._shown.get(uri)
        if shown is None or len(text_after) != shown.len_after:
            return None
        typed_len = len(text_before) - shown.len_before
        if typed_len <= 0 or typed_len >= len(shown.text):
            return None
        typed = text_before[len(text_before) - typed_len :]
        if not shown.text.startswith(typed) or text_after[:TAIL_CHARS] != shown.after:
            return None
        head = text_before[: len(text_before) - typed_len]
        if head[-TAIL_CHARS:] != shown.before:
            return None
        self.num_typed_through_hits += 1
        return shown.text[typed_len:]

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)
        for key in [k for k in self._exact if k[0] == uri]:
            del self._exact[key]
