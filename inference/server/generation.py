"""Run one prepared request on the engine: collect it (JSON) or stream it (SSE, OpenAI chunk format).

Invariant: whatever happens (finish, client disconnect, cancellation, engine error) the engine request
is finished or aborted when these functions return, and the request's tracker is closed exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from inference.request import CompletionOutput, RequestOutput
from inference.server import schemas as s
from inference.server.backend import ServingEngine
from inference.server.errors import OVERLOADED, SERVER, APIError
from inference.server.metrics import RequestTracker
from inference.server.prompts import PreparedRequest

log = logging.getLogger(__name__)
DONE = "data: [DONE]\n\n"
T = TypeVar("T")


@dataclass
class Job:
    """One admitted HTTP request: its engine input, ids for the response, and its tracker."""

    request_id: str
    model: str
    prepared: PreparedRequest
    tracker: RequestTracker
    chat: bool
    include_usage: bool = False
    adapter_id: str | None = None
    """LoRA adapter named by the request's ``model`` (None: the served model's default)."""
    created: int = field(default_factory=s.now_s)

    def usage(self, final: RequestOutput | None) -> s.Usage:
        num_prompt = len(self.prepared.prompt_ids)
        cached = final.num_cached_tokens if final else 0
        return s.Usage(prompt_tokens=num_prompt, completion_tokens=self.tracker.num_generated,
                       total_tokens=num_prompt + self.tracker.num_generated,
                       prompt_tokens_details={"cached_tokens": cached})


class ClientGone(Exception):
    """The client disconnected before the answer was ready; its engine request was aborted."""


def _reason(sample: CompletionOutput) -> str | None:
    return None if sample.finish_reason is None else sample.finish_reason.value


def engine_stream(engine: ServingEngine, job: Job) -> AsyncIterator[RequestOutput]:
    p = job.prepared
    return engine.generate(p.prompt_ids, p.params, priority=p.priority, request_id=job.request_id,
                           adapter_id=job.adapter_id)


def _engine_error(exc: Exception) -> APIError:
    """The engine refused the request (ValueError names why) or is shutting down."""
    if isinstance(exc, ValueError):
        return APIError(400, f"request rejected by the engine: {exc}", code="invalid_value")
    if isinstance(exc, RuntimeError) and "shut down" in str(exc):
        return APIError(503, "server is shutting down", type=OVERLOADED, headers={"Retry-After": "1"})
    return APIError(500, f"engine error: {type(exc).__name__}", type=SERVER)


async def until_disconnect(work: Awaitable[T], job: Job, disconnected: Callable[[], Awaitable[None]]) -> T:
    """Await ``work``; if the client goes first, cancel it and raise ``ClientGone``."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            raise ClientGone(job.request_id)
        try:
            return task.result()
        except (ValueError, RuntimeError) as exc:
            raise _engine_error(exc) from exc
    finally:
        for t in (task, watch):
            t.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)


async def collect(engine: ServingEngine, job: Job, disconnected: Callable[[], Awaitable[None]]
                  ) -> RequestOutput:
    """Run to completion; abort and raise ``ClientGone`` as soon as ``disconnected()`` returns."""

    async def drain() -> RequestOutput:
        final = None
        async for out in engine_stream(engine, job):
            job.tracker.on_output(out)
            final = out
        if final is None:
            raise APIError(500, "engine returned no output", type=SERVER)
        return final

    outcome = "error"
    try:
        final = await until_disconnect(drain(), job, disconnected)
        outcome = "ok"
        return final
    except ClientGone:
        outcome = "disconnected"
        raise
    finally:
        if outcome != "ok":
            engine.abort(job.request_id)
        job.tracker.done(outcome)


async def start_stream(engine: ServingEngine, job: Job, disconnected: Callable[[], Awaitable[None]]
                       ) -> tuple[AsyncIterator[RequestOutput], RequestOutput]:
    """Wait for the engine's first output, so a rejected request still gets a proper HTTP error.

    On any failure the engine request is aborted and the tracker closed before the error propagates.
    """
    outputs = engine_stream(engine, job)
    try:
        first = await until_disconnect(anext(outputs), job, disconnected)
    except BaseException as exc:
        engine.abort(job.request_id)
        job.tracker.done("disconnected" if isinstance(exc, ClientGone) else "error")
        await outputs.aclose()
        raise
    return outputs, first


def completion_body(job: Job, final: RequestOutput) -> dict:
    choices = [s.CompletionChoice(index=o.index, text=o.text, finish_reason=_reason(o)) for o in final.outputs]
    return s.CompletionResponse(id=job.request_id, created=job.created, model=job.model, choices=choices,
                                usage=job.usage(final)).model_dump()


def chat_body(job: Job, final: RequestOutput) -> dict:
    choices = [s.ChatChoice(index=o.index, message=s.AssistantMessage(content=o.text), finish_reason=_reason(o))
               for o in final.outputs]
    return s.ChatCompletionResponse(id=job.request_id, created=job.created, model=job.model, choices=choices,
                                    usage=job.usage(final)).model_dump()


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _chunk(job: Job, index: int, text: str | None, reason: str | None, role: bool = False) -> dict:
    if not job.chat:
        choice = s.CompletionChoice(index=index, text=text or "", finish_reason=reason)
        return s.CompletionResponse(id=job.request_id, created=job.created, model=job.model,
                                    choices=[choice]).model_dump(exclude={"usage"})
    delta = s.ChatDelta(role="assistant" if role else None, content=text)
    choice = s.ChatChunkChoice(index=index, delta=delta, finish_reason=reason)
    body = s.ChatCompletionChunk(id=job.request_id, created=job.created, model=job.model, choices=[choice])
    data = body.model_dump(exclude={"usage"})
    data["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
    return data


def _usage_chunk(job: Job, final: RequestOutput | None) -> dict:
    data = _chunk(job, 0, None, None)
    data["choices"] = []
    data["usage"] = job.usage(final).model_dump()
    return data


async def stream(engine: ServingEngine, job: Job, outputs: AsyncIterator[RequestOutput],
                 first: RequestOutput) -> AsyncIterator[str]:
    """SSE events for one request, ending with ``data: [DONE]``; an engine error becomes an error event.

    Cancelling the iteration (Starlette does when the client disconnects) aborts the engine request.
    """
    finished: set[int] = set()
    final: RequestOutput | None = None
    outcome = "disconnected"
    try:
        if job.chat:
            for index in range(job.prepared.params.n):
                yield _sse(_chunk(job, index, "", None, role=True))
        async for out in chain(first, outputs):
            job.tracker.on_output(out)
            final = out
            for sample in out.outputs:
                if sample.index in finished:
                    continue
                reason = _reason(sample)
                if sample.delta_text or reason:
                    yield _sse(_chunk(job, sample.index, sample.delta_text, reason))
                if reason:
                    finished.add(sample.index)
        if job.include_usage:
            yield _sse(_usage_chunk(job, final))
        outcome = "ok"
        yield DONE
    except Exception as exc:  # noqa: BLE001 - the stream has started: report in-band, never crash
        outcome = "error"
        log.exception("engine failed while streaming %s", job.request_id)
        yield _sse({"error": s.ErrorBody(message=f"engine error: {type(exc).__name__}", type=SERVER).model_dump()})
    finally:
        if outcome != "ok":
            engine.abort(job.request_id)
        job.tracker.done(outcome)
        await outputs.aclose()


async def chain(first: RequestOutput, rest: AsyncIterator[RequestOutput]) -> AsyncIterator[RequestOutput]:
    yield first
    if not first.finished:
        async for out in rest:
            yield out
