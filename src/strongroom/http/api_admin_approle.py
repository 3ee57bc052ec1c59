"""`/api/vault/approles`: AppRole administration over HTTP (issue 15), so `vaultctl approle`
works in remote mode. Every route needs an administrator; every change is audited by the core.
A secret id is returned once, by `POST .../secret-ids`; afterwards it is named by accessor."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from strongroom import errors
from strongroom.clock import parse_duration
from strongroom.core.approle import RoleSettings, role_dict, secret_dict
from strongroom.http.api_admin import admin_caller
from strongroom.http.bodies import int_field
from strongroom.http.bodies import str_field as _str
from strongroom.http.errors import json_response
from strongroom.http.routing import Operation, Target
from strongroom.http.state import ServerState

__all__ = ["OPERATIONS"]

A = "/api/vault/approles"
_STR = {"type": "string"}
_NAMES = {"type": "array", "items": _STR}


def _list(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidInput(f"{name} must be a list of strings")
    return tuple(value)


def _seconds(body: dict[str, Any], name: str) -> int:
    text = _str(body, name, required=False)
    return int(parse_duration(text).total_seconds()) if text else 0


def _settings(body: dict[str, Any]) -> RoleSettings:
    return RoleSettings(
        policies=_list(body, "policies"),
        token_ttl=_seconds(body, "token_ttl"),
        token_max_ttl=_seconds(body, "token_max_ttl"),
        secret_id_ttl=_seconds(body, "secret_id_ttl"),
        secret_id_num_uses=int_field(body.get("secret_id_num_uses", 0), "secret_id_num_uses"),
        bound_cidrs=_list(body, "bound_cidrs"),
    )


async def roles_list(request: Request, st: ServerState, _: Target) -> Response:
    await admin_caller(request, st, "approle_list")
    names = await st.run(st.vault.approle.list_roles)
    return json_response({"approles": names, "count": len(names)})


async def role_put(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "approle_write")
    body = await st.read_json(request)
    row = await st.run(
        st.vault.approle.write_role,
        request.path_params["name"],
        _settings(body),
        actor=caller.actor,
    )
    return json_response(role_dict(row))


async def role_get(request: Request, st: ServerState, _: Target) -> Response:
    await admin_caller(request, st, "approle_read")
    return json_response(
        role_dict(await st.run(st.vault.approle.read_role, request.path_params["name"]))
    )


async def role_delete(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "approle_delete")
    name = request.path_params["name"]
    await st.run(st.vault.approle.delete_role, name, actor=caller.actor)
    return json_response({"message": "AppRole deleted", "name": name})


async def secret_new(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "approle_secret_id")
    body = await st.read_json(request, required=False)
    made = await st.run(
        st.vault.approle.new_secret_id,
        request.path_params["name"],
        bound_cidrs=_list(body, "bound_cidrs"),
        actor=caller.actor,
    )
    data = {"secret_id": made.secret_id, "accessor": made.accessor, "ttl": made.ttl}
    return json_response({**data, "num_uses": made.num_uses}, 201)


async def secrets_list(request: Request, st: ServerState, _: Target) -> Response:
    await admin_caller(request, st, "approle_secret_list")
    found = await st.run(st.vault.approle.list_secret_ids, request.path_params["name"])
    return json_response({"secret_ids": [secret_dict(s) for s in found], "count": len(found)})


async def secret_revoke(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "approle_secret_destroy")
    body = await st.read_json(request)
    name, accessor = request.path_params["name"], _str(body, "accessor")
    await st.run(st.vault.approle.destroy_secret_id, name, accessor, actor=caller.actor)
    return json_response({"revoked": 1, "accessor": accessor})


_ROLE = {
    "type": "object",
    "properties": {
        "policies": _NAMES,
        "token_ttl": {**_STR, "example": "1h"},
        "token_max_ttl": {**_STR, "example": "24h"},
        "secret_id_ttl": {**_STR, "example": "10m"},
        "secret_id_num_uses": {"type": "integer", "minimum": 0},
        "bound_cidrs": _NAMES,
    },
}
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", A, roles_list, "List AppRoles", "admin"),
    Operation("GET", A + "/{name}", role_get, "Read an AppRole (with its role_id)", "admin"),
    Operation("PUT", A + "/{name}", role_put, "Create or update an AppRole", "admin", _ROLE),
    Operation("DELETE", A + "/{name}", role_delete, "Delete an AppRole", "admin"),
    Operation(
        "POST",
        A + "/{name}/secret-ids",
        secret_new,
        "Generate a secret id (shown once)",
        "admin",
        {"type": "object", "properties": {"bound_cidrs": _NAMES}},
        status=201,
    ),
    Operation("GET", A + "/{name}/secret-ids", secrets_list, "List secret ids", "admin"),
    Operation(
        "POST",
        A + "/{name}/secret-ids/revoke",
        secret_revoke,
        "Destroy a secret id by accessor",
        "admin",
        {"type": "object", "required": ["accessor"], "properties": {"accessor": _STR}},
    ),
)
