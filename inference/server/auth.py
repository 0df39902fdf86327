"""Bearer-token check for ``--api-key`` (constant-time comparison)."""

from __future__ import annotations

import hmac

from inference.server.errors import AUTHENTICATION, APIError

_SCHEME = "bearer "


def is_authorised(authorization: str | None, api_key: str) -> bool:
    """Whether ``authorization`` is ``Bearer <api_key>`` (constant-time comparison)."""
    if not authorization or authorization[: len(_SCHEME)].lower() != _SCHEME:
        return False
    return hmac.compare_digest(authorization[len(_SCHEME):].strip().encode(), api_key.encode())


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
    if not is_authorised(authorization, api_key):
        raise APIError(401, "invalid api key", type=AUTHENTICATION, code="invalid_api_key")
