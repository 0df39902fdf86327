"""``RemoteTokenCounter``: token counts of a remote server's ``POST /tokenize`` (vLLM's shape, which
``codeloop serve`` speaks), for fitting prompts to its context from the language server.

Invariant: ``count`` never raises and never returns less than the server would count: the server's own
answer, or ``token_bound`` where the server has no ``/tokenize``, cannot be reached, or answers oddly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import httpx

from lsp.engine_client import token_bound

logger = logging.getLogger(__name__)
MAX_CACHED_TEXTS = 256
RETRY_AFTER_S = 30.0
"""After the server failed to answer (unreachable, timed out, 5xx), bounds only for this long."""
UNSUPPORTED = frozenset({400, 404, 405, 422, 501})
"""Statuses of a server that does not speak vLLM's /tokenize (another OpenAI-compatible server): asked once."""


class RemoteTokenCounter:
    """Counts tokens with the server at ``root_url`` (no ``/v1``), cached per text (a keystroke that rebuilds
    the same prompt asks nothing). Blocking: call it from a worker thread (the Completer does)."""

    def __init__(self, root_url: str, headers: dict[str, str], model: str | None = None,
                 timeout_s: float = 5.0) -> None:
        self.model = model
        self._http = httpx.Client(base_url=root_url.rstrip("/"), headers=headers, timeout=timeout_s)
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._supported: bool | None = None
        """Whether the server tokenizes (None: not asked yet)."""
        self._retry_at = 0.0

    def count(self, text: str) -> int:
        with self._lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
        if self._supported is False or time.monotonic() < self._retry_at:
            return token_bound(text)
        counted = self._ask(text)
        if counted is None:
            return token_bound(text)
        with self._lock:
            self._cache[text] = counted
            while len(self._cache) > MAX_CACHED_TEXTS:
                self._cache.popitem(last=False)
        return counted

    def _ask(self, text: str) -> int | None:
        body: dict[str, Any] = {"prompt": text}
        if self.model:
            body["model"] = self.model
        try:
            resp = self._http.post("/tokenize", json=body)
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: closed (the client moved to a new server)
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            logger.info("no token count from %s: %r", self._http.base_url, exc)
            return None
        if resp.status_code in UNSUPPORTED and self._supported is None:
            self._supported = False
            logger.info("%s has no /tokenize (HTTP %d): prompts fit by a bound on their bytes",
                        self._http.base_url, resp.status_code)
            return None
        counted = _count_of(resp)
        if counted is None:
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            return None
        self._supported = True
        return counted

    def close(self) -> None:
        self._http.close()


def _count_of(resp: httpx.Response) -> int | None:
    """The count of a 200 answer: vLLM's ``count``, else the length of ``tokens`` (llama-server's shape)."""
    if resp.status_code != 200:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    count = body.get("count") if isinstance(body, dict) else None
    if isinstance(count, int) and not isinstance(count, bool):
        return count
    tokens = body.get("tokens") if isinstance(body, dict) else None
    return len(tokens) if isinstance(tokens, list) else None
