"""JSON-RPC protocol hardening on top of pygls.

pygls drops a request whose params do not deserialize (it only logs and shows a message), so the client
waits forever. Here such a request gets an InvalidParams error response with its id; an unparseable
message gets a ParseError response (id null), as JSON-RPC 2.0 says. The lifecycle is the LSP's: a request
before ``initialize`` gets ServerNotInitialized (-32002), one after ``shutdown`` InvalidRequest (pygls
answered neither, and the client hung); ``params`` may be left out (JSON-RPC makes them optional); a range
whose end comes before its start is refused (InvalidParams for a request, dropped with a log line for a
notification, which has no reply); a lone surrogate in any string becomes U+FFFD.
"""

from __future__ import annotations

import json
import logging
import re
from types import SimpleNamespace
from typing import Any

from lsprotocol.types import EXIT, INITIALIZE, ResponseError
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol
from pygls.workspace import Workspace

from lsp.lines import LspWorkspace

logger = logging.getLogger(__name__)
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002
_LIFECYCLE_FREE = {INITIALIZE, EXIT}
_SURROGATE = re.compile("[\ud800-\udfff]")
"""Methods accepted before ``initialize``."""
_ALREADY_ANSWERED = SimpleNamespace(jsonrpc="answered")
"""Returned for a request already answered with an error: pygls ignores a message of another version."""


class CodeloopProtocol(LanguageServerProtocol):
    """Invariants: every request that can be attributed an id gets exactly one response; the table of
    tracked futures holds only unfinished work (bounded memory over a long editing session)."""

    def _handle_notification(self, method_name: str, params: Any) -> None:
        super()._handle_notification(method_name, params)
        # NOTE: pygls files each notification's handler future under a fresh id and never removes it
        # (one leaked Future per keystroke); finished ones are never looked up again.
        done = [k for k, f in self._request_futures.items() if f.done()]
        for key in done:
            del self._request_futures[key]

    # NOTE: pygls builds a plain ``Workspace`` at ``initialize``; every document must split lines as the
    # LSP does (lsp/lines.py), so the workspace it assigns becomes an ``LspWorkspace`` (no state of its own).
    @property
    def _workspace(self) -> Any:
        return self.__dict__.get("_lsp_workspace")

    @_workspace.setter
    def _workspace(self, value: Any) -> None:
        if type(value) is Workspace:
            value.__class__ = LspWorkspace
        self.__dict__["_lsp_workspace"] = value

    @property
    def exit_code(self) -> int:
        """The process's status once the connection ends: 0 after ``shutdown``, else 1 (as the LSP says
        for ``exit`` without ``shutdown``; pygls computes it but its ``sys.exit`` is swallowed by the loop)."""
        return 0 if self._shutdown else 1

    def handle_message(self, message: Any) -> None:
        method = getattr(message, "method", None)
        request_id = getattr(message, "id", None) if method is not None else None
        if self._shutdown and method != EXIT:
            if request_id is not None:
                self._send_response(request_id, error=ResponseError(INVALID_REQUEST, "the server is shutting down"))
            return
        if not getattr(self, "_initialize_seen", False) and method is not None and method not in _LIFECYCLE_FREE:
            if request_id is not None:
                self._send_response(request_id, error=ResponseError(SERVER_NOT_INITIALIZED,
                                                                    f"{method} before initialize"))
            return  # a notification before initialize is dropped, as the LSP says
        if method == INITIALIZE:
            self._initialize_seen = True
        super().handle_message(message)

    def structure_message(self, data: dict[str, Any]) -> Any:
        if isinstance(data, dict) and "method" in data:
            data = {**data, "params": _encodable(data.get("params"))}  # JSON-RPC: params may be omitted
            reversed_range = _reversed_range(data["params"])
            if reversed_range is not None:
                detail = f"invalid params for {data['method']}: range {reversed_range} ends before it starts"
                if data.get("id") is not None:
                    self._send_response(data["id"], error=ResponseError(code=INVALID_PARAMS, message=detail))
                else:
                    logger.error("dropped notification: %s", detail)
                return _ALREADY_ANSWERED
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "method" in data and data.get("id") is not None:
                detail = f"invalid params for {data['method']}"
                self._send_response(data["id"], error=ResponseError(code=exc.code, message=detail))
                return _ALREADY_ANSWERED
            raise


def _encodable(value: Any, depth: int = 0) -> Any:
    """``value`` with each lone surrogate in its strings replaced by U+FFFD (legal in JSON, not text: the
    tokenizer raised on every request about such a document). One UTF-16 unit for one: positions hold."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if depth > 32:
        return value
    if isinstance(value, dict):
        return {k: _encodable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_encodable(v, depth + 1) for v in value]
    return value


def _reversed_range(value: Any, depth: int = 0) -> str | None:
    """The first ``{"start": pos, "end": pos}`` in ``value`` whose end precedes its start, as text."""
    if depth > 8:
        return None
    if isinstance(value, dict):
        start, end = value.get("start"), value.get("end")
        if _is_position(start) and _is_position(end) and (end["line"], end["character"]) < (start["line"], start["character"]):
            return f"{start['line']}:{start['character']}-{end['line']}:{end['character']}"
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:
        found = _reversed_range(child, depth + 1)
        if found is not None:
            return found
    return None


def _is_position(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(k), int) and not isinstance(value.get(k), bool)
                                           for k in ("line", "character"))


def answer_parse_error(protocol: LanguageServerProtocol, error: Exception) -> bool:
    """Send a ParseError response for a body that is not JSON; True when ``error`` was such a case."""
    if not isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)):
        return False
    protocol._send_response(None, error=ResponseError(code=PARSE_ERROR, message=f"parse error: {error}"))
    return True


def plain(value: Any) -> Any:
    """pygls hands custom-request params over as namedtuples: turn them back into dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
