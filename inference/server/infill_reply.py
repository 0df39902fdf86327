"""Run a ``/infill`` request and answer in llama.cpp's (non-OpenAI) format.

One completion is ``{"content", "tokens_predicted", "tokens_evaluated", "tokens_cached", "truncated",
"stop", "stop_type", "stopping_word", "timings": {...}, "generation_settings": {...}, ...}``; with
``n_cmpl > 1`` the reply is a list of them; ``response_fields`` picks nested fields by path
(``"timings/prompt_n"``) into a flat object. Streaming sends each new piece as ``data: {"content", "stop":
false, ...}`` and a last object with ``"stop": true`` (no ``[DONE]``, as llama-server).

llama.cpp's early stops are applied per sample while the engine streams: ``n_indent`` (a generated line
indented less ends the text at that line's first character) and ``t_max_predict_ms`` (past the time
budget, stop at the next new line). The engine request is aborted once every sample has stopped.

Invariant: as in ``generation``, the engine request is finished or aborted when ``run`` returns or raises.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from inference.request import FinishReason, RequestOutput
from inference.server import generation
from inference.server.generation import Job
from inference.server.infill import InfillRequest


@dataclass
class Sample:
    """One completion as llama.cpp reports it."""

    index: int
    text: str = ""
    num_tokens: int = 0
    stop_type: str = "none"
    """eos | word | limit | none (still running)."""
    token_ids: list[int] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        return self.stop_type != "none"


def indent_cut(text: str, n_indent: int) -> int | None:
    """Where llama.cpp's ``n_indent`` rule ends ``text``: the first character of the first line after the
    first one whose indentation is smaller than ``n_indent`` (None: no such line yet)."""
    if n_indent <= 0:
        return None
    start = text.find("\n")
    while start != -1:
        line_start = start + 1
        end = text.find("\n", line_start)
        line = text[line_start:] if end == -1 else text[line_start:end]
        body = line.lstrip(" \t")
        if body and len(line) - len(body) < n_indent:
            return line_start + len(line) - len(body)
        start = end
    return None


@dataclass
class InfillRun:
    """The state of one /infill request while the engine streams it."""

    body: InfillRequest
    job: Job
    truncated: bool
    context_len: int
    special_ids: frozenset[int]
    """Token ids that end a text as EOS (stop_type "eos" rather than "word")."""
    samples: list[Sample] = field(default_factory=list)
    started_s: float = field(default_factory=time.perf_counter)
    first_output_s: float | None = None
    last_output_s: float | None = None
    num_cached_tokens: int = 0

    def __post_init__(self) -> None:
        self.samples = [Sample(i) for i in range(self.job.prepared.params.n)]

    @property
    def warm_up(self) -> bool:
        return self.body.n_predict == 0

    @property
    def done(self) -> bool:
        return all(s.stopped for s in self.samples)

    def update(self, out: RequestOutput) -> list[tuple[Sample, str]]:
        """Apply one engine output; the (sample, new text) pieces to stream."""
        now = time.perf_counter()
        self.first_output_s = self.first_output_s or now
        self.last_output_s = now
        self.num_cached_tokens = out.num_cached_tokens
        pieces = []
        for comp in out.outputs:
            sample = self.samples[comp.index]
            if sample.stopped or self.warm_up:
                sample.stop_type = "limit" if self.warm_up else sample.stop_type
                continue
            before = len(sample.text)
            sample.text, sample.num_tokens, sample.token_ids = comp.text, len(comp.token_ids), comp.token_ids
            self._limits(sample, comp.delta_text, now)
            if not sample.stopped and comp.finish_reason is not None:
                sample.stop_type = self._stop_type(comp.finish_reason, comp.token_ids)
            if len(sample.text) > before:
                pieces.append((sample, sample.text[before:]))
        return pieces

    def _limits(self, sample: Sample, delta: str, now: float) -> None:
        cut = indent_cut(sample.text, self.body.n_indent)
        if cut is not None:
            sample.text, sample.stop_type = sample.text[:cut], "limit"
            return
        budget_s = self.body.t_max_predict_ms / 1000
        if budget_s > 0 and "\n" in delta and now - (self.first_output_s or now) > budget_s:
            sample.stop_type = "limit"

    def result(self, sample: Sample, *, streamed: bool = False) -> dict[str, Any]:
        """llama.cpp's final object for one completion (``content`` empty when it was streamed)."""
        prompt_n = len(self.job.prepared.prompt_ids) - self.num_cached_tokens
        predicted = 0 if self.warm_up else sample.num_tokens
        return {
            "index": sample.index, "content": "" if streamed else sample.text,
            "tokens": sample.token_ids if self.body.return_tokens and not self.warm_up else [],
            "id_slot": max(self.body.id_slot, 0), "stop": True, "model": self.job.model,
            "tokens_predicted": predicted, "tokens_evaluated": len(self.job.prepared.prompt_ids),
            "generation_settings": self._settings(), "prompt": "", "has_new_line": "\n" in sample.text,
            "truncated": self.truncated, "stop_type": sample.stop_type, "stopping_word": "",
            "tokens_cached": self.num_cached_tokens, "timings": self._timings(prompt_n, predicted),
        }

    def _timings(self, prompt_n: int, predicted_n: int) -> dict[str, float]:
        first = self.first_output_s or self.started_s
        prompt_ms = (first - self.started_s) * 1000
        predicted_ms = ((self.last_output_s or first) - first) * 1000
        return {
            "cache_n": self.num_cached_tokens, "prompt_n": prompt_n, "prompt_ms": prompt_ms,
            "prompt_per_token_ms": prompt_ms / prompt_n if prompt_n else 0.0,
            "prompt_per_second": prompt_n / prompt_ms * 1000 if prompt_ms > 0 else 0.0,
            "predicted_n": predicted_n, "predicted_ms": predicted_ms,
            "predicted_per_token_ms": predicted_ms / predicted_n if predicted_n else 0.0,
            "predicted_per_second": predicted_n / predicted_ms * 1000 if predicted_ms > 0 else 0.0,
        }

    def _settings(self) -> dict[str, Any]:
        p, b = self.job.prepared.params, self.body
        return {"n_ctx": self.context_len, "n_predict": b.n_predict, "temperature": p.temperature,
                "top_k": p.top_k, "top_p": p.top_p, "repeat_penalty": p.repetition_penalty,
                "frequency_penalty": p.frequency_penalty, "presence_penalty": p.presence_penalty,
                "stop": p.stop, "seed": b.seed, "n_indent": b.n_indent, "t_max_predict_ms": b.t_max_predict_ms,
                "samplers": b.samplers or ["penalties", "top_k", "top_p", "temperature"],
                "stream": b.stream, "cache_prompt": b.cache_prompt, "n_cmpl": len(self.samples)}

    def _stop_type(self, reason: FinishReason, token_ids: list[int]) -> str:
        if reason is not FinishReason.STOP:
            return "limit"
        return "eos" if token_ids and token_ids[-1] in self.special_ids else "word"

    def reply(self) -> dict[str, Any] | list[dict[str, Any]]:
        """The non-streamed body: one object, or a list for several completions."""
        objects = [pick(self.result(s), self.body.response_fields) for s in self.samples]
        return objects[0] if len(objects) == 1 else objects


def pick(result: dict[str, Any], paths: list[str] | None) -> dict[str, Any]:
    """llama.cpp's ``response_fields``: the values at the given ``a/b`` paths, flat, under the path."""
    if paths is None:
        return result
    picked = {}
    for path in paths:
        value: Any = result
        for key in path.split("/"):
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
        else:
            picked[path] = value
    return picked


async def run(engine: Any, run_state: InfillRun, disconnected: Callable[[], Awaitable[None]]) -> None:
    """Run to the end (or until every sample stopped early); abort on disconnect (``ClientGone``)."""
    job = run_state.job

    async def drain() -> None:
        async for out in generation.engine_stream(engine, job):
            job.tracker.on_output(out)
            run_state.update(out)
            if run_state.done:
                return

    outcome = "error"
    try:
        await generation.until_disconnect(drain(), job, disconnected)
        outcome = "ok"
    except generation.ClientGone:
        outcome = "disconnected"
        raise
    finally:
        engine.abort(job.request_id)  # a no-op when finished; ends early-stopped samples
        job.tracker.done(outcome)


async def stream(engine: Any, run_state: InfillRun, outputs: AsyncIterator[RequestOutput],
                 first: RequestOutput) -> AsyncIterator[str]:
    """SSE events in llama.cpp's format: partial objects, then one final object per completion."""
    job = run_state.job
    outcome = "disconnected"
    try:
        async for out in generation.chain(first, outputs):
            job.tracker.on_output(out)
            for sample, piece in run_state.update(out):
                yield _event({"index": sample.index, "content": piece, "tokens": [], "stop": False,
                              "id_slot": max(run_state.body.id_slot, 0), "tokens_predicted": sample.num_tokens,
                              "tokens_evaluated": len(job.prepared.prompt_ids)})
            if run_state.done:
                break
        for sample in run_state.samples:
            yield _event(pick(run_state.result(sample, streamed=True), run_state.body.response_fields))
        outcome = "ok"
    except Exception as exc:  # noqa: BLE001 - the stream has started: report in-band, never crash
        outcome = "error"
        yield _event({"error": {"code": 500, "message": f"engine error: {type(exc).__name__}",
                                "type": "server_error"}})
    finally:
        engine.abort(job.request_id)
        job.tracker.done(outcome)
        await outputs.aclose()  # type: ignore[attr-defined]


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"
