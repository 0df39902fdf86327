"""OpenAI-style errors: ``{"error": {"message", "type", "param", "code"}}`` with the right status.

Every failure leaves the server through here, so clients (the ``openai`` package included) always get
JSON they can parse: validation errors become 400 (OpenAI's choice, not FastAPI's 422).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from inference.server.schemas import ErrorBody, ErrorResponse

log = logging.getLogger(__name__)

INVALID_REQUEST = "invalid_request_error"
AUTHENTICATION = "authentication_error"
NOT_FOUND = "not_found_error"
OVERLOADED = "overloaded_error"
SERVER = "server_error"


class APIError(Exception):
    """An error answered to the client as is; ``headers`` carries e.g. Retry-After."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(message=message, type=type, param=param, code=code)
        self.headers = headers or {}


def error_response(error: APIError) -> JSONResponse:
    content = ErrorResponse(error=error.body).model_dump()
    return JSONResponse(content, status_code=error.status, headers=error.headers)


def validation_error(exc: RequestValidationError) -> APIError:
    """First pydantic error as a 400 naming the field (``messages.0.role``)."""
    errors = exc.errors()
    if not errors:
        return APIError(400, "invalid request body")
    # a union tries each member: our own check's error (a lone surrogate) says more than "not a list"
    first = next((e for e in errors if e.get("type") == "value_error"), errors[0])
    loc = [str(part) for part in first.get("loc", ()) if part != "body" and not _is_type_tag(part)]
    if first.get("type") == "json_invalid":
        return APIError(400, f"request body is not valid JSON: {first.get('ctx', {}).get('error', '')}".rstrip(": "),
                        code="invalid_json")
    if not loc and first.get("type") in ("model_attributes_type", "dict_type", "missing"):
        return APIError(400, "request body must be a JSON object", code="invalid_json")
    param = ".".join(loc) or None
    message = first.get("msg", "invalid value")
    if first.get("type") == "missing":
        return APIError(400, f"missing required field {param!r}", param=param, code="missing_field")
    return APIError(400, f"invalid value for {param!r}: {message}", param=param, code="invalid_value")


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


def _is_type_tag(part: object) -> bool:
    """pydantic puts the union member tried into ``loc`` (``prompt.list[int]``); drop it."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or "-" in part)


_STATUS_TYPES = {401: AUTHENTICATION, 404: NOT_FOUND, 503: OVERLOADED}


def install_error_handlers(app: FastAPI) -> None:
    """Route FastAPI's own errors (404 route, 405, 422, crashes) through the OpenAI shape."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = _STATUS_TYPES.get(exc.status_code, INVALID_REQUEST)
        return error_response(APIError(exc.status_code, str(exc.detail), type=error_type))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error while serving a request")
        return error_response(APIError(500, f"internal error: {type(exc).__name__}", type=SERVER))
