"""``workspace/executeCommand`` ``codeloop.acceptCompletion [id]``: the editor accepted a suggestion
(acceptance telemetry, lsp/acceptance.py); closing a document passes over its pending suggestion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsp.acceptance import ACCEPT_COMMAND

if TYPE_CHECKING:
    from lsp.server import CodeloopServer


class _CloseListener:
    """A closed document's pending suggestion was not accepted."""

    def __init__(self, server: CodeloopServer) -> None:
        self.server = server

    def schedule(self, uri: str) -> None:
        pass

    def close(self, uri: str) -> None:
        if self.server.acceptance is not None:
            self.server.acceptance.close(uri)


def register(server: CodeloopServer) -> None:
    server.document_listeners.append(_CloseListener(server))

    @server.command(ACCEPT_COMMAND)
    def accept_completion(ls, *arguments: Any) -> bool:  # noqa: ANN001 - pygls resolves hints at runtime
        """True when the accept was logged (telemetry on, the id known and not accepted before)."""
        shown_id = arguments[0] if arguments else None
        if ls.acceptance is None or not isinstance(shown_id, str):
            return False
        return ls.acceptance.accept(shown_id)
