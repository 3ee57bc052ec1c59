"""`/v1/auth/approle/...`: Vault's AppRole API (hvac `auth.approle`, `bao write
auth/approle/login`) over `vault.approle`. Managing roles and secret ids needs an administrator;
`login` needs no token and answers a failed login 400 `invalid role or secret ID`, as Vault
does (`http.errors`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from strongroom import errors
from strongroom.core.approle import RoleSettings
from strongroom.http.api_auth_v1 import auth_block, duration, names
from strongroom.http.bodies import MAX_INT
from strongroom.http.deps import request_id
from strongroom.http.errors import json_response, no_content
from strongroom.http.kv2_format import envelope
from strongroom.http.state import V1, Caller, ServerState, state_of
from strongroom.models import Actor

__all__ = ["ROUTES"]

_POST = ["POST", "PUT"]
_UNSUPPORTED = ("token_bound_cidrs", "token_num_uses", "token_period", "bind_secret_id")


async def _admin(request: Request, action: str) -> tuple[ServerState, Caller, dict[str, Any]]:
    st = state_of(request)
    caller = await st.caller(request, V1)
    await st.require_admin(caller, action)
    body = await st.read_json(request, required=False, any_type=True)
    return st, caller, body


def _seconds(body: dict[str, Any], name: str) -> int:
    value = duration(body.get(name), name)
    return int(value.total_seconds()) if value else 0


def _settings(body: dict[str, Any]) -> RoleSettings:
    for name in _UNSUPPORTED:
        if body.get(name) not in (None, "", 0, [], True if name == "bind_secret_id" else None):
            raise errors.InvalidInput(f"unsupported parameter {name!r}")
    uses = body.get("secret_id_num_uses", 0)
    if isinstance(uses, str) and uses.isascii() and uses.isdigit() and len(uses) <= 10:
        uses = int(uses)
    if isinstance(uses, bool) or not isinstance(uses, int) or not 0 <= uses <= MAX_INT:
        raise errors.InvalidInput(f"secret_id_num_uses must be an integer from 0 to {MAX_INT}")
    return RoleSettings(
        policies=tuple(names(body.get("token_policies", body.get("policies")))),
        token_ttl=_seconds(body, "token_ttl"),
        token_max_ttl=_seconds(body, "token_max_ttl"),
        secret_id_ttl=_seconds(body, "secret_id_ttl"),
        secret_id_num_uses=uses,
        bound_cidrs=tuple(names(body.get("secret_id_bound_cidrs"))),
    )


def _role_json(row: Any) -> dict[str, Any]:
    return {
        "bind_secret_id": True,
        "local_secret_ids": False,
        "policies": row.policies,
        "secret_id_bound_cidrs": row.bound_cidrs,
        "secret_id_num_uses": row.secret_id_num_uses,
        "secret_id_ttl": row.secret_id_ttl,
        "token_bound_cidrs": [],
        "token_explicit_max_ttl": 0,
        "token_max_ttl": row.token_max_ttl,
        "token_no_default_policy": False,
        "token_num_uses": 0,
        "token_period": 0,
        "token_policies": row.policies,
        "token_ttl": row.token_ttl,
        "token_type": "default",
    }


async def roles(request: Request) -> Response:
    """LIST `auth/approle/role`: the role names."""
    st, caller, _ = await _admin(request, "approle_list")
    keys = await st.run(st.vault.approle.list_roles)
    if not keys:
        raise errors.NotFound("no roles")
    return json_response(envelope({"keys": keys}, request_id=caller.request_id, mount_type=None))


async def role(request: Request) -> Response:
    """Write (POST/PUT), read (GET) or delete one role."""
    name = request.path_params["name"]
    if request.method == "LIST":
        return await roles(request)
    st, caller, body = await _admin(request, f"approle_{request.method.lower()}")
    approle = st.vault.approle
    if request.method == "DELETE":
        await st.run(approle.delete_role, name, actor=caller.actor)
        return no_content()
    if request.method == "GET":
        data = _role_json(await st.run(approle.read_role, name))
        return json_response(envelope(data, request_id=caller.request_id, mount_type=None))
    await st.run(approle.write_role, name, _settings(body), actor=caller.actor)
    return no_content()


async def role_id(request: Request) -> Response:
    """GET the role's stable role_id."""
    st, caller, _ = await _admin(request, "approle_role_id")
    row = await st.run(st.vault.approle.read_role, request.path_params["name"])
    data = {"role_id": row.role_id}
    return json_response(envelope(data, request_id=caller.request_id, mount_type=None))


async def secret_id(request: Request) -> Response:
    """POST: a new secret id (shown once); LIST: the accessors."""
    st, caller, body = await _admin(request, "approle_secret_id")
    name, approle = request.path_params["name"], st.vault.approle
    if request.method == "LIST" or request.query_params.get("list") == "true":
        found = await st.run(approle.list_secret_ids, name)
        if not found:
            raise errors.NotFound("no secret ids")
        keys = [s.accessor for s in found]
        return json_response(envelope({"keys": keys}, request_id=caller.request_id))
    cidrs = names(body.get("cidr_list"))
    made = await st.run(approle.new_secret_id, name, bound_cidrs=cidrs, actor=caller.actor)
    data = {
        "secret_id": made.secret_id,
        "secret_id_accessor": made.accessor,
        "secret_id_num_uses": made.num_uses,
        "secret_id_ttl": made.ttl,
    }
    return json_response(envelope(data, request_id=caller.request_id, mount_type=None))


async def destroy_accessor(request: Request) -> Response:
    """POST `secret-id-accessor/destroy` {"secret_id_accessor"}."""
    st, caller, body = await _admin(request, "approle_secret_destroy")
    accessor = body.get("secret_id_accessor")
    if not isinstance(accessor, str) or not accessor:
        raise errors.InvalidInput("missing secret_id_accessor")
    name = request.path_params["name"]
    await st.run(st.vault.approle.destroy_secret_id, name, accessor, actor=caller.actor)
    return no_content()


async def login(request: Request) -> Response:
    """POST {"role_id", "secret_id"}: a recorded token in Vault's `auth` block."""
    st = state_of(request)
    if not st.vault.state.is_unlocked and st.unlocker is None:
        raise errors.VaultLocked()
    body = await st.read_json(request, required=False, any_type=True)
    rid, sid = body.get("role_id"), body.get("secret_id")
    if not isinstance(rid, str) or not rid:
        raise errors.InvalidInput("missing role_id")
    if not isinstance(sid, str) or not sid:
        raise errors.InvalidInput("missing secret_id")
    actor = Actor(0, st.client_ip(request), request_id(request.scope))
    issued = await st.run(st.vault.approle.login, rid, sid, actor=actor)
    auth = auth_block(issued.token, issued.info)
    auth["metadata"] = {"role_name": ""}
    return json_response(envelope(None, request_id=actor.request_id, mount_type=None, auth=auth))


_ANY = ["GET", "POST", "PUT", "DELETE", "LIST"]
R = "/v1/auth/approle/role"
ROUTES: list[BaseRoute] = [
    Route(R, roles, methods=["GET", "LIST"], name="v1_approle_roles"),
    Route(R + "/{name}", role, methods=_ANY, name="v1_approle_role"),
    Route(R + "/{name}/role-id", role_id, methods=["GET"], name="v1_approle_role_id"),
    Route(R + "/{name}/secret-id", secret_id, methods=[*_POST, "LIST", "GET"], name="v1_secret_id"),
    Route(
        R + "/{name}/secret-id-accessor/destroy",
        destroy_accessor,
        methods=_POST,
        name="v1_approle_destroy",
    ),
    Route("/v1/auth/approle/login", login, methods=_POST, name="v1_approle_login"),
]
