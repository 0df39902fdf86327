"""A scripted OpenAI-compatible server for HTTP-client tests (plumbing fake, not the engine).

It streams a scripted answer chunk by chunk (``delay_s`` apart) and records, per request, whether the
client closed the stream before the end (the abort path of ``codeloop serve``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@dataclass
class FakeEngine:
    answers: dict[str, str] = field(default_factory=dict)
    """Last line of the prompt (stripped) -> completion text; ``default`` otherwise."""
    answers_after: dict[str, str] = field(default_factory=dict)
    """Last non-blank line before the cursor's line (stripped) -> completion text; looked up before ``answers``
    (two cursors on blank lines of different functions get different greedy answers)."""
    choices: list[str] = field(default_factory=list)
    """The texts of a sampled request's samples (temperature > 0 or n > 1), by index, padded with the single
    (greedy) answer; a ``greedy_first`` request's choice 0 is the greedy answer and the samples follow it, as
    the engine does (a staged checked suggestion: the greedy request, then the others as samples)."""
    default: str = "value\n"
    chat_answer: str = "Use a list comprehension: [x * x for x in xs]"
    delay_s: float = 0.02
    chunk_chars: int = 3
    bodies: list[dict] = field(default_factory=list)
    num_aborted: int = 0
    num_finished: int = 0
    owned_by: str | None = "codeloop"
    """``owned_by`` of GET /v1/models (None: no such route, as some servers); "codeloop" plays codeloop serve."""
    rejects: frozenset[str] = frozenset()
    """Request fields answered with a 400 (another OpenAI-compatible server: e.g. ``priority``, ``suffix``)."""
    api_key: str | None = None
    """When set, every route wants ``Authorization: Bearer <api_key>`` (401 otherwise)."""
    error_after: int | None = None
    """Send this many chunks, then a ``{"error": ...}`` event and end the stream (an engine failing mid-way)."""
    headers: list[dict] = field(default_factory=list)
    max_model_len: int | None = None
    """``max_model_len`` of the /v1/models card (None: left out, as llama-server does)."""
    tokenize: bool = False
    """Serve vLLM's ``POST /tokenize`` (one token per 4 characters, rounded up); False: 404, as most servers."""
    tokenized: list[str] = field(default_factory=list)
    """The prompts ``POST /tokenize`` was asked (also when it answered 404)."""

    def text_for(self, body: dict) -> str:
        if "messages" in body:
            return self.chat_answer
        prompt = str(body.get("prompt", ""))
        head, middle, spm_prefix = prompt.partition("<|fim_middle|>")
        prompt = spm_prefix if middle and spm_prefix else head.split("<|fim_suffix|>")[0]  # spm: the prefix ends it
        *before, last = prompt.split("\n")
        above = next((line.strip() for line in reversed(before) if line.strip()), None)
        if above in self.answers_after:
            return self.answers_after[above]
        return self.answers.get(last.strip(), self.default)

    def texts_for(self, body: dict) -> list[str]:
        n = int(body.get("n") or 1)
        single = self.text_for(body)
        if n == 1 and not float(body.get("temperature") or 0) > 0:
            return [single]
        samples = [self.choices[i] if i < len(self.choices) else single for i in range(n)]
        return [single, *samples[: n - 1]] if body.get("greedy_first") else samples

    def app(self) -> FastAPI:
        app = FastAPI()

        async def stream(body: dict, chat: bool):
            texts = self.texts_for(body)
            done = False
            try:
                for i in range(0, max(len(t) for t in texts), self.chunk_chars):
                    if self.error_after is not None and i // self.chunk_chars >= self.error_after:
                        yield f"data: {json.dumps({'error': {'message': 'engine error: RuntimeError', 'type': 'server_error'}})}\n\n"
                        return
                    await asyncio.sleep(self.delay_s)
                    for index, text in enumerate(texts):
                        piece = text[i : i + self.chunk_chars]
                        if not piece:
                            continue
                        last = i + self.chunk_chars >= len(text)
                        choice = ({"index": index, "delta": {"content": piece}} if chat
                                  else {"index": index, "text": piece, "finish_reason": "stop" if last else None})
                        yield f"data: {json.dumps({'choices': [choice]})}\n\n"
                usage = {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105,
                         "prompt_tokens_details": {"cached_tokens": 64}}
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"
                done = True
            finally:
                if done:
                    self.num_finished += 1
                else:
                    self.num_aborted += 1

        def refused(request: Request, body: dict | None = None) -> JSONResponse | None:
            self.headers.append(dict(request.headers))
            if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
                return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
            bad = sorted(self.rejects & set(body or {}))
            if bad:
                return JSONResponse({"error": {"message": f"unknown field {bad[0]!r}"}}, status_code=400)
            return None

        @app.get("/v1/models")
        async def models(request: Request):
            if self.owned_by is None:
                return JSONResponse({"detail": "Not Found"}, status_code=404)
            card = {"id": "m", "object": "model", "owned_by": self.owned_by}
            if self.max_model_len is not None:
                card["max_model_len"] = self.max_model_len
            return refused(request) or {"object": "list", "data": [card]}

        @app.post("/tokenize")
        async def tokenize(request: Request):
            body = await request.json()
            self.tokenized.append(body.get("prompt"))
            if not self.tokenize:
                return JSONResponse({"detail": "Not Found"}, status_code=404)
            count = -(-len(body["prompt"]) // 4)
            return refused(request) or {"tokens": list(range(count)), "count": count,
                                        "max_model_len": self.max_model_len}

        @app.post("/v1/completions")
        async def completions(request: Request):
            body = await request.json()
            self.bodies.append(body)
            return refused(request, body) or StreamingResponse(stream(body, False), media_type="text/event-stream")

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            self.bodies.append(body)
            return refused(request, body) or StreamingResponse(stream(body, True), media_type="text/event-stream")

        return app


class FakeServer:
    """Runs a FakeEngine's app with uvicorn in a thread on a free port."""

    def __init__(self, engine: FakeEngine) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.engine = engine
        self._server = uvicorn.Server(uvicorn.Config(engine.app(), host="127.0.0.1", port=self.port,
                                                     log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(5)
