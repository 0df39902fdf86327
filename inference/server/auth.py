"""Bearer-token check for ``--api-key`` (constant-time comparison)."""

from __future__ import annotations

import hmac

from inference.server.errors import AUTHENTICATION, APIError

_SCHEME = "bearer "


def check_bearer(authorization: str | None, api_key: str | None) -> None:
    """Raise a 401 ``APIError`` unless auth is off or ``authorization`` is ``Bearer <api_key>``.

    The comparison is ``hmac.compare_digest`` over bytes, so timing does not reveal how much of a
    guessed key was right.
    """
    if api_key is None:
        return
    if not authorization or not authorization[: len(_SCHEME)].lower() == _SCHEME:
        raise APIError(
            401, "missing bearer token: send 'Authorization: Bearer <api key>'",
            type=AUTHENTICATION, code="invalid_api_key",
        )
    token = authorization[len(_SCHEME):].strip().encode()
    if not hmac.compare_digest(token, api_key.encode()):
        raise APIError(401, "invalid api key", type=AUTHENTICATION, code="invalid_api_key")
