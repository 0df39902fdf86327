"""The codeloop language server: a pygls ``LanguageServer`` that registers the feature modules.

Handlers are thin; the logic lives in ``lsp.completer`` (inline + completion), ``lsp.features.chat`` and
the pure modules (context, snippets, postprocess). Blocking work (model load, workspace scan, context
building) runs off the event loop, so the server answers ``$/cancelRequest`` and new keystrokes at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import re
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lsp.acceptance import AcceptanceTracker, open_tracker
from lsp.checks.checker import Checker
from lsp.completer import Completer
from lsp.config import Settings
from lsp.context import PositionError
from lsp.engine_client import EngineClient, EngineError, EngineStreamError
from lsp.http_client import HttpClient
from lsp.inprocess_client import InProcessClient
from lsp.protocol import CodeloopProtocol, answer_parse_error, plain
from lsp.sources import Sources
from lsp.suggestion import Document, Suggestion

logger = logging.getLogger(__name__)
VERSION = "0.1.0"
STATS_REQUEST = "codeloop/stats"
FEATURE_MODULES = (
    "lsp.features.inline_completion",
    "lsp.features.completion",
    "lsp.features.chat",
    "lsp.features.diagnostics",
    "lsp.features.check_result",
    "lsp.features.acceptance",
)
"""Each exposes ``register(server)``."""

SuggestionFilter = Callable[[Document, Suggestion], "Suggestion | None"]


def make_client(settings: Settings, relaunch: Callable[[], str] | None = None) -> EngineClient:
    """HTTP when an engine URL is set, else an in-process engine for ``settings.model``. ``relaunch`` (HTTP
    only): the URL of a healthy server, started if needed, for when the server has exited (``--shared``)."""
    if settings.engine_url:
        return HttpClient(settings.engine_url, model=settings.model, api_key=settings.api_key, relaunch=relaunch)
    return InProcessClient(settings.model or "qwen2.5-coder-0.5b-instruct", engine_options=engine_options(settings))


def engine_options(settings: Settings) -> dict[str, Any]:
    """``EngineConfig`` fields of the in-process engine that come from settings."""
    from inference.config import CacheConfig, SpeculativeConfig

    method = settings.speculative if settings.speculative != "draft" or settings.draft_model else "none"
    if method != settings.speculative:
        logger.warning("speculative: draft needs draftModel; running without speculation")
    return {"weight_quant": settings.weight_quant, "compile_decode": "auto" if settings.compile_decode else "off",
            "cache": CacheConfig(kv_cache_dtype=settings.kv_dtype, kv_cache_tokens=settings.kv_cache_tokens),
            "speculative": SpeculativeConfig(method=method, draft_model=settings.draft_model,
                                             draft_weight_quant=settings.weight_quant)}


class CodeloopServer(LanguageServer):
    """Invariant: ``client`` and ``completer`` exist from ``initialize`` on; settings only change through
    ``apply_settings``."""

    def __init__(self, settings: Settings, client_factory: Callable[[Settings], EngineClient] = make_client):
        super().__init__("codeloop", VERSION, text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
                         protocol_cls=CodeloopProtocol)
        self.settings = settings
        self.client_factory = client_factory
        self.sources = Sources()
        self.suggestion_filters: list[SuggestionFilter] = []
        """Applied (in a worker thread) to every suggestion before it is shown (security settings)."""
        self.document_listeners: list[Any] = []
        """Objects with ``schedule(uri)`` (document opened or changed) and ``close(uri)``."""
        self.check_listeners: list[Callable[[Document, Suggestion], None]] = []
        """Told of every checked suggestion when chosen, and again when a late check result arrives."""
        self.checker: Checker | None = None
        """Execution checks of block suggestions (created at ``initialize``, for the workspace root)."""
        self.acceptance: AcceptanceTracker | None = None
        """Acceptance telemetry, while the ``acceptanceLog`` setting is on."""
        self._client: EngineClient | None = None
        self._completer: Completer | None = None
        self._root: str | None = None
        self._told: set[str] = set()

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Answer unparseable input with a ParseError; log the rest (no pop-ups in the editor)."""
        if not answer_parse_error(self.protocol, error):
            logger.error("server error (%s): %s", getattr(source, "__name__", source), error)

    @property
    def client(self) -> EngineClient:
        if self._client is None:
            self._client = self.client_factory(self.settings)
            start = getattr(self._client, "start", None)
            if callable(start):
                start()
            if isinstance(self._client, HttpClient):
                self._client.on_relaunch = lambda message: self._tell_once(message, types.MessageType.Info)
        return self._client

    @property
    def completer(self) -> Completer:
        if self._completer is None:
            self._completer = Completer(self.client, self.settings, self._root, self.checker, repo_adapters=True)
            self._completer.on_check = self._told_check
        return self._completer

    def _told_check(self, doc: Document, suggestion: Suggestion) -> None:
        for listener in self.check_listeners:
            listener(doc, suggestion)

    @property
    def position_encoding(self) -> str:
        enc = self.workspace.position_encoding if self._workspace_ready() else None
        return str(getattr(enc, "value", enc) or "utf-16")

    def _workspace_ready(self) -> bool:
        try:
            self.workspace  # noqa: B018 - raises before initialize
        except RuntimeError:
            return False
        return True

    def apply_settings(self, options: Any) -> None:
        old = self.settings
        self.settings = old.merged(plain(options))
        engine = ("model", "engine_url", "api_key", "weight_quant", "kv_dtype", "kv_cache_tokens", "compile_decode",
                  "speculative", "draft_model")
        if any(getattr(old, k) != getattr(self.settings, k) for k in engine) and self._client:
            asyncio.ensure_future(self._client.aclose())
            self._client, self._completer = None, None
        if self._completer is not None:
            self._completer.settings = self.settings
        if self.checker is not None:
            self.checker.configure(self.settings.check)
        self._configure_acceptance(old)

    def _configure_acceptance(self, old: Settings) -> None:
        s = self.settings
        if self.acceptance is not None and (not s.acceptance_log or s.acceptance_log_path != old.acceptance_log_path):
            self.acceptance.flush()
            self.acceptance = None
        if s.acceptance_log and self.acceptance is None:
            self.acceptance = open_tracker(s.acceptance_log_path, self._root, s.model or s.engine_url or "")

    def on_initialize(self, params: types.InitializeParams) -> None:
        self.apply_settings(params.initialization_options)
        folders = params.workspace_folders or []
        uri = folders[0].uri if folders else params.root_uri
        self._root = to_fs_path(uri) if uri else params.root_path
        if self.acceptance is not None:
            self.acceptance.workspace_root = self._root
        self.checker = Checker(self._root, self.settings.check)
        self.client  # noqa: B018 - start loading the model now, not on the first keystroke

    def document(self, uri: str) -> Document:
        """The open document ``uri``; raises InvalidParams when it is not open."""
        if uri not in self.workspace.text_documents:
            raise JsonRpcInvalidParams(f"document {uri} is not open")
        doc = self.workspace.get_text_document(uri)
        return Document(uri, to_fs_path(uri) or uri, doc.source, doc.version or 0, self.position_encoding)

    def document_path(self, uri: str) -> str | None:
        return to_fs_path(uri)

    def document_text(self, uri: str) -> tuple[str, str]:
        doc = self.document(uri)
        return doc.path, doc.text

    async def suggest(self, uri: str, position: types.Position, kind: str = "inline") -> Suggestion | None:
        """The suggestion at ``position``; with telemetry on it carries the id its item's accept command
        reports, and the document's previous suggestion (not accepted) is logged as passed over."""
        doc = self.document(uri)
        if self.acceptance is not None:
            self.acceptance.request(uri)
        open_docs = {to_fs_path(u) or u: d.source for u, d in self.workspace.text_documents.items() if u != uri}
        try:
            await asyncio.to_thread(self.sources.sync_open, open_docs)
            suggestion = await self.completer.suggest(doc, position.line, position.character, self.sources.index)
        except PositionError as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc
        except EngineStreamError as exc:  # a partial answer: no suggestion, one log line, the user told once
            logger.warning("no suggestion: %s", exc)
            self._tell_once(str(exc))
            return None
        except EngineError as exc:
            self._tell_once(str(exc))
            raise
        if suggestion is not None and self.suggestion_filters:
            suggestion = await asyncio.to_thread(self._filtered, doc, suggestion)
        if suggestion is not None and self.acceptance is not None:
            shown = self.acceptance.show(kind=kind, uri=uri, path=doc.path, text=doc.text, line=position.line,
                                         character=position.character, encoding=doc.encoding,
                                         completion=suggestion.text, source=suggestion.source,
                                         adapter=suggestion.adapter)
            suggestion = dataclasses.replace(suggestion, accept_id=shown)
        return suggestion

    def _filtered(self, doc: Document, suggestion: Suggestion | None) -> Suggestion | None:
        for keep in self.suggestion_filters:
            if suggestion is None:
                break
            suggestion = keep(doc, suggestion)
        return suggestion

    def _tell_once(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """Show an engine problem in the editor once per kind of message (every request still errors).
        NOTE: numbers do not make a new kind: a message naming the prompt's token count changed per keystroke."""
        shape = re.sub(r"\d+", "#", message)
        if shape not in self._told:
            self._told.add(shape)
            self.window_show_message(types.ShowMessageParams(type=kind, message=f"codeloop: {message}"))

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "settings": {"model": self.settings.model, "engine_url": self.settings.engine_url},
            "protocol": {"num_tracked_futures": len(self.protocol._request_futures)},
        }
        if self._completer is not None:
            out["completer"] = self._completer.stats.as_dict()
        if self.checker is not None:
            out["checks"] = self.checker.stats()
        if self._client is not None:
            out["client"] = self._client.stats.as_dict()
            out["engine"] = self._client.engine_stats()
        return out


def build_server(settings: Settings | None = None,
                 client_factory: Callable[[Settings], EngineClient] = make_client) -> CodeloopServer:
    """A server with every feature module registered, plus the document and settings handlers."""
    server = CodeloopServer(settings or Settings(), client_factory)

    @server.feature(types.INITIALIZE)
    def initialize(ls: CodeloopServer, params: types.InitializeParams) -> None:
        ls.on_initialize(params)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: CodeloopServer, params: types.InitializedParams) -> None:
        if ls.settings.engine_url:
            ls.client  # noqa: B018 - creating the HTTP client asks the server what it is, off the keystroke path
        if ls.checker is not None:
            await asyncio.to_thread(ls.checker.start)  # the test index builds in a background process
        await asyncio.to_thread(ls.sources.scan_workspace, ls._root)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: CodeloopServer, params: types.DidChangeConfigurationParams) -> None:
        ls.apply_settings(params.settings)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CodeloopServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.completer.cache.forget(params.text_document.uri)
        for listener in ls.document_listeners:
            listener.close(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CodeloopServer, params: types.DidOpenTextDocumentParams) -> None:
        for listener in ls.document_listeners:  # pygls keeps the text itself
            listener.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CodeloopServer, params: types.DidChangeTextDocumentParams) -> None:
        # NOTE: nothing heavy per keystroke: listeners debounce; other documents are indexed on demand
        for listener in ls.document_listeners:
            listener.schedule(params.text_document.uri)

    @server.feature(STATS_REQUEST)
    def stats(ls: CodeloopServer, params: Any) -> dict[str, Any]:
        return ls.stats()

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: CodeloopServer, params: Any) -> None:
        if ls.checker is not None:
            ls.checker.close()
        if ls.acceptance is not None:
            ls.acceptance.flush()
        if ls._client is not None:
            await ls._client.aclose()

    for name in FEATURE_MODULES:
        importlib.import_module(name).register(server)
    return server
