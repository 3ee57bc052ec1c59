"""`/v1/auth/token/*`, `/v1/auth/userpass/login/<user>` and `/v1/sys/policies/acl/*` +
`/v1/sys/policy/*`: Vault's auth and policy API (hvac `auth.token`, `auth.userpass`, `sys`
policies; `bao login`, `bao token`, `bao policy`) over recorded tokens (`vault.tokens`) and path
policies (`vault.access`).

A token from `auth/token/create` carries exactly the policies it was given and the role
`token` (never its creator's role); a non-administrator may only give policies it holds itself.
It is a child of the caller's token (capped at its lifetime, revoked with it); orphans need an
administrator. Looking up, renewing or revoking another token needs an administrator or being
its creator; refusals are audited by the `Authorizer`. HCL policies are mapped by
`core.policy_hcl`. Routes here come before the KV v2 catch-all (`api_kv2.ROUTES`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from strongroom import errors
from strongroom.clock import parse_duration
from strongroom.core.policy import rules_to_json
from strongroom.core.policy_hcl import hcl_to_rules, rules_to_hcl
from strongroom.core.token_records import TOKEN_ROLE, TokenInfo, is_recorded
from strongroom.core.token_types import MAX_TTL
from strongroom.http import api_kv2_sys
from strongroom.http.api_vault import log_in
from strongroom.http.errors import json_response, no_content
from strongroom.http.kv2_format import envelope, rfc3339
from strongroom.http.state import V1, Caller, ServerState, state_of

__all__ = ["ROUTES", "auth_block", "duration", "names"]

_POST = ["POST", "PUT"]
_MAX_SECONDS = int(MAX_TTL.total_seconds())  # a number of seconds above it is refused at once


async def _body(st: ServerState, request: Request) -> dict[str, Any]:
    return await st.read_json(request, required=False, any_type=True)


def duration(value: object, name: str) -> timedelta | None:
    """Vault's durations: seconds as a number or string, or `90s`, `15m`, `1h`..."""
    if value in (None, "", 0, "0", "0s"):
        return None  # Vault's "not set" (the bao CLI sends "0s")
    if isinstance(value, bool):
        raise errors.InvalidInput(f"{name} must be a duration")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value[:12]) if len(value) <= 12 else _MAX_SECONDS + 1
    if isinstance(value, int):
        if not 0 < value <= _MAX_SECONDS:
            raise errors.InvalidInput(f"{name} must be between 1s and 3650d")
        return timedelta(seconds=value)
    if isinstance(value, str):
        return parse_duration(value)
    raise errors.InvalidInput(f"{name} must be a duration")


def names(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return list(value)
    raise errors.InvalidInput("policies must be a list of names")


def _remaining(info: TokenInfo) -> int:
    return max(int(info.expires_at.timestamp() - time.time()), 0)


def auth_block(token: str, info: TokenInfo) -> dict[str, Any]:
    """Vault's `auth` block of a login or token creation."""
    return {
        "client_token": token,
        "accessor": info.accessor,
        "policies": list(info.policies),
        "token_policies": list(info.policies),
        "metadata": {"user_id": str(info.user_id), "role": info.role},
        "lease_duration": _remaining(info),
        "renewable": info.is_renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": info.parent is None,
        "mfa_requirement": None,
        "num_uses": 0,
    }


def _lookup(info: TokenInfo, token: str = "") -> dict[str, Any]:
    """Vault's token lookup data (`id` only when the caller sent the token)."""
    return {
        "accessor": info.accessor,
        "creation_time": int(info.created_at.timestamp()),
        "creation_ttl": int(info.ttl.total_seconds()),
        "display_name": f"token-{info.kind}",
        "entity_id": "",
        "expire_time": rfc3339(info.expires_at),
        "explicit_max_ttl": int((info.max_expires_at - info.created_at).total_seconds()),
        "id": token,
        "issue_time": rfc3339(info.created_at),
        "meta": {"user_id": str(info.user_id), "role": info.role},
        "num_uses": 0,
        "orphan": info.parent is None,
        "path": f"auth/token/{info.kind}",
        "policies": list(info.policies),
        "renewable": info.is_renewable,
        "ttl": _remaining(info),
        "type": "service",
    }


def _created_by(info: TokenInfo, caller: Caller) -> bool:
    """Whether the caller's token is `info`'s or created it: a recorded token's children name
    it as parent; a JWT's tokens are parentless `token`s its subject issued for itself."""
    me = caller.principal
    if me.accessor:
        return me.accessor in (info.accessor, info.parent)
    return (
        info.parent is None
        and info.role == TOKEN_ROLE
        and info.issuer == me.user_id == info.user_id
    )


async def _own_or_admin(st: ServerState, caller: Caller, info: TokenInfo, action: str) -> None:
    """Allow an administrator, or a caller acting on its own token or on a token it created
    (a child). Sharing a subject is not enough: every AppRole token of a role, and every
    child of a token, has its creator's subject."""
    if not _created_by(info, caller):
        await st.require_admin(caller, action, path=f"token:{info.accessor}")


async def _target(st: ServerState, caller: Caller, body: dict[str, Any]) -> TokenInfo:
    """The token a body names by `accessor` or `token` (NotFound when unknown)."""
    accessor = body.get("accessor")
    if accessor is None:
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise errors.InvalidInput("missing token")
        accessor = await st.run(st.vault.tokens.accessor_of, token)
    if not isinstance(accessor, str) or not accessor:
        raise errors.InvalidInput("missing accessor")
    return await st.run(st.vault.tokens.lookup, accessor)


async def _self(st: ServerState, caller: Caller) -> TokenInfo:
    if not caller.principal.accessor:
        raise errors.InvalidInput("this token is not recorded (a JWT): it cannot be renewed")
    return await st.run(st.vault.tokens.lookup, caller.principal.accessor)


# -- auth/token ---------------------------------------------------------------------------------
async def create(request: Request) -> Response:
    """A new token with exactly the policies given (a subset of the caller's, unless admin).

    A child of the caller's recorded token (revoked with it, never outliving it); a caller
    with a JWT gets a token capped at the JWT's `exp` unless an administrator. Orphans
    (`create-orphan`, `no_parent`) need an administrator, as they need sudo in Vault.
    """
    st = state_of(request)
    caller = await st.caller(request, V1)
    body = await _body(st, request)
    policies = names(body.get("policies"))
    principal = caller.principal
    admin = st.vault.authorizer.is_admin(principal)
    if not admin and not set(policies) <= set(principal.policies):
        raise await st.run(st.vault.authorizer.deny, "token_create", None, caller.actor)
    orphan = request.url.path.endswith("-orphan") or body.get("no_parent") is True
    if orphan and not admin:
        raise await st.run(st.vault.authorizer.deny, "token_create_orphan", None, caller.actor)
    ttl = duration(body.get("ttl"), "ttl") or st.settings.token_ttl
    max_ttl = duration(body.get("explicit_max_ttl"), "explicit_max_ttl")
    if body.get("renewable") is False:
        max_ttl = ttl
    jwt_exp = None
    if not principal.accessor and not admin and principal.expires_at > 0:
        jwt_exp = datetime.fromtimestamp(principal.expires_at, UTC)
    issued = await st.run(
        st.vault.tokens.create,
        principal.user_id,
        TOKEN_ROLE,
        policies=policies,
        ttl=ttl if max_ttl is None else min(ttl, max_ttl),
        max_ttl=max_ttl or max(ttl, st.settings.token_ttl * 24),
        parent=None if orphan else principal.accessor or None,
        not_after=jwt_exp,
        actor=caller.actor,
    )
    auth = auth_block(issued.token, issued.info)
    return json_response(
        envelope(None, request_id=caller.request_id, mount_type="token", auth=auth)
    )


async def lookup_self(request: Request) -> Response:
    """The caller's token (a JWT: as `api_kv2_sys.lookup_self`)."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    if not caller.principal.accessor:
        return await api_kv2_sys.lookup_self(request)
    info = await _self(st, caller)
    token = request.headers.get("x-vault-token", "")
    data = _lookup(info, token if is_recorded(token) else "")
    return json_response(envelope(data, request_id=caller.request_id, mount_type="token"))


async def lookup(request: Request) -> Response:
    """`lookup` (by `token`) and `lookup-accessor` (by `accessor`)."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    body = await _body(st, request)
    info = await _target(st, caller, body)
    await _own_or_admin(st, caller, info, "token_lookup")
    data = _lookup(info, "" if "accessor" in body else str(body.get("token", "")))
    return json_response(envelope(data, request_id=caller.request_id, mount_type="token"))


async def _renew(
    st: ServerState, caller: Caller, info: TokenInfo, body: dict[str, Any]
) -> Response:
    increment = duration(body.get("increment"), "increment")
    renewed, warnings = await st.run(
        st.vault.tokens.renew, info.accessor, increment, actor=caller.actor
    )
    out = envelope(
        None, request_id=caller.request_id, mount_type="token", auth=auth_block("", renewed)
    )
    out["warnings"] = warnings or None
    return json_response(out)


async def renew_self(request: Request) -> Response:
    """Extend the caller's own token (capped at its max TTL, with a warning)."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    body = await _body(st, request)
    return await _renew(st, caller, await _self(st, caller), body)


async def renew(request: Request) -> Response:
    """Extend another token (`token` or `accessor` in the body)."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    body = await _body(st, request)
    info = await _target(st, caller, body)
    await _own_or_admin(st, caller, info, "token_renew")
    return await _renew(st, caller, info, body)


async def revoke_self(request: Request) -> Response:
    """Revoke the caller's own token."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    info = await _self(st, caller)
    await st.run(st.vault.tokens.revoke, info.accessor, actor=caller.actor)
    return no_content()


async def revoke(request: Request) -> Response:
    """`revoke` (by `token`) and `revoke-accessor` (by `accessor`)."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    info = await _target(st, caller, await _body(st, request))
    await _own_or_admin(st, caller, info, "token_revoke")
    await st.run(st.vault.tokens.revoke, info.accessor, actor=caller.actor)
    return no_content()


# -- auth/userpass -----------------------------------------------------------------------------
async def userpass_login(request: Request) -> Response:
    """A built-in user's password login: a recorded token in Vault's `auth` block."""
    st = state_of(request)
    if not st.vault.state.is_unlocked and st.unlocker is None:
        raise errors.VaultLocked()
    body = await _body(st, request)
    password = body.get("password")
    if not isinstance(password, str):
        raise errors.InvalidInput("missing password")
    totp = body.get("totp")
    if totp is not None and not isinstance(totp, str):
        raise errors.InvalidInput("totp must be a string of digits")
    username = request.path_params["username"]
    issued = await log_in(request, st, username, password, kind="userpass", totp=totp)
    auth = auth_block(issued.token, issued.info)
    auth["metadata"]["username"] = username
    return json_response(envelope(None, mount_type="userpass", auth=auth))


# -- sys/policies/acl and sys/policy -----------------------------------------------------------
async def _admin(request: Request, action: str) -> tuple[ServerState, Caller]:
    st = state_of(request)
    caller = await st.caller(request, V1)
    await st.require_admin(caller, action)
    return st, caller


async def _policynames(st: ServerState) -> list[str]:
    return [p.name for p in await st.run(st.vault.access.list_policies)]


async def policies(request: Request) -> Response:
    """LIST (or GET ?list=true) `sys/policies/acl`; GET `sys/policy` (both shapes)."""
    st, caller = await _admin(request, "policy_list")
    keys = await _policynames(st)
    data: dict[str, Any] = {"keys": keys}
    if request.url.path.rstrip("/").endswith("/sys/policy"):
        data["policies"] = keys
        return json_response({**data, **envelope(data, request_id=caller.request_id)})
    return json_response(envelope(data, request_id=caller.request_id, mount_type="system"))


async def policy(request: Request) -> Response:
    """Read, write (HCL) or delete one policy."""
    name = request.path_params["name"]
    if request.method == "LIST" or request.query_params.get("list") == "true":
        return await policies(request)
    st, caller = await _admin(request, f"policy_{request.method.lower()}")
    if name in ("root", "default") and request.method != "GET":
        raise errors.InvalidInput(f"cannot change the {name} policy")
    if request.method == "DELETE":
        await st.run(st.vault.access.delete_policy, name, actor=caller.actor)
        return no_content()
    if request.method == "GET":
        found = await st.run(st.vault.access.get_policies, [name])
        if not found:
            raise errors.NotFound("policy not found")
        text = rules_to_hcl(found[0].rules, await st.run(st.vault.mounts.versions))
        key = "rules" if "/sys/policy/" in request.url.path else "policy"
        data = {"name": name, key: text}
        if key == "rules":
            return json_response({**data, **envelope(data, request_id=caller.request_id)})
        return json_response(envelope(data, request_id=caller.request_id))
    body = await _body(st, request)
    hcl = body.get("policy", body.get("rules"))
    if not isinstance(hcl, str):
        raise errors.InvalidInput("missing policy (HCL text)")
    rules, warnings = hcl_to_rules(hcl, await st.run(st.vault.mounts.versions))
    await st.run(st.vault.access.write_policy, name, rules_to_json(rules), actor=caller.actor)
    if not warnings:
        return no_content()
    out = envelope(None, request_id=caller.request_id)
    out["warnings"] = warnings
    return json_response(out)


_ANY = ["GET", "POST", "PUT", "DELETE", "LIST"]
ROUTES: list[BaseRoute] = [
    Route("/v1/auth/token/create", create, methods=_POST, name="v1_token_create"),
    Route("/v1/auth/token/create-orphan", create, methods=_POST, name="v1_token_create_orphan"),
    Route("/v1/auth/token/lookup-self", lookup_self, methods=["GET", "POST"], name="v1_lookup_me"),
    Route("/v1/auth/token/lookup", lookup, methods=_POST, name="v1_token_lookup"),
    Route("/v1/auth/token/lookup-accessor", lookup, methods=_POST, name="v1_lookup_accessor"),
    Route("/v1/auth/token/renew-self", renew_self, methods=_POST, name="v1_token_renew_self"),
    Route("/v1/auth/token/renew", renew, methods=_POST, name="v1_token_renew"),
    Route("/v1/auth/token/renew-accessor", renew, methods=_POST, name="v1_renew_accessor"),
    Route("/v1/auth/token/revoke-self", revoke_self, methods=_POST, name="v1_revoke_self"),
    Route("/v1/auth/token/revoke", revoke, methods=_POST, name="v1_token_revoke"),
    Route("/v1/auth/token/revoke-accessor", revoke, methods=_POST, name="v1_revoke_accessor"),
    Route("/v1/auth/userpass/login/{username}", userpass_login, methods=_POST, name="v1_userpass"),
    Route("/v1/sys/policies/acl", policies, methods=["GET", "LIST"], name="v1_acl_list"),
    Route("/v1/sys/policies/acl/{name}", policy, methods=_ANY, name="v1_acl"),
    Route("/v1/sys/policy", policies, methods=["GET"], name="v1_policy_list"),
    Route("/v1/sys/policy/{name}", policy, methods=_ANY, name="v1_policy"),
]
