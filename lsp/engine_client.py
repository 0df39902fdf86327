"""``EngineClient``: how the language server talks to an engine, and what goes through it.

Two implementations, chosen at the entry point from settings (never by sniffing):
``lsp/inprocess_client.py`` (an ``AsyncEngine`` in this process, the default) and ``lsp/http_client.py``
(a shared ``codeloop serve`` over the OpenAI wire format, ``--engine-url``, or any other OpenAI-compatible
server).

Invariant for both: a stream that is closed before it finishes (the consumer breaks out, or its task is
cancelled) aborts the engine request, and is counted in ``ClientStats.num_aborted`` (see :func:`tracked`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from inference.request import Priority


@dataclass(frozen=True)
class Generation:
    """One engine request."""

    prompt: str
    """The fully laid-out prompt (FIM or chat template already applied)."""
    max_tokens: int
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    priority: Priority = Priority.INTERACTIVE
    request_id: str = field(default_factory=lambda: f"lsp-{uuid.uuid4().hex[:12]}")
    seed: int | None = None
    """Sampling seed (None: random): the same seed, prompt and settings give the same text."""
    recommended: bool = False
    """Chat: sample with the model family's recommended settings (catalog / generation_config) instead
    of ``temperature``; over HTTP the sampling fields are left out and the server applies them."""
    greedy_first: bool = False
    """With n samples (``samples``): sample 0 is the greedy continuation, the others sample at
    ``temperature``."""
    heal: bool = False
    """Token healing (``SamplingParams.heal``): for a prompt that ends where the user is typing (spm)."""
    adapter: str | None = None
    """LoRA adapter the request runs under (``adapter_for``'s answer; over HTTP the ``model`` sent);
    None: the engine's default."""


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

    def chat(self, messages: list[dict[str, str]], max_tokens: int,
             temperature: float | None = None, *, seed: int | None = None) -> AsyncIterator[Chunk]:
        """Stream the answer; ``temperature`` None samples with the model family's recommended settings;
        ``seed`` makes the sampling reproducible (OpenAI's ``seed``)."""
        ...

    def engine_stats(self) -> dict[str, Any]:
        ...

    def count_tokens(self, text: str) -> int | None:
        """Tokens in ``text`` for this engine's tokenizer, or a bound above it (``token_bound``) where the
        engine cannot say (None: unknown). Called from a worker thread, never from the event loop."""
        ...

    def max_prompt_tokens(self, max_tokens: int) -> int | None:
        """Most prompt tokens that leave room for ``max_tokens`` new ones (None: unknown)."""
        ...

    async def ready(self) -> None:
        """Wait until the engine can take requests (model loaded)."""
        ...

    async def adapter_for(self, path: str) -> str | None:
        """The per-repository adapter (``inference/repo_adapters.py``) to complete the document at ``path``
        with, once the engine serves it; None: the base model (no registered root above ``path``)."""
        ...

    async def aclose(self) -> None:
        ...


ADDED_TOKENS_MARGIN = 8
"""Tokens a tokenizer may add to a text's own (a BOS, SentencePiece's leading-space piece)."""


def token_bound(text: str) -> int:
    """A count no tokenizer we serve exceeds for ``text``: every token of a byte-level BPE (or a SentencePiece
    model with byte fallback) stands for at least one byte of the text, plus the few it adds itself."""
    return len(text.encode("utf-8", errors="surrogatepass")) + ADDED_TOKENS_MARGIN


class EngineError(RuntimeError):
    """The engine could not answer (HTTP error, engine crash)."""


class EngineStreamError(EngineError):
    """The engine reported an error after the stream had started: the text so far is not an answer."""


async def tracked(stats: ClientStats, source: AsyncIterator[Any]) -> AsyncIterator[Any]:
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
