"""``HttpClient``: the engine client over a shared ``codeloop serve``, or any other OpenAI-compatible server,
streaming with server-sent events. codeloop's extensions (``priority``, ``heal``, ``greedy_first``) go only to
a server whose ``/v1/models`` says ``owned_by: codeloop``; every server gets the FIM prompt laid out here. Prompts fit
the ``max_model_len`` that ``/v1/models`` advertises, counted by the server's ``POST /tokenize``. A document
under a root of the per-repository adapter registry is sent with that adapter's name as ``model`` when the
server lists it (``codeloop serve`` serves every registered adapter). With a ``relaunch`` (``codeloop lsp
--shared``), a refused connection restarts the server and sends the request again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from inference.repo_adapters import RepoAdapterIndex
from inference.server.launcher import API_KEY_ENV
from inference.server.schemas import OWNER
from lsp.engine_client import (
    Chunk,
    ClientStats,
    EngineError,
    EngineStreamError,
    Generation,
    Sample,
    Samples,
    tracked,
)
from lsp.remote_tokens import RemoteTokenCounter

logger = logging.getLogger(__name__)
RELIST_S = 5.0
"""A registered adapter the server did not list is asked about again after this long (it may still be
loading it); any promotion (the registry's STAMP) makes the next request ask at once."""
RELAUNCH_BACKOFF_S = 30.0
"""After a failed restart, requests fail at once for this long (a keystroke must not wait for a start each)."""


class EngineUnreachable(EngineError):
    """The connection was refused, or dropped before an answer: the server may have exited."""


GONE = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
"""Transport errors of a server that may have exited (a kept-alive connection to a killed server fails on read
or write, not on connect); never a timeout, which is a busy server."""


class HttpClient:
    """A ``codeloop serve`` (or any OpenAI-compatible server) at ``base_url``."""

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None,
                 timeout_s: float = 60.0, home: str | os.PathLike[str] | None = None,
                 relaunch: Callable[[], str] | None = None) -> None:
        self.model = model
        self.stats = ClientStats()
        self.relaunch = relaunch
        """Blocking: the URL of a healthy server, started if none runs (the shared-server launcher)."""
        self.on_relaunch: Callable[[str], None] | None = None
        """Told, with a sentence, each time ``relaunch`` gave a server after a refused connection."""
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(timeout_s, connect=5.0)
        self._relaunching: asyncio.Future[None] | None = None
        self._relaunch_after = 0.0
        self._repos = RepoAdapterIndex(home)
        self._connect(base_url)

    def _connect(self, base_url: str) -> None:
        """Point at the server at ``base_url``; what was learnt about the previous one is forgotten."""
        base = base_url.rstrip("/")
        if not base.endswith("/v1"):
            base += "/v1"
        self._http = httpx.AsyncClient(base_url=base, headers=self._headers, timeout=self._timeout)
        self._tokens = RemoteTokenCounter(base.removesuffix("/v1"), self._headers, self.model)
        self._codeloop: bool | None = None
        """Whether the server is a ``codeloop serve`` (asked once: at start, else on the first request)."""
        self._max_model_len: int | None = None
        """The served model's context in tokens, as ``/v1/models`` says (vLLM's field; None: not said)."""
        self._asking: asyncio.Future[Any] | None = None
        self._listed: set[str] = set()
        """Model ids of the latest ``/v1/models`` answer."""
        self._listed_at: tuple[float, tuple[int, int] | None] | None = None
        """(monotonic time, registry version) of that answer; None: not asked yet."""

    def start(self) -> None:
        """Ask the server what it is in the background, so the first keystroke does not wait for it."""
        if self._asking is None:
            self._asking = asyncio.ensure_future(self._ask_quietly())

    async def _ask_quietly(self) -> None:
        try:
            await self.is_codeloop()
        except EngineError:
            pass  # asked again by the first request, which reports the error

    async def is_codeloop(self) -> bool:
        """True when ``/v1/models`` names ``owned_by: codeloop``: only then are codeloop's own request fields
        sent (other OpenAI-compatible servers reject ``priority``)."""
        if self._codeloop is None:
            await self._list_models()
        return bool(self._codeloop)

    async def _list_models(self) -> None:
        version = self._repos.version
        try:
            resp = await self._http.get("/models")
        except GONE as exc:
            raise EngineUnreachable(f"engine at {self._http.base_url} unreachable: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise EngineError(f"engine at {self._http.base_url} unreachable: {exc!r}") from exc
        if resp.status_code == 401:
            raise EngineError(f"engine at {self._http.base_url} refused the API key (HTTP 401): set the "
                              f"apiKey setting or ${API_KEY_ENV}")
        try:
            cards = resp.json().get("data") if resp.status_code == 200 else []
        except (ValueError, AttributeError):
            cards = []
        cards = [c for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []
        self._max_model_len = _max_model_len(cards, self.model)
        self._codeloop = any(c.get("owned_by") == OWNER for c in cards)
        self._listed = {str(c.get("id")) for c in cards}
        self._listed_at = (time.monotonic(), version)

    async def adapter_for(self, path: str) -> str | None:
        entry = self._repos.find(path)  # one stat of the registry's STAMP while nothing was promoted
        if entry is None:
            return None
        asked = self._listed_at
        if asked is None or asked[1] != self._repos.version or (
                entry.name not in self._listed and time.monotonic() - asked[0] > RELIST_S):
            try:
                await self._list_models()
            except EngineError:
                return None  # the request itself reports an unreachable server
        return entry.name if entry.name in self._listed else None

    def stream(self, gen: Generation) -> AsyncIterator[Chunk]:
        return tracked(self.stats, self._sse_raw("/completions", lambda own: _completion_body(gen, own),
                                                  lambda c: c.get("text") or "", gen.adapter))

    def samples(self, gen: Generation, n: int) -> AsyncIterator[Samples]:
        """n choices of one /v1/completions request; the server gives no log-probabilities (None)."""
        return tracked(self.stats, self._sse_samples(lambda own: {**_completion_body(gen, own), "n": n}, n,
                                                      gen.adapter))

    async def _sse_samples(self, body_of: Any, n: int, adapter: str | None = None) -> AsyncIterator[Samples]:
        texts, done = [""] * n, [False] * n
        prompt_tokens = cached = 0
        async with contextlib.aclosing(self._events("/completions", body_of, adapter)) as events:
            async for event in events:
                for choice in event.get("choices") or []:
                    i = choice.get("index", 0)
                    if isinstance(i, int) and 0 <= i < n:
                        texts[i] += choice.get("text") or ""
                        done[i] = done[i] or choice.get("finish_reason") is not None
                prompt_tokens, cached = _usage(event, prompt_tokens, cached)
                yield Samples([Sample(i, texts[i], None, done[i]) for i in range(n)], False, prompt_tokens, cached)
        yield Samples([Sample(i, texts[i], None, True) for i in range(n)], True, prompt_tokens, cached)

    def chat(self, messages: list[dict[str, str]], max_tokens: int,
             temperature: float | None = None, *, seed: int | None = None) -> AsyncIterator[Chunk]:
        """``temperature`` None: the server's recommended sampling for the model (no sampling fields sent)."""
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "stream": True,
                                "stream_options": {"include_usage": True}}
        if temperature is not None:
            body["temperature"] = float(temperature)
        if seed is not None:
            body["seed"] = seed
        return tracked(self.stats, self._sse_raw(
            "/chat/completions", lambda own: {**body, "priority": "chat"} if own else body,
            lambda c: (c.get("delta") or {}).get("content") or ""))

    async def _sse_raw(self, path: str, body_of: Any, delta_of: Any,
                       adapter: str | None = None) -> AsyncIterator[Chunk]:
        text = ""
        prompt_tokens = cached = 0
        async with contextlib.aclosing(self._events(path, body_of, adapter)) as events:
            async for event in events:
                prompt_tokens, cached = _usage(event, prompt_tokens, cached)
                for choice in event.get("choices") or []:
                    delta = delta_of(choice)
                    text += delta
                    yield Chunk(text, delta, False, prompt_tokens, cached)
        yield Chunk(text, "", True, prompt_tokens, cached)

    async def _events(self, path: str, body_of: Any, adapter: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """The JSON events of one streamed request, whose body ``body_of(is_codeloop)`` builds. HTTP errors
        and a mid-stream ``{"error": ...}`` event become EngineError (the text so far is no answer). A refused
        connection (before any event) is answered by a relaunched server when there is a ``relaunch`` (which
        gives the same server back if it is healthy after all)."""
        url, yielded = str(self._http.base_url), False
        try:
            async with contextlib.aclosing(self._events_once(path, body_of, adapter)) as events:
                async for event in events:
                    yielded = True
                    yield event
        except EngineUnreachable:
            if yielded or not await self._relaunched(url):
                raise
            async with contextlib.aclosing(self._events_once(path, body_of, adapter)) as events:  # NOTE: once; a second refusal is the error
                async for event in events:
                    yield event

    async def _relaunched(self, failed_url: str) -> bool:
        """Whether a server was relaunched after ``failed_url`` refused a connection (by this request or by
        another one at the same time). Raises EngineError when the relaunch failed."""
        if self.relaunch is None:
            return False
        if str(self._http.base_url) != failed_url:
            return True
        if self._relaunching is None:
            if time.monotonic() < self._relaunch_after:
                return False
            self._relaunching = asyncio.ensure_future(self._relaunch_now(failed_url))
        await asyncio.shield(self._relaunching)  # NOTE: a superseded keystroke must not abandon the start
        return True

    async def _relaunch_now(self, failed_url: str) -> None:
        assert self.relaunch is not None
        try:
            url = await asyncio.to_thread(self.relaunch)
        except Exception as exc:  # noqa: BLE001 - any launcher failure is one EngineError
            self._relaunch_after = time.monotonic() + RELAUNCH_BACKOFF_S
            raise EngineError(f"engine at {failed_url} stopped and could not be started again: {exc}") from exc
        finally:
            self._relaunching = None
        old, old_tokens = self._http, self._tokens
        self._connect(url)
        await old.aclose()
        old_tokens.close()
        message = f"the shared engine at {failed_url} had stopped; started again at {url}"
        logger.warning("%s", message)
        if self.on_relaunch is not None:
            self.on_relaunch(message)

    async def _events_once(self, path: str, body_of: Any, adapter: str | None) -> AsyncIterator[dict[str, Any]]:
        body = body_of(await self.is_codeloop())
        if self.model:
            body["model"] = self.model
        if adapter:
            body["model"] = adapter
        try:
            async with self._http.stream("POST", path, json=body) as resp:
                if resp.status_code != 200:
                    detail = (await resp.aread()).decode(errors="replace")[:300]
                    raise EngineError(f"engine returned HTTP {resp.status_code}: {detail}")
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if isinstance(event, dict) and event.get("error"):
                        raise EngineStreamError(f"engine failed mid-stream: {_error_message(event['error'])}")
                    yield event
        except GONE as exc:
            raise EngineUnreachable(f"engine at {self._http.base_url} unreachable: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise EngineError(f"engine at {self._http.base_url} unreachable: {exc!r}") from exc

    def engine_stats(self) -> dict[str, Any]:
        return {}

    def count_tokens(self, text: str) -> int | None:
        """The server's count (``POST /tokenize``, cached per text), else a bound above it; blocking."""
        return self._tokens.count(text)

    def max_prompt_tokens(self, max_tokens: int) -> int | None:
        """From the ``max_model_len`` of ``/v1/models`` (None until it answered, or when it does not say)."""
        return None if self._max_model_len is None else max(0, self._max_model_len - max_tokens)

    async def ready(self) -> None:
        """Wait for the question the start asked (an error surfaces in the request itself)."""
        await self._ask_quietly()

    async def aclose(self) -> None:
        await self._http.aclose()
        self._tokens.close()


def _completion_body(gen: Generation, codeloop: bool) -> dict[str, Any]:
    """The /v1/completions body (the prompt as laid out by the completer); a codeloop server also gets
    ``priority`` and the other extensions."""
    body: dict[str, Any] = {
        "max_tokens": gen.max_tokens, "temperature": float(gen.temperature), "stream": True,
        "stream_options": {"include_usage": True},
    }
    if codeloop:
        body["priority"] = gen.priority.name.lower()
        if gen.greedy_first:
            body["greedy_first"] = True
        if gen.heal:
            body["heal"] = True
    body["prompt"] = gen.prompt
    if gen.stop:
        body["stop"] = list(gen.stop)
    return body


def _max_model_len(cards: list[dict[str, Any]], model: str | None) -> int | None:
    """``max_model_len`` of the card named ``model`` (else of the first card, the served model)."""
    named = [c for c in cards if c.get("id") == model] or cards[:1]
    value = named[0].get("max_model_len") if named else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _usage(event: dict[str, Any], prompt_tokens: int, cached: int) -> tuple[int, int]:
    """(prompt tokens, cached prompt tokens) after ``event`` (unchanged when it carries no usage)."""
    usage = event.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return usage.get("prompt_tokens", prompt_tokens), details.get("cached_tokens", cached)


def _error_message(error: Any) -> str:
    return str(error.get("message") or error) if isinstance(error, dict) else str(error)
