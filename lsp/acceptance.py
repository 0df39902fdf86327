"""Acceptance telemetry (opt-in, setting ``acceptanceLog``): which shown suggestions the user kept.

Every suggestion the server returns gets an id, and its item carries the command ``codeloop.acceptCompletion``
with that id (the LSP item ``command``: VS Code runs it when an inline item is accepted, Neovim's
completion when an item is accepted). The next request for the same document supersedes a suggestion that
was not accepted: it is then written as not accepted; an accept writes it as accepted. Closing a document
or shutting down supersedes its suggestion too.

Invariant: a shown id is written at most once as not accepted and at most once as accepted, in that order
when both (an accept that arrives after the next request); ``final_events`` of the log keeps the accepted.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from inference.repo_adapters import RepoAdapterIndex
from lsp import context as ctxmod
from lsp.acceptance_log import AcceptanceEvent, AcceptanceLog, default_log_path

logger = logging.getLogger(__name__)
ACCEPT_COMMAND = "codeloop.acceptCompletion"
MAX_SHOWN = 256
"""Shown suggestions remembered for a late accept (older ids are forgotten: their accept is ignored)."""


@dataclass
class _Shown:
    event: AcceptanceEvent
    rejected: bool = False
    accepted: bool = False


class AcceptanceTracker:
    """Suggestions shown per document, written to the acceptance log when accepted or superseded."""

    def __init__(self, log: AcceptanceLog, workspace_root: str | None = None, model: str = "",
                 home: str | os.PathLike[str] | None = None) -> None:
        self.log = log
        self.workspace_root = workspace_root
        self.model = model
        self._repos = RepoAdapterIndex(home)
        self._shown: OrderedDict[str, _Shown] = OrderedDict()
        self._pending: dict[str, str] = {}
        """uri -> id of its latest shown suggestion not yet accepted or superseded."""

    def request(self, uri: str) -> None:
        """A new suggestion was asked for ``uri``: its previous suggestion, unless accepted, was passed over."""
        shown_id = self._pending.pop(uri, None)
        if shown_id is not None and shown_id in self._shown:
            entry = self._shown[shown_id]
            if not entry.accepted and not entry.rejected:
                entry.rejected = True
                self._write(entry.event, accepted=False)

    def show(self, *, kind: str, uri: str, path: str, text: str, line: int, character: int, encoding: str,
             completion: str, source: str, adapter: str | None) -> str:
        """Remember a suggestion about to be shown; returns the id its accept command carries."""
        self.request(uri)
        offset = ctxmod.resolve(text, line, character, encoding).offset
        entry = self._repos.find(path) if path else None
        event = AcceptanceEvent(
            kind=kind, accepted=False, completion=completion, prefix=text[:offset], suffix=text[offset:],
            path=path, model=self.model, adapter=adapter, event_id=uuid.uuid4().hex, uri=uri,
            root=entry.root if entry else self.workspace_root, line=line, character=character, source=source)
        self._shown[event.event_id] = _Shown(event)
        while len(self._shown) > MAX_SHOWN:
            self._shown.popitem(last=False)
        self._pending[uri] = event.event_id
        return event.event_id

    def accept(self, shown_id: str) -> bool:
        """The editor accepted ``shown_id``; False when the id is unknown (forgotten) or accepted already."""
        entry = self._shown.get(shown_id)
        if entry is None or entry.accepted:
            return False
        entry.accepted = True
        if self._pending.get(entry.event.uri) == shown_id:
            del self._pending[entry.event.uri]
        self._write(entry.event, accepted=True)
        return True

    def close(self, uri: str) -> None:
        self.request(uri)

    def flush(self) -> None:
        """Write every pending suggestion as not accepted (shutdown, or the setting turned off)."""
        for uri in list(self._pending):
            self.request(uri)

    def _write(self, event: AcceptanceEvent, accepted: bool) -> None:
        try:
            self.log.record(AcceptanceEvent(**{**event.__dict__, "accepted": accepted, "time": time.time()}))
        except OSError as exc:  # a full disk or unwritable log must never break completions
            logger.warning("acceptance log %s: %s", self.log.path, exc)


def open_tracker(path: str | None, workspace_root: str | None, model: str) -> AcceptanceTracker:
    """A tracker over the log at ``path`` (None: ``$CODELOOP_HOME/acceptance.jsonl``)."""
    return AcceptanceTracker(AcceptanceLog(Path(path) if path else default_log_path()), workspace_root, model)
