"""`/v1/sys/mounts...`, `/v1/sys/remount` and `/v1/sys/internal/ui/mounts...`: secrets engine
mounts as OpenBao 2.x manages them, for the `kv` type (hvac's `sys.*_secrets_engine`,
`*_mount_configuration`, `move_backend`; `bao secrets ...`; the CLI's KV version preflight).

Listing and reading mounts and their tuning (`sys/mounts...`) takes an administrator, as in
Vault without a `sys/mounts` policy; the UI preflight (`sys/internal/ui/mounts...`, which the
`bao kv` commands need) shows any caller `secret/` and the mounts its policies reach, and
nothing else, so a token learns no other mount's name. Enabling, disabling, tuning and moving
take an administrator (`require_admin`), and the core (`vault.mounts`) validates and audits
every change. A move is synchronous: `sys/remount` answers with a
`migration_id` whose status (`sys/remount/status/<id>`) is `success`, as OpenBao reports a
finished move. The id is derived from the move's audit entry (request id and `from -> to`), so
every worker, and a restarted server, answers for it from the audit log (`_migration_id`).
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from strongroom import errors
from strongroom.core.mount_paths import DEFAULT_MOUNT, mount_path
from strongroom.core.mounts import MountRow
from strongroom.core.tokens import Principal
from strongroom.http.errors import json_response, no_content
from strongroom.http.kv2_format import envelope, mount_json, tune_json
from strongroom.http.state import V1, ServerState, state_of

__all__ = ["ROUTES"]

#: Namespace of migration ids (uuid5 of a move's audit request id and `from -> to`).
_MIGRATION_NS = uuid.UUID("5f0d7c3e-2b7a-4c55-9a57-6d1e6c1f0b2a")
#: Status answers for the most recent moves recorded in the audit log.
_MIGRATIONS_KEPT = 1000
_TUNE_SUFFIX = "/tune"
_TTL_KEYS = ("default_lease_ttl", "max_lease_ttl", "listing_visibility", "force_no_cache")


def _system(data: Any, request_id: str | None, *, top: bool = True) -> Response:
    """Vault's `sys/` answer: the envelope, and (as Vault) the data's keys at the top level."""
    body = envelope(data, request_id=request_id, mount_type="system")
    return json_response({**data, **body} if top else body)


async def _body(st: ServerState, request: Request) -> dict[str, Any]:
    return await st.read_json(request, required=False, any_type=True)


async def list_mounts(request: Request) -> Response:
    """Every mount, keyed by path."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    await st.require_admin(caller, "list_mounts")
    rows = await st.run(st.vault.mounts.list, actor=caller.actor)
    return _system({row.path: mount_json(row, with_path=False) for row in rows}, caller.request_id)


async def mount(request: Request) -> Response:
    """`sys/mounts/<path>`: GET reads, POST/PUT enables, DELETE disables; a path ending in
    `/tune` is the mount's tune endpoint."""
    path = request.path_params["path"]
    if path.endswith(_TUNE_SUFFIX):
        return await _tune(request, path.removesuffix(_TUNE_SUFFIX))
    st = state_of(request)
    caller = await st.caller(request, V1)
    if request.method == "GET":
        await st.require_admin(caller, "read_mount", path=path[:200])
        row = await st.run(st.vault.mounts.read, path, actor=caller.actor)
        return _system(mount_json(row, with_path=False), caller.request_id)
    if request.method == "DELETE":
        await st.require_admin(caller, "disable_mount", path=path[:200])
        await st.run(st.vault.mounts.disable, path, actor=caller.actor)
        return no_content()
    body = await _body(st, request)
    await st.require_admin(caller, "enable_mount", path=path[:200])
    engine = body.get("type")
    if not engine:
        raise errors.InvalidInput('missing required "type" parameter')
    await st.run(
        st.vault.mounts.enable,
        path,
        engine,
        # Vault shows a `kv` mount's options as given: `{}` when left out, null when null.
        options=body.get("options", {}),
        description=body.get("description"),
        config=body.get("config"),
        actor=caller.actor,
    )
    return no_content()


async def _tune(request: Request, path: str) -> Response:
    st = state_of(request)
    caller = await st.caller(request, V1)
    if request.method == "GET":
        await st.require_admin(caller, "read_mount", path=path[:200])
        row = await st.run(st.vault.mounts.read, path, actor=caller.actor)
        return _system(tune_json(row), caller.request_id)
    if request.method not in ("POST", "PUT"):
        raise HTTPException(405, headers={"Allow": "GET, POST, PUT"})
    body = await _body(st, request)
    await st.require_admin(caller, "tune_mount", path=path[:200])
    before: MountRow = await st.run(st.vault.mounts.read, path, actor=caller.actor)
    after: MountRow = await st.run(
        st.vault.mounts.tune,
        path,
        options=body.get("options"),
        description=body.get("description"),
        config={k: body[k] for k in _TTL_KEYS if k in body},
        actor=caller.actor,
    )
    if after.version != before.version:
        answer = envelope(None, request_id=caller.request_id, mount_type="system")
        answer["warnings"] = [
            f"Upgrading mount from version {before.version} to version {after.version}."
            " The data is kept; the mount serves the new version at once."
        ]
        return json_response(answer)
    return no_content()


async def remount(request: Request) -> Response:
    """Move a mount (`{"from", "to"}`) with every key in it; done when this answers."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    body = await _body(st, request)
    source, target = body.get("from"), body.get("to")
    if not isinstance(source, str) or not isinstance(target, str) or not source or not target:
        raise errors.InvalidInput('"from" and "to" must name mount paths')
    await st.require_admin(caller, "move_mount", path=source[:200])
    moved: MountRow = await st.run(st.vault.mounts.move, source, target, actor=caller.actor)
    audited = f"{mount_path(source)} -> {moved.path}"  # the move's audit path (core.mounts)
    migration_id = _migration_id(caller.request_id, audited)
    return _system({"migration_id": migration_id}, caller.request_id)


def _migration_id(request_id: str, audited: str) -> str:
    """The id of the move audited as `audited` by request `request_id`: derived, not stored,
    so any worker finds it again in the audit log."""
    return str(uuid.uuid5(_MIGRATION_NS, f"{request_id}\x00{audited}"))


async def remount_status(request: Request) -> Response:
    """A finished move's status, found among the latest moves in the audit log (404: none)."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    migration_id = request.path_params["migration_id"]
    try:
        uuid.UUID(migration_id)
    except ValueError:
        raise errors.NotFound() from None
    moves = await st.run(st.vault.audit.query, action="move_mount", limit=_MIGRATIONS_KEPT)
    found = next(
        (
            m.path
            for m in moves
            if m.success
            and m.path
            and m.request_id
            and _migration_id(m.request_id, m.path) == migration_id
        ),
        None,
    )
    if found is None:
        raise errors.NotFound()
    source_mount, target_mount = found.split(" -> ", 1)
    info = {"source_mount": source_mount, "target_mount": target_mount, "status": "success"}
    data = {"migration_id": migration_id, "migration_info": info}
    return _system(data, caller.request_id, top=False)


async def ui_mounts(request: Request) -> Response:
    """The mounts a client may see: every mount for an administrator, else `secret/` and the
    mounts its policies reach."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    rows = await st.run(st.vault.mounts.list, actor=caller.actor)
    visible = await st.run(_visible, st, caller.principal, [row.path for row in rows])
    secret = {row.path: mount_json(row, with_path=False) for row in rows if row.path in visible}
    return _system({"auth": {}, "secret": secret}, caller.request_id, top=False)


async def ui_mount(request: Request) -> Response:
    """The mount serving a path: how the CLI learns a mount's KV version."""
    st = state_of(request)
    caller = await st.caller(request, V1)
    path = request.path_params["path"]
    found = await st.run(st.vault.mounts.find, path.strip("/"))
    if found is not None and not await st.run(_visible, st, caller.principal, [found[0].path]):
        found = None  # a mount the caller's policies don't reach answers as no mount at all
    if found is None:
        shown = path.strip("/")[:100]
        raise errors.PermissionDenied(
            "preflight capability check returned 403, please ensure client's policies "
            f'grant access to path "{shown}/"'
        )
    row = await st.run(st.vault.mounts.read, found[0].path, actor=caller.actor)
    return _system(mount_json(row, with_path=True), caller.request_id, top=False)


def _visible(st: ServerState, principal: Principal, paths: list[str]) -> set[str]:
    """The mount paths among `paths` that `principal` may learn of (in a worker thread: the
    policies may need a read)."""
    authorizer = st.vault.authorizer
    if authorizer.is_admin(principal):
        return set(paths)
    policies = authorizer.policies_of(principal)
    return {
        path for path in paths if path == DEFAULT_MOUNT or any(p.reaches(path) for p in policies)
    }


ROUTES: list[BaseRoute] = [
    Route("/v1/sys/mounts", list_mounts, methods=["GET"], name="v1_mounts"),
    Route(
        "/v1/sys/mounts/{path:path}",
        mount,
        methods=["GET", "POST", "PUT", "DELETE"],
        name="v1_mount",
    ),
    Route("/v1/sys/remount", remount, methods=["POST", "PUT"], name="v1_remount"),
    Route(
        "/v1/sys/remount/status/{migration_id}",
        remount_status,
        methods=["GET"],
        name="v1_remount_status",
    ),
    Route("/v1/sys/internal/ui/mounts", ui_mounts, methods=["GET"], name="v1_ui_mounts_list"),
    Route("/v1/sys/internal/ui/mounts/{path:path}", ui_mount, methods=["GET"], name="v1_ui_mounts"),
]
