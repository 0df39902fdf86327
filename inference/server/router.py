"""The router in front of ``serve --replicas N``: every request goes to its session's replica, so one
developer's keystrokes keep hitting the replica whose prefix cache holds their document.

Session key: the ``X-Codeloop-Session`` header (an editor sends its document or repository), else the
request's OpenAI ``user`` field, else the head of its prompt (``inference.affinity``). A replica that does
not answer is marked down and its sessions move to the next replica until Ray has replaced it.
``/metrics`` adds up the replicas' metrics; ``/health`` is 200 while any replica is up.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

SESSION_HEADER = "x-codeloop-session"
REPLICA_HEADER = "x-codeloop-replica"
FORWARDED_HEADERS = ("authorization", "content-type", "accept")


def session_key(headers: Any, body: dict[str, Any], path: str) -> str:
    """What decides a request's replica (see the module docstring)."""
    if headers.get(SESSION_HEADER):
        return headers[SESSION_HEADER]
    if body.get("user"):
        return str(body["user"])
    if "prompt" in body:
        return str(body["prompt"])
    if body.get("messages"):
        return json.dumps(body["messages"], ensure_ascii=False)
    return path


def aggregate_metrics(texts: list[str]) -> str:
    """One Prometheus text from the replicas': samples with the same name and labels are added up (counts,
    sums, histogram buckets, gauges of amounts), except ratios (``*_rate``), which are averaged."""
    from prometheus_client.parser import text_string_to_metric_families

    families: dict[str, tuple[str, str, dict[tuple, list[float]]]] = {}
    for text in texts:
        for fam in text_string_to_metric_families(text):
            _, _, samples = families.setdefault(fam.name, (fam.type, fam.documentation, {}))
            for s in fam.samples:
                samples.setdefault((s.name, tuple(sorted(s.labels.items()))), []).append(s.value)
    lines = []
    for name, (kind, doc, samples) in families.items():
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
        for (sample, labels), values in samples.items():
            value = sum(values) / len(values) if name.endswith("_rate") else sum(values)
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{sample}{{{label_text}}} {value}" if label_text else f"{sample} {value}")
    return "\n".join(lines) + "\n"


def create_router(replicas: Any) -> FastAPI:
    """The app in front of ``replicas`` (a ``ReplicaSet``: ``pick(key)``, ``mark_down(i)``, ``urls``)."""
    client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=5.0))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(title="codeloop router", lifespan=lifespan)

    @app.get("/health")
    async def health() -> Response:
        up = sum(u is not None for u in replicas.urls)
        return JSONResponse({"replicas": len(replicas.urls), "replicas_up": up}, status_code=200 if up else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        texts = []
        for i, url in enumerate(list(replicas.urls)):
            if url is None:
                continue
            try:
                reply = await client.get(f"{url}/metrics", headers=_forwarded(request))
            except httpx.TransportError:
                replicas.mark_down(i)
                continue
            texts.append(reply.text)
        up = f"# HELP codeloop_replicas_up Replicas answering\n# TYPE codeloop_replicas_up gauge\n" \
             f"codeloop_replicas_up {len(texts)}\n"
        return Response(aggregate_metrics(texts) + up, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def proxy(path: str, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        key = session_key(request.headers, body if isinstance(body, dict) else {}, path)
        for _ in range(len(replicas.urls)):
            picked = replicas.pick(key)
            if picked is None:
                break
            index, url = picked
            upstream = client.build_request(request.method, f"{url}/{path}", content=raw,
                                            headers=_forwarded(request), params=request.query_params)
            try:
                reply = await client.send(upstream, stream=True)
            except httpx.TransportError:
                replicas.mark_down(index)
                continue
            headers = {k: v for k, v in reply.headers.items() if k.lower() in ("content-type", "cache-control")}
            headers[REPLICA_HEADER] = str(index)
            return StreamingResponse(reply.aiter_raw(), status_code=reply.status_code, headers=headers,
                                     background=BackgroundTask(reply.aclose))
        return JSONResponse({"error": {"message": "no replica is up", "type": "unavailable"}}, status_code=503)

    return app


def _forwarded(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
