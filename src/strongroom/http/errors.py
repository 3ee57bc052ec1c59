"""The ONE place HTTP turns exceptions into responses.

`/api/...` answers `{"error": "<message>", "code": "<code>"}` with the class's `http_status`
(`strongroom.client` rebuilds the same exception class from `code`). `/v1/...` answers as Vault
does, `{"errors": ["<message>"]}`, with the four overrides in `V1_OVERRIDES`. The status is found by
walking the exception's MRO, so a new subclass inherits its parent's mapping. Unexpected
exceptions are logged with the request id and answered with a generic 500: never a traceback,
never a message that could carry a secret.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from strongroom import errors

__all__ = [
    "NO_STORE",
    "V1_OVERRIDES",
    "V1Override",
    "error_response",
    "handle_exception",
    "json_response",
]

log = logging.getLogger("strongroom.http")

#: Secrets must not be cached by browsers or proxies (threats H2).
NO_STORE = {"cache-control": "no-store"}


@dataclass(frozen=True, slots=True)
class V1Override:
    """How the Vault-compatible API answers an error class differently."""

    status: int
    message: str | None = None


#: The only table besides the classes' own attributes (CONVENTIONS "The error tree, mapped once").
V1_OVERRIDES: dict[type[errors.StrongroomError], V1Override] = {
    errors.VaultLocked: V1Override(503, "Vault is sealed"),
    errors.AuthenticationFailed: V1Override(403, "permission denied"),
    errors.Conflict: V1Override(400),
}

#: Conditions that exist only in HTTP (no class in the error tree): message and code.
_HTTP_ERRORS = {
    404: ("not found", errors.NotFound.code),
    405: ("method not allowed", "method_not_allowed"),
    415: ("request body must be JSON (Content-Type: application/json)", "unsupported_media_type"),
    422: ("invalid request", "invalid_input"),
}


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A compact JSON response that is never cached."""
    try:
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate somewhere: escaped, still valid JSON
        data = json.dumps(body, separators=(",", ":")).encode("ascii")
    return Response(data, status, {**NO_STORE, **(headers or {})}, "application/json")


def _is_v1(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def error_response(
    exc: errors.StrongroomError, path: str, request_id: str | None = None
) -> Response:
    """The response for a Strongroom error on `path`."""
    status, message = exc.http_status, exc.message
    if isinstance(exc, errors.IntegrityError):
        message = errors.IntegrityError.default_message
    headers: dict[str, str] = {}
    if isinstance(exc, errors.TooManyAttempts):
        headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
    if _is_v1(path):
        for cls in type(exc).__mro__:
            override = V1_OVERRIDES.get(cls)
            if override is not None:
                status, message = override.status, override.message or message
                break
        return json_response({"errors": [message]}, status, headers)
    body: dict[str, object] = {"error": message, "code": exc.code}
    if request_id:
        body["request_id"] = request_id
    return json_response(body, status, headers)


def _plain(status: int, message: str, path: str, request_id: str | None) -> Response:
    if _is_v1(path):
        return json_response({"errors": [message]}, status)
    code = _HTTP_ERRORS.get(
        status, ("", errors.StrongroomError.code if status >= 500 else errors.InvalidInput.code)
    )[1]
    body: dict[str, object] = {"error": message, "code": code}
    if request_id:
        body["request_id"] = request_id
    return json_response(body, status)


async def handle_exception(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for every exception (registered once in `app.py`)."""
    path = request.url.path
    request_id = request.scope.get("strongroom.request_id")
    if isinstance(exc, errors.StrongroomError):
        if exc.http_status >= 500 and not isinstance(exc, errors.StorageUnavailable):
            log.error("request %s failed: %s", request_id, exc.code)
        return error_response(exc, path, request_id)
    if isinstance(exc, HTTPException):
        message = _HTTP_ERRORS.get(exc.status_code, ("request refused", ""))[0]
        return _plain(exc.status_code, message, path, request_id)
    validation = _validation_message(exc)
    if validation is not None:
        return _plain(422, validation, path, request_id)
    log.error("request %s failed unexpectedly: %s", request_id, type(exc).__name__, exc_info=exc)
    return _plain(500, "internal error", path, request_id)


def _validation_message(exc: Exception) -> str | None:
    """A one-line summary of a FastAPI/pydantic validation error (routes added by others)."""
    if type(exc).__name__ not in ("RequestValidationError", "ValidationError"):
        return None
    details = getattr(exc, "errors", None)
    items = details() if callable(details) else []
    if not items:
        return "invalid request"
    first = items[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"invalid {where or 'request'}: {first.get('msg', 'invalid value')}"
