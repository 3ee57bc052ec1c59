"""`/api/vault/...` and `/api/auth/login`: the design document's REST API, one handler each.

Handlers parse the request, check access, make ONE core call in the thread pool and render the
documented body; errors propagate to the single handler in `http.errors`. `OPERATIONS` is the one
route table: `http.app` builds the Starlette routes from it and `http.openapi` the OpenAPI document.
Secret paths contain slashes, so `/secrets/{path}` and its `/versions`, `/versions/{n}`,
`/rotate`, `/rollback` and `/audit` sub-resources share one route and are told apart here; a path
whose last segment is one of those names (or `versions/<number>`) cannot be created over HTTP.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

from starlette.requests import Request
from starlette.responses import Response

from strongroom import errors
from strongroom.api import VaultAPI
from strongroom.clock import parse_duration
from strongroom.core.token_records import IssuedToken
from strongroom.http import api_audit, api_webhooks, deps
from strongroom.http import schemas as s
from strongroom.http.api_audit import anchor_params
from strongroom.http.bodies import int_field as _int
from strongroom.http.bodies import query_int
from strongroom.http.bodies import str_field as _str
from strongroom.http.errors import json_response
from strongroom.http.routing import Operation, Target
from strongroom.http.state import ServerState
from strongroom.models import Actor, iso, validate_path

__all__ = ["OPERATIONS", "RESERVED_SEGMENTS", "check_creatable", "log_in"]

RESERVED_SEGMENTS = frozenset({"versions", "rotate", "rollback", "audit"})


def check_creatable(path: str) -> str:
    """Refuse paths that would collide with a sub-resource URL.

    Raises:
        InvalidInput: invalid path, last segment reserved, or ending in `versions/<number>`.
    """
    segments = validate_path(path).split("/")
    if segments[-1] in RESERVED_SEGMENTS or (
        len(segments) > 1 and segments[-2] == "versions" and segments[-1].isdigit()
    ):
        raise errors.InvalidInput(
            "invalid path: the last segment may not be 'versions', 'rotate', 'rollback' or "
            "'audit', nor may a path end in 'versions/<number>' (they name sub-resources)"
        )
    return path


# -- vault state ------------------------------------------------------------------------------
async def unlock(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "unlock")
    key = cast(str, _str(await st.read_json(request), "master_key"))
    await st.unlock(caller, key)
    return json_response({"message": "Vault unlocked successfully"})


async def lock(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "lock")
    await st.lock(caller)
    return json_response({"message": "Vault locked successfully"})


async def status(request: Request, st: ServerState, _: Target) -> Response:
    await st.caller(request)
    info = await st.run(st.vault.status)
    return json_response(
        {
            "locked": info.locked,
            "initialized": info.initialized,
            "vault_id": info.vault_id,
            "terms": info.terms,
            "current_term": info.current_term,
        }
    )


async def health(request: Request, st: ServerState, _: Target) -> Response:
    if request.query_params.get("ready", "0") not in ("0", "false", ""):
        # Readiness: lock-free lock state, then a bounded database check (`http.health`).
        reason = await st.readiness.check(st.executor)
        ready = {"ready": reason is None, "locked": not st.vault.state.is_unlocked}
        return json_response(
            ready if reason is None else {**ready, "reason": reason}, 200 if reason is None else 503
        )
    # In the pool: health waits for the vault's state lock, which an unlock holds during Argon2.
    body = (await st.run(st.vault.health)).as_dict()
    body["auto_lock"] = st.settings.auto_lock
    return json_response(body)


# -- secrets ----------------------------------------------------------------------------------
async def create(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    body = await st.read_json(request)
    path = check_creatable(cast(str, _str(body, "path")))
    value = cast(str, _str(body, "value"))
    raw_ttl = body.get("expires_in")
    if raw_ttl is not None and not isinstance(raw_ttl, str):
        raise errors.InvalidInput("field 'expires_in' must be a duration such as \"90d\"")
    expires_in = parse_duration(raw_ttl) if raw_ttl is not None else None
    await st.require(caller, "create", "create", path)
    info = await st.run(
        st.vault.create_secret,
        path,
        value,
        description=_str(body, "description", required=False),
        expires_in=expires_in,
        actor=caller.actor,
    )
    return json_response(
        {"message": "Secret created successfully", "path": path, "secret": info.as_dict()}, 201
    )


async def get(request: Request, st: ServerState, target: Target) -> Response:
    caller = await st.caller(request)
    path = target.path
    await st.require(caller, "read", "read", path)
    raw_version = request.query_params.get("version")
    if raw_version is None:
        value = await st.read(st.vault.get_secret, path, actor=caller.actor)
        return json_response({"path": path, "value": value})
    number = query_int(raw_version, "version")
    value = await st.read(st.vault.get_secret_version, path, number, actor=caller.actor)
    return json_response({"path": path, "version": number, "value": value})


async def update(request: Request, st: ServerState, target: Target) -> Response:
    caller = await st.caller(request)
    value = cast(str, _str(await st.read_json(request), "value"))
    await st.require(caller, "update", "update", target.path)
    number = await st.run(st.vault.update_secret, target.path, value, actor=caller.actor)
    return json_response(
        {"message": "Secret updated successfully", "path": target.path, "version": number}
    )


async def delete(request: Request, st: ServerState, target: Target) -> Response:
    caller = await st.caller(request)
    await st.require(caller, "delete", "delete", target.path)
    await st.run(st.vault.delete_secret, target.path, actor=caller.actor)
    return json_response({"message": "Secret deleted successfully", "path": target.path})


async def list_secrets(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    prefix = request.query_params.get("prefix", "")
    visible = await st.list_filter(caller, prefix)
    found = [
        i
        for i in await st.read(st.vault.list_secrets, prefix, actor=caller.actor)
        if visible(i.path)
    ]
    return json_response({"secrets": [i.as_dict() for i in found], "count": len(found)})


async def versions(request: Request, st: ServerState, target: Target) -> Response:
    caller = await st.caller(request)
    await st.require(caller, "read", "versions", target.path)
    found = await st.read(st.vault.list_versions, target.path, actor=caller.actor)
    return json_response(
        {"path": target.path, "versions": [v.as_dict() for v in found], "count": len(found)}
    )


async def version(request: Request, st: ServerState, target: Target) -> Response:
    caller = await st.caller(request)
    await st.require(caller, "read", "read", target.path)
    number = _int(target.version, "version")
    value = await st.read(st.vault.get_secret_version, target.path, number, actor=caller.actor)
    return json_response({"path": target.path, "version": number, "value": value})


async def rollback(request: Request, st: ServerState, target: Target) -> Response:
    caller = await st.caller(request)
    body = await st.read_json(request)
    number = _int(body.get("version"), "version")
    await st.require(caller, "update", "rollback", target.path)
    new = await st.run(st.vault.rollback_secret, target.path, number, actor=caller.actor)
    return json_response(
        {
            "message": "Secret rolled back successfully",
            "path": target.path,
            "version": new,
            "from_version": number,
        }
    )


async def rotate(request: Request, st: ServerState, target: Target) -> Response:
    caller = await st.caller(request)
    body = await st.read_json(request, required=False)
    if body.get("new_master_key") is not None:
        raise errors.InvalidInput(
            "master-key rotation is vault-wide: use POST /api/vault/rotate-all; "
            "rotating one secret re-encrypts it under the newest data key"
        )
    await st.require(caller, "update", "rotate", target.path)
    api = cast(VaultAPI, st.vault)
    result = await st.run(api.rotate_secret, target.path, actor=caller.actor)
    return json_response(
        {
            "message": "Secret rotated successfully",
            "path": target.path,
            "term": result.term,
            "reencrypted": result.reencrypted,
        }
    )


async def secret_audit(request: Request, st: ServerState, target: Target) -> Response:
    caller = await st.caller(request)
    await st.require(caller, "audit", "audit", target.path)
    limit = query_int(request.query_params.get("limit"), "limit", default=50)
    entries = await st.run(st.vault.audit_logs, path=target.path, limit=limit)
    return json_response(
        {"path": target.path, "logs": [e.as_dict() for e in entries], "count": len(entries)}
    )


# -- vault-wide operations --------------------------------------------------------------------
async def rotate_all(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "rotate_all", superadmin=True)
    key = cast(str, _str(await st.read_json(request), "new_master_key"))
    api = cast(VaultAPI, st.vault)
    result = await st.run(api.rotate_all, key, actor=caller.actor)
    return json_response(
        {
            "message": "All secrets rotated successfully",
            "term": result.term,
            "reencrypted": result.reencrypted,
            "secrets": result.secrets,
        }
    )


async def cleanup(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "cleanup")
    count = await st.run(st.vault.cleanup_expired, actor=caller.actor)
    return json_response({"message": f"Cleaned up {count} expired secret(s)", "count": count})


async def generate_token(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "generate")
    body = await st.read_json(request, required=False)
    length = body.get("length", 32)
    if isinstance(length, bool) or not isinstance(length, int):
        raise errors.InvalidInput("field 'length' must be an integer")
    token = await st.run(st.vault.generate_token, length, actor=caller.actor)
    return json_response({"token": token, "length": length})


async def audit_search(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "audit")
    q = request.query_params
    since = None
    if q.get("since"):
        try:
            since = datetime.fromisoformat(q["since"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise errors.InvalidInput("since must be an ISO-8601 time with a timezone") from exc
    user = query_int(q["user_id"], "user_id") if q.get("user_id") else None
    entries = await st.run(
        st.vault.audit_logs,
        path=q.get("path") or None,
        user_id=user,
        action=q.get("action") or None,
        since=since,
        limit=query_int(q.get("limit"), "limit", default=50),
    )
    return json_response({"logs": [e.as_dict() for e in entries], "count": len(entries)})


async def audit_verify(request: Request, st: ServerState, _: Target) -> Response:
    caller = await st.caller(request)
    await st.require_admin(caller, "audit_verify")
    r = await st.run(st.vault.verify_audit, anchor_params(request.query_params))
    return json_response(
        {
            "ok": r.ok,
            "entries": r.entries,
            "first_bad_id": r.first_bad_id,
            "unchained": r.unchained,
            "reason": r.reason,
        }
    )


async def login(request: Request, st: ServerState, _: Target) -> Response:
    body = await st.read_json(request)
    username = cast(str, _str(body, "username"))
    password = cast(str, _str(body, "password"))
    totp = _str(body, "totp", required=False)
    issued = await log_in(request, st, username, password, totp=totp)
    return json_response({"token": issued.token, "expires_at": iso(issued.info.expires_at)})


async def log_in(
    request: Request,
    st: ServerState,
    username: str,
    password: str,
    *,
    kind: str = "login",
    totp: str | None = None,
) -> IssuedToken:
    """Log a built-in user in, throttled and audited: the one code path of `/api/auth/login`,
    `/v1/auth/userpass/login/<user>` and the web console's sign-in. Returns a recorded token.
    `totp` is the code of a user with the TOTP second factor enabled.

    Raises:
        TooManyAttempts: too many recent failures for this user or address (audited).
        AuthenticationFailed: wrong name or password, a disabled user, or a missing, wrong or
            replayed TOTP code (audited; counted by the throttle like a wrong password).
    """
    ip = st.client_ip(request)
    actor = Actor(0, ip, deps.request_id(request.scope))
    try:
        st.limiter.check(username, ip)
    except errors.TooManyAttempts as exc:
        await st.run(st.vault.access.record_failure, "login", None, actor, exc)
        raise
    try:
        user = await st.run(
            st.vault.access.authenticate, username, password, totp=totp, actor=actor
        )
    except errors.AuthenticationFailed:
        st.limiter.failed(username, ip)
        raise
    st.limiter.succeeded(username)
    issued = await st.run(
        st.vault.tokens.create,
        user.id,
        user.role,
        policies=user.policies,
        ttl=st.settings.token_ttl,
        max_ttl=max(st.settings.token_ttl, LOGIN_MAX_TTL),
        kind=kind,
        actor=replace(actor, user_id=user.id),
    )
    return issued


V = "/api/vault"
#: How far a login token may be renewed (its first TTL is `--token-ttl`).
LOGIN_MAX_TTL = timedelta(hours=24)
P = V + "/secrets/{path}"
OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", V + "/unlock", unlock, "Unlock the vault", "admin", s.UNLOCK),
    Operation("POST", V + "/lock", lock, "Lock the vault", "admin"),
    Operation("GET", V + "/status", status, "Vault status", "token"),
    Operation(
        "GET",
        V + "/health",
        health,
        "Health check (no token needed); ?ready=1: readiness, 503 while not ready",
        "none",
        query=("ready",),
    ),
    Operation("POST", V + "/secrets", create, "Create a secret", "create", s.CREATE, 201),
    Operation(
        "GET", V + "/secrets", list_secrets, "List secrets (?prefix=)", "list", query=("prefix",)
    ),
    Operation(
        "GET", P, get, "Get a secret (?version=N for an old one)", "read", query=("version",)
    ),
    Operation("PUT", P, update, "Update a secret (new version)", "update", s.UPDATE),
    Operation("DELETE", P, delete, "Delete a secret and its versions", "delete"),
    Operation("GET", P + "/versions", versions, "List a secret's versions", "read"),
    Operation("GET", P + "/versions/{version}", version, "Get one version", "read"),
    Operation(
        "POST",
        P + "/rotate",
        rotate,
        "Re-encrypt a secret under the newest key",
        "update",
        s.ROTATE,
    ),
    Operation(
        "POST",
        P + "/rollback",
        rollback,
        "Roll back to a version (new version)",
        "update",
        s.ROLLBACK,
    ),
    Operation(
        "GET",
        P + "/audit",
        secret_audit,
        "A secret's audit log (?limit=)",
        "audit",
        query=("limit",),
    ),
    Operation(
        "POST", V + "/rotate-all", rotate_all, "Rotate the master key", "superadmin", s.ROTATE_ALL
    ),
    Operation("POST", V + "/cleanup", cleanup, "Remove expired secrets", "admin"),
    Operation(
        "POST",
        V + "/generate-token",
        generate_token,
        "Generate a random token",
        "admin",
        s.GENERATE,
    ),
    Operation(
        "GET",
        V + "/audit",
        audit_search,
        "Search the audit log",
        "admin",
        query=("path", "user_id", "action", "since", "limit"),
    ),
    Operation(
        "GET",
        V + "/audit/verify",
        audit_verify,
        "Verify the audit hash chain (?anchor_id=&anchor_mac=: and against an exported head)",
        "admin",
        query=("anchor_id", "anchor_mac"),
    ),
    *api_audit.OPERATIONS,
    *api_webhooks.OPERATIONS,
    Operation("POST", "/api/auth/login", login, "Log in as a built-in user", "none", s.LOGIN),
)
