"""`/v1/sys/...` and `/v1/auth/token/lookup-self`: the Vault system endpoints clients call
around KV v2 (health, seal status, unseal/seal as unlock/lock, token lookup; the mount
endpoints are `api_mounts`).

Our single-key model reports a Shamir seal with `t=1, n=1`: `sys/unseal` takes the master key
as `key` and unlocks, `sys/seal` locks. Unlike Vault, both need an administrator's token, as
`/api/vault/unlock` and `/lock` do (the design document's rule); with several worker processes
the change is relayed to every sibling as for `/api/vault`. Health, seal-status, leader and init
are unauthenticated, unaudited, and not activity (they never delay auto-lock).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from strongroom import __version__, errors
from strongroom.http.errors import json_response, no_content
from strongroom.http.kv2_format import envelope
from strongroom.http.state import V1, V1_SYS, ServerState, state_of

__all__ = ["ROUTES", "no_route"]

CLUSTER_NAME = "strongroom"
_HEALTH_CODES = {
    "activecode": 200,
    "standbycode": 429,
    "sealedcode": 503,
    "uninitcode": 501,
    "drsecondarycode": 472,
    "performancestandbycode": 473,
}


async def no_route(request: Request) -> Response:
    """A path no handler serves: Vault's "no handler for route" 404 (`http.errors`)."""
    raise HTTPException(404)


def _seal_status(st: ServerState) -> dict[str, Any]:
    status = st.vault.status()
    body: dict[str, Any] = {
        "type": "shamir",
        "initialized": status.initialized,
        "sealed": status.locked,
        "t": 1,
        "n": 1,
        "progress": 0,
        "nonce": "",
        "version": __version__,
        "build_date": "",
        "migration": False,
        "recovery_seal": False,
        "storage_type": st.vault.storage_label.split(":", 1)[0].split("+", 1)[0],
    }
    if not status.locked:
        body["cluster_name"] = CLUSTER_NAME
        body["cluster_id"] = status.vault_id or ""
    return body


async def health(request: Request) -> Response:
    """Vault's health check; the status code follows its `*code` query options."""
    codes = dict(_HEALTH_CODES)
    for name in codes:
        raw = request.query_params.get(name)
        if raw is not None:
            if (
                not (raw.isascii() and raw.isdigit() and len(raw) == 3)
                or not 100 <= int(raw) <= 599
            ):
                return json_response({"errors": []}, 400)
            codes[name] = int(raw)
    st = state_of(request)
    if request.query_params.get("ready", "0") not in ("0", "false", ""):
        # Readiness as on /api/vault/health?ready=1: an auto-locked vault that unlocks itself
        # at the next request counts as ready.
        reason = await st.readiness.check(st.executor)
        return json_response(
            {"ready": reason is None, **({"reason": reason} if reason else {})},
            200 if reason is None else 503,
        )
    status = await st.run(st.vault.status)
    code = (
        codes["uninitcode"]
        if not status.initialized
        else codes["sealedcode"]
        if status.locked
        else codes["activecode"]
    )
    if request.method == "HEAD":
        return no_content(code)
    return json_response(
        {
            "initialized": status.initialized,
            "sealed": status.locked,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()),
            "version": __version__,
            "cluster_name": CLUSTER_NAME,
            "cluster_id": status.vault_id or "",
        },
        code,
    )


async def seal_status(request: Request) -> Response:
    """Seal (lock) state in Vault's shape; a single key: t=1, n=1."""
    st = state_of(request)
    return json_response(await st.run(_seal_status, st))


async def unseal(request: Request) -> Response:
    """Unlock with `{"key": <master key>}`; `{"reset": true}` only reports the state."""
    st = state_of(request)
    caller = await st.caller(request, V1_SYS)
    await st.require_admin(caller, "unlock")
    body = await st.read_json(request, required=False, any_type=True)
    key = body.get("key")
    if not body.get("reset"):
        if not isinstance(key, str) or not key:
            raise errors.InvalidInput("missing required 'key' parameter")
        await st.unlock(caller, key)
    return json_response(await st.run(_seal_status, st))


async def seal(request: Request) -> Response:
    """Lock the vault (administrators only); 204."""
    st = state_of(request)
    caller = await st.caller(request, V1_SYS)
    await st.require_admin(caller, "lock")
    await st.lock(caller)
    return no_content()


async def leader(request: Request) -> Response:
    """A single node without HA (what `bao status` reads)."""
    return json_response({"ha_enabled": False})


async def init_status(request: Request) -> Response:
    """Whether the vault is initialised (its first unlock initialises it)."""
    st = state_of(request)
    status = await st.run(st.vault.status)
    return json_response({"initialized": status.initialized})


async def lookup_self(request: Request) -> Response:
    """The caller's token: user, role, policies, remaining lifetime (never the token)."""
    caller = await state_of(request).caller(request, V1)
    principal = caller.principal
    ttl = max(int(principal.expires_at - time.time()), 0)
    data = {
        "accessor": "",
        "creation_time": 0,
        "creation_ttl": 0,
        "display_name": f"jwt-{principal.user_id}",
        "entity_id": "",
        "expire_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(principal.expires_at)),
        "explicit_max_ttl": 0,
        "id": "",
        "issue_time": "",
        "meta": {"user_id": str(principal.user_id), "role": principal.role},
        "num_uses": 0,
        "orphan": True,
        "path": "auth/jwt",
        "policies": sorted({principal.role, *principal.policies}),
        "renewable": False,
        "ttl": ttl,
        "type": "service",
    }
    return json_response(envelope(data, request_id=caller.request_id, mount_type="token"))


ROUTES: list[BaseRoute] = [
    Route("/v1/sys/health", health, methods=["GET", "HEAD"], name="v1_health"),
    Route("/v1/sys/seal-status", seal_status, methods=["GET"], name="v1_seal_status"),
    Route("/v1/sys/unseal", unseal, methods=["PUT", "POST"], name="v1_unseal"),
    Route("/v1/sys/seal", seal, methods=["PUT", "POST"], name="v1_seal"),
    Route("/v1/sys/leader", leader, methods=["GET"], name="v1_leader"),
    Route("/v1/sys/init", init_status, methods=["GET"], name="v1_init"),
    Route(
        "/v1/auth/token/lookup-self", lookup_self, methods=["GET", "POST"], name="v1_lookup_self"
    ),
]
