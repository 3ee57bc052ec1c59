"""`/api/vault/users`, `/api/vault/policies` and `/api/vault/tokens`: administration over HTTP
(issue 15), so `vaultctl user|policy|token` work in remote mode.

Every route needs an administrator; managing a user or token whose current or new role is
Admin or SuperAdmin needs a SuperAdmin (`Authorizer.require_manage`). Every change is audited
by the core. A token is returned once, by `POST /tokens`; afterwards it is named by accessor.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from strongroom import errors
from strongroom.clock import parse_duration
from strongroom.core.access import UserInfo
from strongroom.core.password_rules import check_new_password
from strongroom.core.policy import check_policy_name
from strongroom.core.roles import canonical_role
from strongroom.core.token_records import cutoff_time
from strongroom.http.bodies import int_field, query_int
from strongroom.http.bodies import str_field as _str
from strongroom.http.errors import json_response
from strongroom.http.routing import Operation, Target
from strongroom.http.state import Caller, ServerState
from strongroom.models import iso

__all__ = ["OPERATIONS", "admin_caller", "user_named"]

V = "/api/vault"
_STR = {"type": "string"}
_NAMES = {"type": "array", "items": _STR}


def _object(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


def _names(body: dict[str, Any], name: str = "policies") -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise errors.InvalidInput(f"{name} must be a list of names")
    return list(value)


def _duration(body: dict[str, Any], name: str) -> timedelta | None:
    value = _str(body, name, required=False)
    return None if value is None else parse_duration(value)


async def admin_caller(request: Request, st: ServerState, action: str) -> Caller:
    """The caller of an administration request, refused (audited) unless an administrator."""
    caller = await st.caller(request)
    await st.require_admin(caller, action)
    return caller


async def user_named(st: ServerState, username: str) -> UserInfo:
    """The built-in user called `username`.

    Raises:
        UserNotFound: no such user.
    """
    for user in await st.run(st.vault.access.list_users):
        if user.username == username:
            return user
    raise errors.UserNotFound()


async def _subject_roles(st: ServerState, subject: int) -> list[str]:
    """The roles subject `subject` is known to hold: its built-in user's, and its recorded
    tokens' (a panel subject's JWT role is not known to the server)."""
    user = await st.run(st.vault.access.get_user, subject)
    found = await st.run(st.vault.tokens.list_tokens, subject)
    return ([user.role] if user is not None else []) + [t.role for t in found]


async def _manage_subject(
    st: ServerState, caller: Caller, subject: int, roles: list[str], action: str, path: str
) -> None:
    """`require_manage` over `roles` and every role `subject` is known to hold."""
    await st.require_manage(caller, roles + await _subject_roles(st, subject), action, path)


# -- users --------------------------------------------------------------------------------------
async def user_totp_enable(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "user_totp_enable")
    username = request.path_params["username"]
    current = await user_named(st, username)
    await st.require_manage(caller, [current.role], "user_totp_enable", f"user:{username}")
    made = await st.run(st.vault.totp.enable, username, actor=caller.actor)
    return json_response({"username": username, "secret": made.secret, "uri": made.uri})


async def user_totp_disable(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "user_totp_disable")
    username = request.path_params["username"]
    current = await user_named(st, username)
    await st.require_manage(caller, [current.role], "user_totp_disable", f"user:{username}")
    await st.run(st.vault.totp.disable, username, actor=caller.actor)
    return json_response({"message": "TOTP disabled", "username": username})


async def users_list(request: Request, st: ServerState, _: Target) -> Response:
    await admin_caller(request, st, "user_list")
    users = await st.run(st.vault.access.list_users)
    return json_response({"users": [u.as_dict() for u in users], "count": len(users)})


async def user_create(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "user_create")
    body = await st.read_json(request)
    username, role = _str(body, "username"), _str(body, "role")
    assert username is not None and role is not None  # noqa: S101 - required fields
    await st.require_manage(caller, [role], "user_create", f"user:{username}")
    info = await st.run(
        st.vault.access.create_user,
        username,
        _str(body, "password"),
        role,
        policies=_names(body) or (),
        actor=caller.actor,
    )
    return json_response(info.as_dict(), 201)


async def user_get(request: Request, st: ServerState, _: Target) -> Response:
    await admin_caller(request, st, "user_read")
    return json_response((await user_named(st, request.path_params["username"])).as_dict())


async def user_update(request: Request, st: ServerState, _: Target) -> Response:
    """PATCH: any of `role`, `policies`, `password`, `disabled` (each revokes the tokens)."""
    caller = await admin_caller(request, st, "user_update")
    username = request.path_params["username"]
    body = await st.read_json(request)
    current = await user_named(st, username)
    role = _str(body, "role", required=False)
    await st.require_manage(caller, [current.role, role or ""], "user_update", f"user:{username}")
    # Every field is checked before the first change, so bad input changes nothing.
    password = _str(body, "password", required=False)
    if password is not None:
        check_new_password(password)
    policies = _names(body)
    for name in policies or ():
        check_policy_name(name)
    disabled = body.get("disabled")
    if disabled is not None and not isinstance(disabled, bool):
        raise errors.InvalidInput("disabled must be true or false")
    access, actor = st.vault.access, caller.actor
    info = current
    if role is not None:
        info = await st.run(access.set_user_role, username, canonical_role(role), actor=actor)
    if policies is not None:
        info = await st.run(access.set_user_policies, username, policies, actor=actor)
    if password is not None:
        info = await st.run(access.reset_password, username, password, actor=actor)
    if disabled is not None:
        info = await st.run(access.set_user_disabled, username, disabled, actor=actor)
    return json_response(info.as_dict())


async def user_delete(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "user_delete")
    username = request.path_params["username"]
    current = await user_named(st, username)
    await st.require_manage(caller, [current.role], "user_delete", f"user:{username}")
    await st.run(st.vault.access.delete_user, username, actor=caller.actor)
    return json_response({"message": "User deleted", "username": username})


# -- policies -----------------------------------------------------------------------------------
def _policy_json(policy: Any) -> dict[str, Any]:
    rules = [f"{r.pattern}: {', '.join(sorted(r.capabilities))}" for r in policy.rules]
    return {"name": policy.name, "rules": rules}


async def policies_list(request: Request, st: ServerState, _: Target) -> Response:
    await admin_caller(request, st, "policy_list")
    found = await st.run(st.vault.access.list_policies)
    return json_response({"policies": [_policy_json(p) for p in found], "count": len(found)})


async def policy_get(request: Request, st: ServerState, _: Target) -> Response:
    await admin_caller(request, st, "policy_read")
    found = await st.run(st.vault.access.get_policies, [request.path_params["name"]])
    if not found:
        raise errors.NotFound("policy not found")
    return json_response(_policy_json(found[0]))


async def policy_put(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "policy_write")
    body = await st.read_json(request)
    name, rules = request.path_params["name"], _str(body, "rules")
    written = await st.run(st.vault.access.write_policy, name, rules, actor=caller.actor)
    return json_response(_policy_json(written))


async def policy_delete(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "policy_delete")
    name = request.path_params["name"]
    await st.run(st.vault.access.delete_policy, name, actor=caller.actor)
    return json_response({"message": "Policy deleted", "name": name})


# -- tokens -------------------------------------------------------------------------------------
async def tokens_list(request: Request, st: ServerState, _: Target) -> Response:
    await admin_caller(request, st, "token_list")
    raw = request.query_params.get("user_id")
    subject = None if raw is None else query_int(raw, "user_id")
    found = await st.run(st.vault.tokens.list_tokens, subject)
    return json_response({"tokens": [t.as_dict() for t in found], "count": len(found)})


async def token_create(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "token_create")
    body = await st.read_json(request)
    role = canonical_role(_str(body, "role") or "")
    subject = int_field(body.get("user_id"), "user_id")
    # a token for a built-in user's id speaks for that user: only a SuperAdmin mints one
    builtin = await st.run(st.vault.access.get_user, subject) is not None
    roles = [role, "SuperAdmin"] if builtin else [role]
    await _manage_subject(st, caller, subject, roles, "token_create", f"user-id:{subject}")
    issued = await st.run(
        st.vault.tokens.create,
        subject,
        role,
        policies=_names(body) or (),
        ttl=_duration(body, "ttl") or st.settings.token_ttl,
        max_ttl=_duration(body, "max_ttl"),
        actor=caller.actor,
    )
    return json_response({"token": issued.token, **issued.info.as_dict()}, 201)


async def token_get(request: Request, st: ServerState, _: Target) -> Response:
    await admin_caller(request, st, "token_read")
    info = await st.run(st.vault.tokens.lookup, request.path_params["accessor"])
    return json_response(info.as_dict())


async def token_lookup(request: Request, st: ServerState, _: Target) -> Response:
    await admin_caller(request, st, "token_read")
    body = await st.read_json(request)
    accessor = await st.run(st.vault.tokens.accessor_of, _str(body, "token"))
    return json_response((await st.run(st.vault.tokens.lookup, accessor)).as_dict())


async def _manage_token(st: ServerState, caller: Caller, accessor: str, action: str) -> None:
    """Refuse (audited) acting on a token whose role or subject the caller may not manage."""
    info = await st.run(st.vault.tokens.lookup, accessor)
    await _manage_subject(st, caller, info.user_id, [info.role], action, f"token:{accessor}")


async def token_renew(request: Request, st: ServerState, _: Target) -> Response:
    caller = await admin_caller(request, st, "token_renew")
    body = await st.read_json(request, required=False)
    accessor = request.path_params["accessor"]
    increment = _duration(body, "increment")
    await _manage_token(st, caller, accessor, "token_renew")
    info, warnings = await st.run(st.vault.tokens.renew, accessor, increment, actor=caller.actor)
    return json_response({**info.as_dict(), "warnings": warnings})


async def token_revoke(request: Request, st: ServerState, _: Target) -> Response:
    """`{"accessor"}` revokes one token; `{"user_id"}` every recorded token of a subject;
    `{"user_id", "jwt_issued_before": "now" | ISO-8601}` the subject's stateless JWTs issued
    before that time. Acting on an Admin's or SuperAdmin's tokens needs a SuperAdmin; so does
    the JWT cut-off, as the server does not know a panel subject's role."""
    caller = await admin_caller(request, st, "token_revoke")
    body = await st.read_json(request)
    if body.get("jwt_issued_before") is not None:
        subject = int_field(body.get("user_id"), "user_id")
        when = cutoff_time(_str(body, "jwt_issued_before") or "")
        await st.require_manage(caller, ["SuperAdmin"], "token_revoke_jwts", f"user-id:{subject}")
        await st.run(st.vault.tokens.revoke_jwts_before, subject, when, actor=caller.actor)
        return json_response({"user_id": subject, "jwt_issued_before": iso(when)})
    if body.get("user_id") is not None:
        subject = int_field(body.get("user_id"), "user_id")
        await _manage_subject(st, caller, subject, [], "token_revoke", f"user-id:{subject}")
        count = await st.run(st.vault.tokens.revoke_user, subject, actor=caller.actor)
        return json_response({"revoked": count, "user_id": subject})
    accessor = _str(body, "accessor")
    assert accessor is not None  # noqa: S101 - str_field requires it
    await _manage_token(st, caller, accessor, "token_revoke")
    await st.run(st.vault.tokens.revoke, accessor, actor=caller.actor)
    return json_response({"revoked": 1, "accessor": accessor})


_USER = _object(
    ["username", "password", "role"], username=_STR, password=_STR, role=_STR, policies=_NAMES
)
_USER_PATCH = _object([], role=_STR, policies=_NAMES, password=_STR, disabled={"type": "boolean"})
_TOKEN = _object(
    ["user_id", "role"],
    user_id={"type": "integer", "minimum": 0},
    role=_STR,
    policies=_NAMES,
    ttl={**_STR, "example": "1h"},
    max_ttl={**_STR, "example": "24h"},
)
_REVOKE = _object(
    [],
    accessor=_STR,
    user_id={"type": "integer", "minimum": 0},
    jwt_issued_before={**_STR, "example": "now"},
)
U, P, T = V + "/users", V + "/policies", V + "/tokens"

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", U, users_list, "List built-in users", "admin"),
    Operation("POST", U, user_create, "Create a built-in user", "admin", _USER, status=201),
    Operation("GET", U + "/{username}", user_get, "Read a user", "admin"),
    Operation(
        "PATCH",
        U + "/{username}",
        user_update,
        "Change role, policies, password or disabled (revokes the user's tokens)",
        "admin",
        _USER_PATCH,
    ),
    Operation("DELETE", U + "/{username}", user_delete, "Delete a user (and tokens)", "admin"),
    Operation(
        "POST",
        U + "/{username}/totp",
        user_totp_enable,
        "Enable TOTP for a user: returns the new seed and otpauth:// URI once",
        "admin",
    ),
    Operation(
        "DELETE", U + "/{username}/totp", user_totp_disable, "Disable a user's TOTP", "admin"
    ),
    Operation("GET", P, policies_list, "List path policies", "admin"),
    Operation("GET", P + "/{name}", policy_get, "Read a policy", "admin"),
    Operation(
        "PUT",
        P + "/{name}",
        policy_put,
        "Create or replace a policy",
        "admin",
        _object(["rules"], rules={**_STR, "example": "app/billing/*: read, list"}),
    ),
    Operation("DELETE", P + "/{name}", policy_delete, "Delete a policy", "admin"),
    Operation("GET", T, tokens_list, "List recorded tokens", "admin", query=("user_id",)),
    Operation("POST", T, token_create, "Issue a recorded token", "admin", _TOKEN, status=201),
    Operation(
        "POST",
        T + "/lookup",
        token_lookup,
        "Look a token up",
        "admin",
        _object(["token"], token=_STR),
    ),
    Operation(
        "POST", T + "/revoke", token_revoke, "Revoke a token or a subject's", "admin", _REVOKE
    ),
    Operation("GET", T + "/{accessor}", token_get, "Read a token's record", "admin"),
    Operation(
        "POST",
        T + "/{accessor}/renew",
        token_renew,
        "Renew a token (capped at max TTL)",
        "admin",
        _object([], increment={**_STR, "example": "1h"}),
    ),
)
