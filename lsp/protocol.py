"""JSON-RPC protocol hardening on top of pygls.

pygls drops a request whose params do not deserialize (it only logs and shows a message), so the client
waits forever. Here such a request gets an InvalidParams error response with its id; an unparseable
message gets a ParseError response (id null), as JSON-RPC 2.0 says.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

from lsprotocol.types import ResponseError
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol

logger = logging.getLogger(__name__)
PARSE_ERROR = -32700
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

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "method" in data and data.get("id") is not None:
                detail = f"invalid params for {data['method']}"
                self._send_response(data["id"], error=ResponseError(code=exc.code, message=detail))
                return _ALREADY_ANSWERED
            raise


def answer_parse_error(protocol: LanguageServerProtocol, error: Exception) -> bool:
    """Send a ParseError response for a body that is not JSON; True when ``error`` was such a case."""
    if not isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)):
        return False
    protocol._send_response(None, error=ResponseError(code=PARSE_ERROR, message=f"parse error: {error}"))
    return True
