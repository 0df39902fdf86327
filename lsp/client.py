"""Engine clients: the language server talks to an engine through ``EngineClient``.

Two implementations, chosen at the entry point from settings (never by sniffing):
- ``InProcessClient``: an ``AsyncEngine`` over ``Engine.from_config`` inside this process (default).
- ``HttpClient``: a shared ``codeloop serve`` over the OpenAI wire format (``--engine-url``), or any other
  OpenAI-compatible server: codeloop's extensions (``priority``, FIM through ``suffix``) go only to a server
  whose ``/v1/models`` says ``owned_by: codeloop``; others get a FIM prompt laid out here.

Invariant for both: a stream that is closed before it finishes (the consumer breaks out, or its task is
cancelled) aborts the engine request, and is counted in ``ClientStats.num_aborted``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx

from inference.config import EngineConfig
from inference.request import Priority
from inference.server.launcher import API_KEY_ENV
from inference.server.schemas import OWNER


@dataclass(frozen=True)
class Generation:
    """One engine request."""

    prompt: str
    """The fully laid-out prompt (FIM or chat template already applied)."""
    max_tokens: int
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    priority: Priority = Priority.INTERACTIVE
    prefix: str | None = None
    """With ``suffix``: plain FIM parts, sent instead of ``prompt`` to an HTTP server (it lays them out)."""
    suffix: str | None = None
    request_id: str = field(default_factory=lambda: f"lsp-{uuid.uuid4().hex[:12]}")
    recommended: bool = False
    """Chat: sample with the model family's recommended settings (catalog / generation_config) instead
    of ``temperature``; over HTTP the sampling fields are left out and the server applies them."""


@dataclass
class Chunk:
    """Streamed text so far."""

    text: str
    delta: str
    finished: bool = False
    num_prompt_tokens: int = 0
    num_cached_tokens: int = 0


@dataclass(frozen=True)
class Sample:
    """One sample of an n>1 request, so far."""

    index: int
    text: str
    """Text generated so far."""
    logprob: float | None = None
    """Cumulative log-probability of the tokens so far (None: the engine does not say)."""
    finished: bool = False


@dataclass
class Samples:
    """Every sample of one n>1 request after an engine step (what ``EngineClient.samples`` streams)."""

    samples: list[Sample]
    finished: bool = False
    num_prompt_tokens: int = 0
    num_cached_tokens: int = 0


@dataclass
class ClientStats:
    """Counters since start. Invariant: num_started == num_finished + num_aborted + num_failed + running."""

    num_started: int = 0
    num_finished: int = 0
    num_aborted: int = 0
    num_failed: int = 0
    num_prompt_tokens: int = 0
    num_cached_tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        total = self.num_prompt_tokens
        out["prefix_cache_hit_rate"] = self.num_cached_tokens / total if total else 0.0
        return out


class EngineClient(Protocol):
    stats: ClientStats

    def stream(self, gen: Generation) -> AsyncIterator[Chunk]:
        """Stream ``gen``; closing the iterator early aborts the engine request."""
        ...

    def samples(self, gen: Generation, n: int) -> AsyncIterator[Samples]:
        """Stream ``n`` samples of ``gen`` from one engine request (they share the prompt's KV); closing
        the iterator early aborts the request."""
        ...

    def chat_prompt(self, messages: list[dict[str, str]]) -> Generation | None:
        """A Generation for chat ``messages`` (None: the client sends messages itself, see ``chat``)."""
        ...

    def chat(self, messages: list[dict[str, str]], max_tokens: int,
             temperature: float | None = None) -> AsyncIterator[Chunk]:
        """Stream the answer; ``temperature`` None samples with the model family's recommended settings."""
        ...

    def engine_stats(self) -> dict[str, Any]:
        ...

    def count_tokens(self, text: str) -> int | None:
        """Tokens in ``text`` for this engine's tokenizer (None: unknown)."""
        ...

    def max_prompt_tokens(self, max_tokens: int) -> int | None:
        """Most prompt tokens that leave room for ``max_tokens`` new ones (None: unknown)."""
        ...

    async def ready(self) -> None:
        """Wait until the engine can take requests (model loaded)."""
        ...

    async def aclose(self) -> None:
        ...


async def _tracked(stats: ClientStats, source: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Count a stream's outcome in ``stats`` (finished, aborted by the consumer, or failed); items are
    Chunks or Samples."""
    stats.num_started += 1
    outcome = "aborted"
    last: Any = None
    try:
        async for chunk in source:
            last = chunk
            if chunk.finished:
                outcome = "finished"
            yield chunk
        outcome = "finished"
    except Exception:
        outcome = "failed"
        raise
    finally:
        setattr(stats, f"num_{outcome}", getattr(stats, f"num_{outcome}") + 1)
        if last is not None:
            stats.num_prompt_tokens += last.num_prompt_tokens
            stats.num_cached_tokens += last.num_cached_tokens
        await source.aclose()  # type: ignore[attr-defined]


class InProcessClient:
    """An AsyncEngine in this process; the model loads in a background thread on ``start()``."""

    def __init__(self, model: str, *, engine_options: dict[str, Any] | None = None) -> None:
        self.model = model
        self.engine_options = engine_options or {}
        self.stats = ClientStats()
        self._engine: Any = None
        self._loading: asyncio.Future[Any] | None = None

    def start(self) -> None:
        """Begin loading the model off the event loop (idempotent)."""
        if self._loading is None:
            self._loading = asyncio.get_running_loop().run_in_executor(None, self._load)

    def _load(self) -> Any:
        from inference import async_engine, engine

        try:
            config = EngineConfig(model=self.model, **self.engine_options)
            return async_engine.AsyncEngine(engine.Engine.from_config(config))
        except Exception as exc:  # noqa: BLE001 - any load failure is reported as one EngineError
            raise EngineError(f"cannot load model {self.model!r}: {exc}") from exc

    async def ready(self) -> None:
        await self.engine()

    async def engine(self) -> Any:
        self.start()
        assert self._loading is not None
        self._engine = await asyncio.shield(self._loading)
        return self._engine

    def stream(self, gen: Generation) -> AsyncIterator[Chunk]:
        return _tracked(self.stats, self._stream(gen))

    async def _stream(self, gen: Generation) -> AsyncIterator[Chunk]:
        from inference.catalog import chat_defaults
        from inference.sampling import SamplingParams

        aeng = await self.engine()
        sampling = chat_defaults(self.model).as_dict() if gen.recommended else {"temperature": gen.temperature}
        params = SamplingParams(max_tokens=gen.max_tokens, stop=list(gen.stop), **sampling)
        agen = aeng.generate(gen.prompt, params, priority=gen.priority, request_id=gen.request_id)
        try:
            async for out in agen:
                comp = out.outputs[0]
                yield Chunk(comp.text, comp.delta_text, out.finished, out.num_prompt_tokens, out.num_cached_tokens)
        finally:
            await agen.aclose()  # NOTE: closing AsyncEngine.generate early aborts the request

    def samples(self, gen: Generation, n: int) -> AsyncIterator[Samples]:
        return _tracked(self.stats, self._samples(gen, n))

    async def _samples(self, gen: Generation, n: int) -> AsyncIterator[Samples]:
        from inference.sampling import SamplingParams

        aeng = await self.engine()
        params = SamplingParams(temperature=gen.temperature, max_tokens=gen.max_tokens, stop=list(gen.stop),
                                n=n, logprobs=True)
        agen = aeng.generate(gen.prompt, params, priority=gen.priority, request_id=gen.request_id)
        try:
            async for out in agen:
                samples = [Sample(o.index, o.text, sum(o.logprobs) if o.logprobs is not None else None,
                                  o.finished) for o in out.outputs]
                yield Samples(samples, out.finished, out.num_prompt_tokens, out.num_cached_tokens)
        finally:
            await agen.aclose()

    def chat_prompt(self, messages: list[dict[str, str]]) -> Generation | None:
        return None

    def chat(self, messages: list[dict[str, str]], max_tokens: int,
             temperature: float | None = None) -> AsyncIterator[Chunk]:
        return _tracked(self.stats, self._chat(messages, max_tokens, temperature))

    async def _chat(self, messages: list[dict[str, str]], max_tokens: int,
                    temperature: float | None) -> AsyncIterator[Chunk]:
        aeng = await self.engine()
        prompt = aeng.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        gen = Generation(prompt=prompt, max_tokens=max_tokens, temperature=temperature or 0.0, priority=Priority.CHAT,
                         recommended=temperature is None)
        async for chunk in self._stream(gen):
            yield chunk

    def engine_stats(self) -> dict[str, Any]:
        return {} if self._engine is None else _plain(self._engine.stats())

    def count_tokens(self, text: str) -> int | None:
        return None if self._engine is None else len(self._engine.tokenizer.encode(text))

    def max_prompt_tokens(self, max_tokens: int) -> int | None:
        return None if self._engine is None else self._engine.engine.max_model_len - max_tokens

    async def aclose(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()


def _plain(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    as_dict = getattr(value, "as_dict", None)
    return as_dict() if callable(as_dict) else {"repr": repr(value)}


class HttpClient:
    """A ``codeloop serve`` (or any OpenAI-compatible server) at ``base_url``."""

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None,
                 timeout_s: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        base = base_url.rstrip("/")
        if not base.endswith("/v1"):
            base += "/v1"
        self.model = model
        self.stats = ClientStats()
        self._http = httpx.AsyncClient(base_url=base, headers=headers, timeout=httpx.Timeout(timeout_s, connect=5.0))
        self._codeloop: bool | None = None
        """Whether the server is a ``codeloop serve`` (asked once: at start, else on the first request)."""
        self._asking: asyncio.Future[Any] | None = None

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
        sent (other OpenAI-compatible servers reject ``priority``, and few take ``suffix``)."""
        if self._codeloop is None:
            try:
                resp = await self._http.get("/models")
            except httpx.HTTPError as exc:
                raise EngineError(f"engine at {self._http.base_url} unreachable: {exc!r}") from exc
            if resp.status_code == 401:
                raise EngineError(f"engine at {self._http.base_url} refused the API key (HTTP 401): set the "
                                  f"apiKey setting or ${API_KEY_ENV}")
            try:
                cards = resp.json().get("data") if resp.status_code == 200 else []
            except ValueError:
                cards = []
            self._codeloop = any(isinstance(c, dict) and c.get("owned_by") == OWNER for c in cards or [])
        return self._codeloop

    def stream(self, gen: Generation) -> AsyncIterator[Chunk]:
        return _tracked(self.stats, self._sse_raw("/completions", lambda own: _completion_body(gen, own),
                                                  lambda c: c.get("text") or ""))

    def samples(self, gen: Generation, n: int) -> AsyncIterator[Samples]:
        """n choices of one /v1/completions request; the server gives no log-probabilities (None)."""
        return _tracked(self.stats, self._sse_samples(lambda own: {**_completion_body(gen, own), "n": n}, n))

    async def _sse_samples(self, body_of: Any, n: int) -> AsyncIterator[Samples]:
        texts, done = [""] * n, [False] * n
        prompt_tokens = cached = 0
        async for event in self._events("/completions", body_of):
            for choice in event.get("choices") or []:
                i = choice.get("index", 0)
                if isinstance(i, int) and 0 <= i < n:
                    texts[i] += choice.get("text") or ""
                    done[i] = done[i] or choice.get("finish_reason") is not None
            prompt_tokens, cached = _usage(event, prompt_tokens, cached)
            yield Samples([Sample(i, texts[i], None, done[i]) for i in range(n)], False, prompt_tokens, cached)
        yield Samples([Sample(i, texts[i], None, True) for i in range(n)], True, prompt_tokens, cached)

    def chat_prompt(self, messages: list[dict[str, str]]) -> Generation | None:
        return None

    def chat(self, messages: list[dict[str, str]], max_tokens: int,
             temperature: float | None = None) -> AsyncIterator[Chunk]:
        """``temperature`` None: the server's recommended sampling for the model (no sampling fields sent)."""
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "stream": True,
                                "stream_options": {"include_usage": True}}
        if temperature is not None:
            body["temperature"] = float(temperature)
        return _tracked(self.stats, self._sse_raw(
            "/chat/completions", lambda own: {**body, "priority": "chat"} if own else body,
            lambda c: (c.get("delta") or {}).get("content") or ""))

    async def _sse_raw(self, path: str, body_of: Any, delta_of: Any) -> AsyncIterator[Chunk]:
        text = ""
        prompt_tokens = cached = 0
        async for event in self._events(path, body_of):
            prompt_tokens, cached = _usage(event, prompt_tokens, cached)
            for choice in event.get("choices") or []:
                delta = delta_of(choice)
                text += delta
                yield Chunk(text, delta, False, prompt_tokens, cached)
        yield Chunk(text, "", True, prompt_tokens, cached)

    async def _events(self, path: str, body_of: Any) -> AsyncIterator[dict[str, Any]]:
        """The JSON events of one streamed request, whose body ``body_of(is_codeloop)`` builds. HTTP errors
        and a mid-stream ``{"error": ...}`` event become EngineError (the text so far is no answer)."""
        body = body_of(await self.is_codeloop())
        if self.model:
            body["model"] = self.model
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
        except httpx.HTTPError as exc:
            raise EngineError(f"engine at {self._http.base_url} unreachable: {exc!r}") from exc

    def engine_stats(self) -> dict[str, Any]:
        return {}

    def count_tokens(self, text: str) -> int | None:
        return None  # the server checks; a too-long prompt is an HTTP 400

    def max_prompt_tokens(self, max_tokens: int) -> int | None:
        return None

    async def ready(self) -> None:
        """Wait for the question the start asked (an error surfaces in the request itself)."""
        await self._ask_quietly()

    async def aclose(self) -> None:
        await self._http.aclose()


def _completion_body(gen: Generation, codeloop: bool) -> dict[str, Any]:
    """The /v1/completions body; a codeloop server also gets ``priority`` and lays out FIM from ``suffix``,
    any other gets the prompt laid out here with the model's FIM tokens."""
    body: dict[str, Any] = {
        "max_tokens": gen.max_tokens, "temperature": float(gen.temperature), "stream": True,
        "stream_options": {"include_usage": True},
    }
    if codeloop:
        body["priority"] = gen.priority.name.lower()
    if codeloop and gen.prefix is not None and gen.suffix is not None:
        body.update(prompt=gen.prefix, suffix=gen.suffix)
    else:
        body["prompt"] = gen.prompt
    if gen.stop:
        body["stop"] = list(gen.stop)
    return body


def _usage(event: dict[str, Any], prompt_tokens: int, cached: int) -> tuple[int, int]:
    """(prompt tokens, cached prompt tokens) after ``event`` (unchanged when it carries no usage)."""
    usage = event.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return usage.get("prompt_tokens", prompt_tokens), details.get("cached_tokens", cached)


def _error_message(error: Any) -> str:
    return str(error.get("message") or error) if isinstance(error, dict) else str(error)


class EngineError(RuntimeError):
    """The engine could not answer (HTTP error, engine crash)."""


class EngineStreamError(EngineError):
    """The engine reported an error after the stream had started: the text so far is not an answer."""
