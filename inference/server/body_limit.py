"""ASGI middleware: refuse request bodies over a size limit with 413, before reading them in full."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inference.server.errors import APIError, error_response


class BodyLimitMiddleware:
    """A declared ``Content-Length`` over the limit is refused at once; a body sent without one
    (chunked) is counted as it arrives and refused when it crosses the limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self) -> APIError:
        return APIError(413, f"request body is larger than {self.max_body_bytes} bytes",
                        code="request_too_large")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_body_bytes
            except ValueError:
                too_large = False  # h11/httptools reject malformed lengths before we see them
            if too_large:
                await error_response(self._too_large())(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI re-raises HTTPException from body reading; the error handlers shape it.
                    raise HTTPException(413, self._too_large().body.message)
            return message

        await self.app(scope, limited_receive, send)
