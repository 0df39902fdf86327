"""One definition of a line for the whole language server: the LSP's.

LSP 3.17: "\\n", "\\r\\n" and "\\r" end a line, nothing else. Python's ``str.splitlines`` also breaks at
form feed, U+001C..U+001E, U+0085, U+2028 and U+2029, and pygls's documents used it: an incremental edit
after such a character landed on the wrong line, while the cursor was resolved with "\\n" only. Documents
(``LspTextDocument``, created by ``LspWorkspace``) and ``lsp.context.resolve`` both use ``split_lines``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pygls.workspace import TextDocument, Workspace

LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` with their line breaks kept (no empty last line after a final break)."""
    return _LINE.findall(text)


def line_start(text: str, line: int) -> int | None:
    """Index in ``text`` where 0-based ``line`` starts; ``None`` when the text has fewer lines."""
    if line == 0:
        return 0
    for count, match in enumerate(LINE_BREAK.finditer(text), 1):
        if count == line:
            return match.end()
    return None


def line_end(text: str, start: int) -> int:
    """Index of the line break (or the end of the text) of the line starting at ``start``."""
    match = LINE_BREAK.search(text, start)
    return match.start() if match else len(text)


class LspTextDocument(TextDocument):
    """A pygls document whose lines (for incremental edits and position conversion) are the LSP's."""

    @property
    def lines(self) -> Sequence[str]:
        return tuple(split_lines(self.source))


class LspWorkspace(Workspace):
    """A pygls workspace whose documents are ``LspTextDocument``s."""

    def _create_text_document(self, doc_uri: str, source: str | None = None, version: int | None = None,
                              language_id: str | None = None) -> TextDocument:
        return LspTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                               sync_kind=self._sync_kind, position_codec=self._position_codec)
