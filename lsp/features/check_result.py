"""Checked suggestions in the editor: the ``codeloop/checkResult`` notification, a hint diagnostic on the
function for clients that do not declare they render the notification, and the test index refresh on save.

A client declares it renders the notification with the client capability
``experimental: {"codeloop": {"checkResult": true}}`` (editors/nvim and editors/vscode do). The
notification goes to every client (others ignore it); the hint only to clients without that capability.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from lsp.checks.note import CHECK_RESULT, CheckNote
from lsp.suggestion import Document, Suggestion

if TYPE_CHECKING:
    from lsp.server import CodeloopServer

HINT_CODE = "codeloop.check"


def renders_notification(capabilities: types.ClientCapabilities | None) -> bool:
    experimental = getattr(capabilities, "experimental", None)
    codeloop = experimental.get("codeloop") if isinstance(experimental, dict) else None
    return isinstance(codeloop, dict) and codeloop.get("checkResult") is True


def hint(doc: Document, note: CheckNote) -> types.Diagnostic:
    """A hint on the function's ``def`` line: "codeloop suggestion: passes 3/3 tests"."""
    line = doc.text.split("\n")[note.function_line] if note.function_line < doc.text.count("\n") + 1 else ""
    start = len(line) - len(line.lstrip())
    rng = types.Range(types.Position(note.function_line, start), types.Position(note.function_line, len(line)))
    return types.Diagnostic(range=rng, message=f"codeloop suggestion: {note.summary()}",
                            severity=types.DiagnosticSeverity.Hint, code=HINT_CODE, source="codeloop")


class CheckReporter:
    def __init__(self, server: CodeloopServer) -> None:
        self.server = server

    def report(self, doc: Document, suggestion: Suggestion) -> None:
        note = suggestion.check
        if note is None:
            return
        params = note.params(doc.uri, doc.version, suggestion.line, suggestion.character, suggestion.text)
        self.server.protocol.notify(CHECK_RESULT, params)
        diagnostics = getattr(self.server, "diagnostics", None)
        if diagnostics is not None and not renders_notification(self.server.client_capabilities):
            diagnostics.set_hints(doc.uri, [hint(doc, note)])


def register(server: CodeloopServer) -> None:
    reporter = CheckReporter(server)
    server.check_listeners.append(reporter.report)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: CodeloopServer, params: types.DidSaveTextDocumentParams) -> Any:
        checker = ls.checker
        path = ls.document_path(params.text_document.uri)
        if checker is not None and path:
            await asyncio.to_thread(checker.saved, path)
