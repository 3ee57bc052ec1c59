"""Request plumbing of the Vault-compatible API: the token, JSON bodies, and errors in Vault's
shape.

On `/v1/` the token comes in `X-Vault-Token` (or `Authorization: Bearer`), every
authentication failure is 403 `permission denied` (hvac's `is_authenticated()` depends on it),
a locked vault answers 503 before anything else, a missing thing is 404 `{"errors": []}`, and
every body is sent with `Content-Type: application/json` exactly (hvac ignores the body
otherwise). Statuses come from the error classes through `http.errors` (its /v1 override
table); authorisation is `ServerState.require`. Nothing here logs or returns a token.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from strongroom import errors
from strongroom.http import deps
from strongroom.http.errors import NO_STORE, error_response, json_response
from strongroom.http.state import Caller, ServerState

__all__ = [
    "JSON",
    "json_body",
    "no_content",
    "parse_int",
    "parse_versions",
    "require_merge_patch",
    "state_of",
    "vault_caller",
    "vault_error",
]

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


def state_of(request: Request) -> ServerState:
    """The ServerState of the app serving `request`."""
    state: ServerState = request.app.state.strongroom
    return state


def no_content() -> Response:
    """Vault's 204: no body, still `Content-Type: application/json`."""
    return Response(status_code=204, headers=NO_STORE, media_type=JSON)


def vault_error(exc: errors.StrongroomError, request: Request) -> Response:
    """Vault's error body for `exc`: not found is 404 `{"errors": []}`, the rest as
    `http.errors` maps it for `/v1/`."""
    if isinstance(exc, errors.NotFound):
        return json_response({"errors": []}, 404)
    return error_response(exc, request.url.path, deps.request_id(request.scope))


def _token(request: Request) -> str | None:
    token = request.headers.get("x-vault-token", "").strip()
    return token or deps.bearer_token(request)


async def vault_caller(request: Request, st: ServerState, *, check_lock: bool = True) -> Caller:
    """The verified caller of a `/v1/` request (the same checks as `/api/vault`'s).

    Raises:
        VaultLocked: the vault is locked (checked first: Vault answers 503 while sealed).
        AuthenticationFailed: no token, an invalid or expired one, or a built-in user's token
            whose user was since disabled, removed or given another role (403 on /v1).
    """
    if check_lock and st.vault.is_locked:
        raise errors.VaultLocked()
    token = _token(request)
    if token is None:
        raise errors.AuthenticationFailed("missing token")
    principal = st.auth.verify(token)
    if principal.builtin:
        await st.check_user(principal)
    return Caller(principal, st.client_ip(request), deps.request_id(request.scope))


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty). The size limit is enforced by the
    app's front layer; any content type is accepted, as Vault does.

    Raises:
        InvalidInput: not JSON, not an object, or nested too deeply.
    """
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise errors.InvalidInput("failed to parse JSON input") from exc
    if not isinstance(body, dict):
        raise errors.InvalidInput("the request body must be a JSON object")
    if _too_deep(body, deps.MAX_JSON_DEPTH):
        raise errors.InvalidInput("JSON body is nested too deeply")
    return body


def _too_deep(value: object, budget: int) -> bool:
    """True when `value` nests objects or arrays more than `budget` levels deep."""
    if isinstance(value, dict | list):
        if budget <= 0:
            return True
        items = value.values() if isinstance(value, dict) else value
        return any(_too_deep(item, budget - 1) for item in items)
    return False


def require_merge_patch(request: Request) -> None:
    """PATCH must say `application/merge-patch+json`, as Vault requires.

    Raises:
        UnsupportedMediaType: another content type (415).
    """
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given != MERGE_PATCH:
        raise errors.UnsupportedMediaType(
            f"PATCH requires Content-Type of {MERGE_PATCH}, provided {given or 'none'}"
        )


def parse_int(value: object, name: str) -> int:
    """A non-negative integer from JSON or a query string (Vault accepts digit strings).

    Raises:
        InvalidInput: anything else.
    """
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise errors.InvalidInput(f"{name} must be a non-negative integer")


def parse_versions(value: object) -> list[int]:
    """`versions` as integers: a JSON list, or a comma-separated string as Vault accepts.

    Raises:
        InvalidInput: none given, or not integers.
    """
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise errors.InvalidInput("no version number provided")
    return [parse_int(v, "versions") for v in value]
