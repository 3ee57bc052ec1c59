"""The ONE place HTTP turns exceptions into responses, one renderer per API dialect.

`/api/...` answers `{"error": "<message>", "code": "<code>", "request_id": "<id>"}` with the
class's `http_status` (`strongroom.client` rebuilds the same exception class from `code`).
`/v1/...` answers as Vault does, `{"errors": ["<message>"]}`, with the class's status except
where `V1_OVERRIDES` says otherwise (four entries: locked, unauthenticated, conflict, not found).
Vault's not-found answers also depend on the endpoint (`_v1_not_found`): a deleted or destroyed
version comes back as the envelope the endpoint would have sent, with the version's metadata, and
a PATCH of a missing secret has no body. Statuses are found by walking the exception's MRO, so a
new subclass inherits its parent's mapping. Handlers hold no try/except for domain errors: they
raise, and `handle_exception` (registered once, in `app.py`) answers. Unexpected exceptions are
logged with the request id and answered with a generic 500: never a traceback, never a message
that could carry a secret.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from strongroom import errors, fastjson
from strongroom.core.kv_types import KVVersionMeta
from strongroom.http.kv2_format import envelope, version_meta_json

__all__ = [
    "JSON",
    "NO_STORE",
    "V1_OVERRIDES",
    "V1Override",
    "error_response",
    "handle_exception",
    "json_response",
    "no_content",
]

log = logging.getLogger("strongroom.http")

JSON = "application/json"
#: Secrets must not be cached by browsers or proxies (threats H2).
NO_STORE = {"cache-control": "no-store"}


@dataclass(frozen=True, slots=True)
class V1Override:
    """How the Vault-compatible API answers an error class differently.

    `message` replaces the class's message; `quiet` sends `{"errors": []}` (Vault's not found).
    """

    status: int
    message: str | None = None
    quiet: bool = False


#: The only table besides the classes' own attributes (CONVENTIONS "The error tree, mapped once").
#: Conflict covers its subclasses SecretExists and VersionConflict (a failed check-and-set).
V1_OVERRIDES: dict[type[errors.StrongroomError], V1Override] = {
    errors.VaultLocked: V1Override(503, "Vault is sealed"),
    errors.AuthenticationFailed: V1Override(403, "permission denied"),
    errors.Conflict: V1Override(400),
    errors.NotFound: V1Override(404, quiet=True),
    errors.MountNotFound: V1Override(400),  # Vault: "No secret engine mount at ..."
}

#: Conditions that exist only in HTTP (no class in the error tree): message and code.
_HTTP_ERRORS = {
    404: ("not found", errors.NotFound.code),
    405: ("method not allowed", "method_not_allowed"),
    415: ("request body must be JSON (Content-Type: application/json)", "unsupported_media_type"),
}

#: Endpoints whose answer for a deleted or destroyed version is their own envelope with the
#: version's metadata (route name -> the key that would have held the data; PATCH: none).
_DELETED_KEY = {"kv2_data": "data", "kv2_subkeys": "subkeys"}


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A compact JSON response that is never cached."""
    data = fastjson.dumps(body)
    if headers:
        return Response(data, status, {**NO_STORE, **headers}, JSON)
    return _JSONBytes(data, status)


class _JSONBytes(Response):
    """`json_response` without headers of its own: its header list built directly (Starlette's
    `init_headers` cost ~2 % of a KV read). The same headers as `Response(data, status,
    NO_STORE, JSON)`."""

    media_type = JSON

    def __init__(self, data: bytes, status: int) -> None:
        self.status_code = status
        self.body = data
        self.background = None
        self.raw_headers = [
            (b"cache-control", b"no-store"),
            (b"content-length", str(len(data)).encode("ascii")),
            (b"content-type", b"application/json"),
        ]


def no_content(status: int = 204) -> Response:
    """An answer without a body, still `Content-Type: application/json` (hvac ignores bodies
    of any other type, and Vault sends its 204s so)."""
    return Response(status_code=status, headers=NO_STORE, media_type=JSON)


def _is_v1(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def error_response(
    exc: errors.StrongroomError, path: str, request_id: str | None = None
) -> Response:
    """The response for a Strongroom error on `path`, in that path's dialect."""
    status, message = exc.http_status, exc.message
    if isinstance(exc, errors.IntegrityError):
        message = errors.IntegrityError.default_message
    headers: dict[str, str] = {}
    if isinstance(exc, errors.TooManyAttempts):
        headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
    elif isinstance(exc, errors.PayloadTooLarge):
        # The rest of an oversized body is not read: the connection closes after the answer
        # (lingering a bounded while, `http.protocol`), instead of parsing it to its end.
        headers["connection"] = "close"
    if _is_v1(path):
        for cls in type(exc).__mro__:
            override = V1_OVERRIDES.get(cls)
            if override is not None:
                status, message = override.status, override.message or message
                if override.quiet:
                    return json_response({"errors": []}, status, headers)
                break
        return json_response({"errors": [message]}, status, headers)
    body: dict[str, object] = {"error": message, "code": exc.code}
    if request_id:
        body["request_id"] = request_id
    return json_response(body, status, headers)


#: Vault's 400 message for a failed login, by route name.
_LOGINS = {
    "v1_userpass": "invalid username or password",
    "v1_approle_login": "invalid role or secret ID",
}


def _route(request: Request) -> str | None:
    return getattr(request.scope.get("route"), "name", None)


def _v1_not_found(exc: errors.NotFound, request: Request) -> Response | None:
    """Vault's endpoint-specific 404s (None: the table's `{"errors": []}`)."""
    name = getattr(request.scope.get("route"), "name", None)
    patch = request.method == "PATCH"
    meta = exc.details if isinstance(exc, errors.VersionDeleted) else None
    if isinstance(meta, KVVersionMeta) and name in _DELETED_KEY:
        data = version_meta_json(meta)
        body = data if patch else {_DELETED_KEY[name]: None, "metadata": data}
        rid = request.scope.get("strongroom.request_id")
        return json_response(envelope(body, request_id=rid), 404)
    if patch and name == "kv2_data" and not isinstance(exc, errors.VersionDeleted):
        return no_content(404)  # Vault: a PATCH of a missing secret is 404 with an empty body
    return None


def _plain(
    status: int,
    message: str,
    path: str,
    request_id: str | None,
    headers: dict[str, str] | None = None,
) -> Response:
    if _is_v1(path):
        if status == 404:
            rest = path.removeprefix("/v1/")[:200]
            message = f'no handler for route "{rest}". route entry not found.'
        return json_response({"errors": [message]}, status, headers)
    code = _HTTP_ERRORS.get(
        status, ("", errors.StrongroomError.code if status >= 500 else errors.InvalidInput.code)
    )[1]
    body: dict[str, object] = {"error": message, "code": code}
    if request_id:
        body["request_id"] = request_id
    return json_response(body, status, headers)


async def handle_exception(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for every exception (registered once in `app.py`)."""
    path = request.url.path
    request_id = request.scope.get("strongroom.request_id")
    if isinstance(exc, errors.StrongroomError):
        if exc.http_status >= 500 and not isinstance(exc, errors.StorageUnavailable):
            log.error("request %s failed: %s", request_id, exc.code)
        if isinstance(exc, errors.AuthenticationFailed) and _route(request) in _LOGINS:
            # Vault: a failed login is 400, not the 403 of a bad token. A TOTP refusal says
            # so (it comes only after the right password, as on /api/auth/login).
            said = str(exc) if isinstance(exc, errors.SecondFactorFailed) else None
            return json_response({"errors": [said or _LOGINS[_route(request) or ""]]}, 400)
        if isinstance(exc, errors.NotFound) and _is_v1(path):
            special = _v1_not_found(exc, request)
            if special is not None:
                return special
        return error_response(exc, path, request_id)
    if isinstance(exc, HTTPException):
        message = _HTTP_ERRORS.get(exc.status_code, ("request refused", ""))[0]
        # Starlette's 405 carries `Allow` (RFC 9110 15.5.6 requires it): keep its headers.
        return _plain(exc.status_code, message, path, request_id, dict(exc.headers or {}))
    log.error("request %s failed unexpectedly: %s", request_id, type(exc).__name__, exc_info=exc)
    return _plain(500, "internal error", path, request_id)
