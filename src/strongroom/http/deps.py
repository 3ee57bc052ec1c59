"""Per-request facts, shared by both APIs: request id, client IP, the token, the JSON body.

The client IP is the socket peer; `X-Forwarded-For` is believed only when the peer is a configured
trusted proxy (then the right-most address that is not a trusted proxy is the client). Bodies are
read incrementally and refused with 413 as soon as they exceed the limit, and must be JSON
objects (on `/api`, sent as `application/json`: 415 otherwise). Tokens are never logged.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
from collections.abc import MutableMapping, Sequence
from typing import Any

from starlette.requests import Request

from strongroom import errors
from strongroom.config import IPNetwork
from strongroom.models import Actor

__all__ = [
    "SERVER_ACTOR",
    "bearer_token",
    "client_ip",
    "read_json",
    "request_id",
    "request_token",
    "require_content_type",
]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_JSON_DEPTH = 32
_JSON_SPACE = b" \t\r\n"
#: Who the server itself is in the audit trail (the unlock from its key source at start).
SERVER_ACTOR = Actor(user_id=0, ip="server")


def request_id(scope: MutableMapping[str, Any]) -> str:
    """The caller's `X-Request-ID` when well-formed, else a new random id (cached in scope)."""
    rid = scope.get("strongroom.request_id")
    if rid is None:
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                text = value.decode("latin-1")
                if _REQUEST_ID.fullmatch(text):
                    rid = text
                break
        rid = rid or secrets.token_hex(8)
        scope["strongroom.request_id"] = rid
    return str(rid)


def client_ip(scope: MutableMapping[str, Any], trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the peer, or what a trusted proxy says it forwarded."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return str(peer)
    forwarded = [
        v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"
    ]
    hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        if not _is_trusted(hop, trusted):
            return hop
    return str(peer)


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <jwt>`, if any."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def request_token(request: Request, *, vault_header: bool = False) -> str:
    """The request's token: `Authorization: Bearer`, or with `vault_header` (the Vault-compatible
    `/v1` API) `X-Vault-Token` first, as Vault reads it.

    Raises:
        AuthenticationFailed: no token.
    """
    token = request.headers.get("x-vault-token", "").strip() if vault_header else ""
    token = token or bearer_token(request) or ""
    if not token:
        raise errors.AuthenticationFailed(
            "missing token" if vault_header else "missing bearer token"
        )
    return token


def _too_deep(value: object, budget: int) -> bool:
    """True when `value` nests objects or arrays more than `budget` levels deep."""
    if isinstance(value, dict | list):
        if budget <= 0:
            return True
        items = value.values() if isinstance(value, dict) else value
        return any(_too_deep(item, budget - 1) for item in items)
    return False


async def read_json(
    request: Request, limit: int, *, required: bool = True, any_type: bool = False
) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty and not required).

    `any_type` reads the body as JSON whatever its Content-Type (the `/v1` API: the `bao` CLI
    sends none); otherwise a non-empty body must be `application/json` (or `+json`).

    Raises:
        PayloadTooLarge: the body exceeds `limit` bytes (stops reading at once).
        InvalidInput: not JSON, not an object, nested too deep, or missing when required.
        UnsupportedMediaType: 415 for a body whose Content-Type is not JSON (unless `any_type`).
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    # Only JSON's own whitespace makes a body empty: bytes.strip() would also drop a form feed
    # or a vertical tab, which are not JSON and must be refused (400), not read as `{}`.
    if not raw.strip(_JSON_SPACE):
        if required:
            raise errors.InvalidInput("request body must be a JSON object")
        return {}
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not any_type and ctype != "application/json" and not ctype.endswith("+json"):
        raise errors.UnsupportedMediaType()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise errors.InvalidInput("malformed JSON body") from exc
    if data is None and any_type and not required:
        return {}  # `null`, as the bao CLI sends for `write -f` (Vault reads it as no data)
    if not isinstance(data, dict):
        raise errors.InvalidInput("request body must be a JSON object")
    if _too_deep(data, MAX_JSON_DEPTH):
        raise errors.InvalidInput("JSON body is nested too deeply")
    return data


def require_content_type(request: Request, expected: str) -> None:
    """Refuse a body sent with another Content-Type (PATCH on `/v1` needs merge-patch).

    Raises:
        UnsupportedMediaType: another content type (415).
    """
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given != expected:
        raise errors.UnsupportedMediaType(
            f"{request.method} requires Content-Type of {expected}, provided {given or 'none'}"
        )
