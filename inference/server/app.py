"""The OpenAI-compatible HTTP app over one engine: completions (FIM via ``suffix``), chat, llama.cpp's
``/infill``, models, vLLM's ``/tokenize``, health and Prometheus metrics.

Invariant: every admitted request is counted in ``AppState.in_flight`` until its engine request has
finished or been aborted; at most ``max_pending_requests`` are admitted at once (else 503 + Retry-After).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from inference.request import Priority
from inference.server import generation, infill, infill_reply, prompts
from inference.server import schemas as s
from inference.server.auth import check_bearer, is_authorised
from inference.server.backend import ServingEngine
from inference.server.body_limit import BodyLimitMiddleware
from inference.server.config import ServerConfig
from inference.server.errors import OVERLOADED, APIError, install_error_handlers
from inference.server.metrics import ServerMetrics

log = logging.getLogger(__name__)
T = TypeVar("T")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass
class AppState:
    """Per-app state: the engine, settings, metrics and the ids of admitted requests."""

    engine: ServingEngine
    config: ServerConfig
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    in_flight: set[str] = field(default_factory=set)
    closing: bool = False
    last_request_s: float = 0.0
    """time.monotonic() of the latest admitted request (idle shutdown)."""
    started_s: int = field(default_factory=s.now_s)
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, request_id: str) -> None:
        if self.closing:
            raise APIError(503, "server is shutting down", type=OVERLOADED,
                           headers={"Retry-After": str(self.config.retry_after_s)})
        if len(self.in_flight) >= self.config.max_pending_requests:
            raise APIError(503, f"server is busy ({len(self.in_flight)} requests in flight); retry shortly",
                           type=OVERLOADED, code="queue_full",
                           headers={"Retry-After": str(self.config.retry_after_s)})
        self.in_flight.add(request_id)
        self.last_request_s = time.monotonic()

    def abort_all(self) -> None:
        for request_id in list(self.in_flight):
            self.engine.abort(request_id)

    def tokenize(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args, tokenizer)`` under the tokenizer lock (HF fast tokenizers are not thread-safe)."""
        with self.tokenizer_lock:
            return fn(*args, self.engine.tokenizer)


def create_app(engine: ServingEngine, config: ServerConfig) -> FastAPI:
    """Build the app; the engine is shut down with it (lifespan end, e.g. after SIGTERM)."""
    state = AppState(engine, config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.closing = True
        state.abort_all()
        await run_in_threadpool(engine.shutdown)

    app = FastAPI(title="codeloop", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.codeloop = state
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=config.max_body_bytes)

    def authorized(authorization: str | None = Header(default=None)) -> None:
        check_bearer(authorization, config.api_key)

    secured = [Depends(authorized)]

    @app.get("/health")
    async def health(authorization: str | None = Header(default=None)) -> JSONResponse:
        body: dict = {"status": "closing" if state.closing else "ok"}
        if config.api_key is None or is_authorised(authorization, config.api_key):
            # what runs here (model, pid, load) is for key holders only
            body |= {"model": config.model_name, "pid": os.getpid(), "in_flight": len(state.in_flight)}
        if state.closing:  # load balancers and the shared-server launcher look at the status code
            return JSONResponse(body, status_code=503, headers={"Retry-After": str(config.retry_after_s)})
        return JSONResponse(body)

    @app.get("/v1/models", dependencies=secured)
    async def models() -> dict:
        roots = engine.adapter_roots()
        cards = [s.ModelCard(id=config.model_name, created=state.started_s, max_model_len=engine.max_model_len)]
        cards += [s.ModelCard(id=n, created=state.started_s, max_model_len=engine.max_model_len,
                              parent=config.model_name, root=roots.get(n)) for n in engine.adapters()]
        return s.ModelList(data=cards).model_dump(exclude_none=True)

    @app.post("/tokenize", dependencies=secured)
    async def tokenize(body: s.TokenizeRequest) -> dict:
        prompts.check_model(body.model, config, engine.adapters())
        ids = await run_in_threadpool(state.tokenize, prompts.tokenize_ids, body)
        return s.TokenizeResponse(tokens=ids, count=len(ids), max_model_len=engine.max_model_len).model_dump()

    @app.get("/metrics", dependencies=secured)
    async def metrics() -> Response:
        state.metrics.refresh(engine.snapshot(), engine.drain_batch_sizes())
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/v1/completions", dependencies=secured)
    async def completions(body: s.CompletionRequest, request: Request) -> Response:
        return await _serve(state, request, body, partial(prompts.completion_prompt_ids, order=config.fim_order),
                            chat=False)

    @app.post("/v1/chat/completions", dependencies=secured)
    async def chat_completions(body: s.ChatCompletionRequest, request: Request) -> Response:
        return await _serve(state, request, body, prompts.chat_prompt_ids, chat=True)

    @app.post("/infill", dependencies=secured)
    async def infill_route(body: infill.InfillRequest, request: Request) -> Response:
        return await _serve_infill(state, request, body)

    return app


async def _serve(state: AppState, request: Request, body: s.CompletionRequest | s.ChatCompletionRequest,
                 to_ids: Callable[..., list[int]], *, chat: bool) -> Response:
    adapter_id = prompts.check_model(body.model, state.config, state.engine.adapters())
    request_id = s.new_id("chatcmpl" if chat else "cmpl")
    state.admit(request_id)
    tracker = state.metrics.track("chat" if chat else "completions")
    handed_over = False
    try:
        prompt_ids = await run_in_threadpool(state.tokenize, to_ids, body)
        prepared = prompts.prepare(body, prompt_ids, state.config, state.engine.max_model_len)
        tracker.admitted(len(prompt_ids))
        job = generation.Job(request_id, adapter_id or state.config.model_name, prepared, tracker, chat,
                             body.include_usage, adapter_id)
        if body.stream:
            outputs, first = await generation.start_stream(state.engine, job, lambda: _disconnected(request))
            events = _released(state, generation.stream(state.engine, job, outputs, first), request_id)
            handed_over = True
            return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
        final = await generation.collect(state.engine, job, lambda: _disconnected(request))
        return JSONResponse((generation.chat_body if chat else generation.completion_body)(job, final))
    except generation.ClientGone:
        return Response(status_code=499)
    finally:
        if not handed_over:
            tracker.done("rejected")  # no-op when collect already closed it
            state.in_flight.discard(request_id)


async def _serve_infill(state: AppState, request: Request, body: infill.InfillRequest) -> Response:
    """llama.cpp's /infill over the same engine (reply in llama.cpp's format, see ``infill_reply``).

    ``model`` is not checked: llama-server ignores it on /infill, and llama.vscode sends its own name for it.
    """
    request_id = s.new_id("infill")
    state.admit(request_id)
    tracker = state.metrics.track("infill")
    handed_over = False
    try:
        max_model_len = state.engine.max_model_len
        max_tokens = infill.max_new_tokens(body, state.config, max_model_len)
        laid_out = await run_in_threadpool(state.tokenize, partial(infill.infill_prompt, order=state.config.fim_order),
                                           body, max_model_len - max_tokens)
        prepared = prompts.PreparedRequest(laid_out.ids, infill.sampling_params(body, state.config, max_tokens),
                                           Priority.INTERACTIVE)
        tracker.admitted(len(laid_out.ids))
        job = generation.Job(request_id, state.config.model_name, prepared, tracker, chat=False)
        run = infill_reply.InfillRun(body, job, laid_out.truncated, max_model_len,
                                     frozenset(state.engine.tokenizer.all_special_ids))
        if body.stream:
            outputs, first = await generation.start_stream(state.engine, job, lambda: _disconnected(request))
            events = _released(state, infill_reply.stream(state.engine, run, outputs, first), request_id)
            handed_over = True
            return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
        await infill_reply.run(state.engine, run, lambda: _disconnected(request))
        return JSONResponse(run.reply())
    except generation.ClientGone:
        return Response(status_code=499)
    finally:
        if not handed_over:
            tracker.done("rejected")
            state.in_flight.discard(request_id)


async def _released(state: AppState, events: AsyncIterator[str], request_id: str) -> AsyncIterator[str]:
    try:
        async for event in events:
            yield event
    finally:
        state.in_flight.discard(request_id)  # before any await: a cancelled scope may stop us there
        await events.aclose()  # type: ignore[attr-defined]


async def _disconnected(request: Request) -> None:
    """Return when the client has gone away (the body has been read, so only disconnects arrive)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
        await asyncio.sleep(0.05)
