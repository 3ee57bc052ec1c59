"""`/v1/<mount>/...`: the Vault/OpenBao KV v2 API (hvac, the `bao`/`vault` CLI), at `secret/`
on the same data as `/api/vault`, and at every other KV v2 mount.

Each route parses Vault's request shape, checks the caller's policy on the secret path (at
`secret/` the path without Vault's `data/`/`metadata/` infix, as before mounts; at another
mount Vault's own path, `kv/data/app/db`: `core.mount_paths.policy_path`), makes one core call
(audited there, as for `/api/vault`) and answers with Vault's envelope, status codes and
`{"errors": [...]}` bodies. The routes below serve `secret/`; `api_kv_mounts` sends a request
for any other mount to the same handlers (the mount in `request.scope`). `ROUTES` also carries
the `sys/` and `auth/token/` routes (`api_kv2_sys`, `api_mounts`) and, last, that dispatcher,
which answers 404 as Vault does when no mount serves a path. Policy capabilities: reads
`read`, LIST `list` (on the folder, as `folder/`), writes `create` (new key) or `update`,
PATCH and `undelete/` `update`, `DELETE`, `delete/`, `destroy/` `delete`; `config` is for
administrators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from strongroom import errors
from strongroom.core.kv import KVEngine
from strongroom.core.mount_paths import SECRET, MountRef, policy_path
from strongroom.http import api_kv2_sys, api_kv_mounts, api_mounts
from strongroom.http.bodies import int_field, query_int, versions_field
from strongroom.http.deps import require_content_type
from strongroom.http.errors import json_response, no_content
from strongroom.http.kv2_format import config_json, envelope, metadata_json, version_meta_json
from strongroom.http.state import V1, Caller, ServerState, state_of

__all__ = ["KV2_ROUTES", "OTHER_ROUTES", "ROUTES"]

_ALL = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "LIST"]
_SETTINGS = ("max_versions", "cas_required", "delete_version_after", "custom_metadata")
MERGE_PATCH = "application/merge-patch+json"
_NO_QUERY: dict[str, str] = {}


def _cas(body: dict[str, Any]) -> int | None:
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise errors.InvalidInput("options must be an object")
    cas = options.get("cas")
    return None if cas is None else int_field(cas, "cas")


async def _body(st: ServerState, request: Request) -> dict[str, Any]:
    """The JSON body, whatever its Content-Type, as Vault reads it ({} when empty)."""
    return await st.read_json(request, required=False, any_type=True)


async def _require_write(
    st: ServerState, caller: Caller, action: str, path: str, named: str, ref: MountRef
) -> None:
    """Allow a write that creates the key (`create`) or changes it (`update`). A caller
    allowed both (administrators, most policies) needs no look at whether the key exists.

    Raises:
        PermissionDenied: the capability the write needs is not granted (audited).
    """
    allows = st.vault.authorizer.allows_cached
    if allows(caller.principal, "create", named, mount=ref.path) and allows(
        caller.principal, "update", named, mount=ref.path
    ):
        return
    exists = await st.read(st.vault.kv.exists, path, mount=ref.path)
    await st.require(caller, "update" if exists else "create", action, named, mount=ref.path)


def mount_of(request: Request) -> MountRef:
    """The mount a request runs in (`api_kv_mounts` sets it; `secret/` otherwise)."""
    ref = request.scope.get("strongroom.mount")
    return ref if isinstance(ref, MountRef) else SECRET


# -- data -------------------------------------------------------------------------------------
async def data(request: Request) -> Response:
    """GET (`?version=`), POST/PUT (`options.cas`), PATCH (merge patch), DELETE (soft, latest).

    A deleted or destroyed version, and PATCH of a missing secret, are answered as Vault does
    by `http.errors` (route `kv2_data`)."""
    st, path, ref = state_of(request), request.path_params["path"], mount_of(request)
    caller = await st.caller(request, V1)
    named = policy_path(ref, "data", path)
    if request.method == "GET":
        # (no query string, no parsing: a read's usual case)
        query = request.query_params if request.scope["query_string"] else _NO_QUERY
        version = query_int(query.get("version", "0"), "version")
        await st.require(caller, "read", "read", named, mount=ref.path)
        secret = await st.read(st.vault.kv.read, path, version, mount=ref, actor=caller.actor)
        return json_response(
            envelope(
                {"data": secret.data, "metadata": version_meta_json(secret.metadata)},
                request_id=caller.request_id,
            )
        )
    if request.method == "DELETE":
        await st.require(caller, "delete", "soft_delete", named, mount=ref.path)
        await st.run(st.vault.kv.delete_latest, path, mount=ref.path, actor=caller.actor)
        return no_content()
    if request.method == "PATCH":
        require_content_type(request, MERGE_PATCH)
        body = await _body(st, request)
        await st.require(caller, "update", "patch", named, mount=ref.path)
        meta = await st.run(
            st.vault.kv.patch,
            path,
            body.get("data"),
            cas=_cas(body),
            mount=ref.path,
            actor=caller.actor,
        )
    else:
        body = await _body(st, request)
        await _require_write(st, caller, "write", path, named, ref)
        meta = await st.write(
            st.vault.kv.write,
            path,
            body.get("data"),
            cas=_cas(body),
            mount=ref.path,
            actor=caller.actor,
        )
    return json_response(envelope(version_meta_json(meta), request_id=caller.request_id))


def _versions_endpoint(
    action: str, capability: str, method: Callable[[KVEngine], Callable[..., None]]
) -> Route:
    """`delete/`, `undelete/`, `destroy/` with `{"versions": [...]}`, answered with 204."""

    async def change(request: Request) -> Response:
        st, path, ref = state_of(request), request.path_params["path"], mount_of(request)
        caller = await st.caller(request, V1)
        numbers = versions_field((await _body(st, request)).get("versions"))
        await st.require(caller, capability, action, policy_path(ref, action, path), mount=ref.path)
        await st.run(method(st.vault.kv), path, numbers, mount=ref.path, actor=caller.actor)
        return no_content()

    return Route(
        f"/v1/secret/{action}/{{path:path}}", change, methods=["POST", "PUT"], name=f"kv2_{action}"
    )


async def subkeys(request: Request) -> Response:
    """The key structure of a version (`?version=`, `?depth=`), values replaced by null."""
    st, path, ref = state_of(request), request.path_params["path"], mount_of(request)
    caller = await st.caller(request, V1)
    version = query_int(request.query_params.get("version", "0"), "version")
    depth = query_int(request.query_params.get("depth", "0"), "depth")
    await st.require(caller, "read", "subkeys", policy_path(ref, "subkeys", path), mount=ref.path)
    secret = await st.read(
        st.vault.kv.subkeys, path, version, depth, mount=ref.path, actor=caller.actor
    )
    return json_response(
        envelope(
            {"subkeys": secret.data, "metadata": version_meta_json(secret.metadata)},
            request_id=caller.request_id,
        )
    )


# -- metadata ---------------------------------------------------------------------------------
async def metadata(request: Request) -> Response:
    """GET, POST/PUT, PATCH, DELETE (every version), and LIST or `GET ?list=true`."""
    st, path, ref = state_of(request), request.path_params.get("path", ""), mount_of(request)
    caller = await st.caller(request, V1)
    method = request.method
    if method == "LIST" or (
        method == "GET" and request.query_params.get("list", "").lower() in ("true", "1")
    ):
        folder = path.strip("/")
        named = policy_path(ref, "metadata", f"{folder}/" if folder else "")
        await st.require(caller, "list", "list", named, mount=ref.path)
        keys = await st.read(st.vault.kv.metadata.list, folder, mount=ref.path, actor=caller.actor)
        return json_response(envelope({"keys": keys}, request_id=caller.request_id))
    if not path:
        raise errors.NotFound()
    named = policy_path(ref, "metadata", path)
    if method == "GET":
        await st.require(caller, "read", "read_metadata", named, mount=ref.path)
        meta = await st.read(st.vault.kv.metadata.read, path, mount=ref.path, actor=caller.actor)
        return json_response(envelope(metadata_json(meta), request_id=caller.request_id))
    if method == "DELETE":
        await st.require(caller, "delete", "delete", named, mount=ref.path)
        await st.run(st.vault.kv.metadata.delete, path, mount=ref.path, actor=caller.actor)
        return no_content()
    if method == "PATCH":
        require_content_type(request, MERGE_PATCH)
    body = await _body(st, request)
    settings = {name: body.get(name) for name in _SETTINGS}
    if method == "PATCH":
        await st.require(caller, "update", "write_metadata", named, mount=ref.path)
    else:
        await _require_write(st, caller, "write_metadata", path, named, ref)
    fn = st.vault.kv.metadata.patch if method == "PATCH" else st.vault.kv.metadata.write
    await st.run(fn, path, **settings, mount=ref.path, actor=caller.actor)
    return no_content()


async def config(request: Request) -> Response:
    """The mount-wide settings (they apply to every secret: administrators only)."""
    st, ref = state_of(request), mount_of(request)
    caller = await st.caller(request, V1)
    await st.require_admin(caller, "kv_config")
    if request.method == "GET":
        current = await st.run(st.vault.kv.metadata.read_config, mount=ref.path, actor=caller.actor)
        return json_response(envelope(config_json(current), request_id=caller.request_id))
    body = await _body(st, request)
    await st.run(
        st.vault.kv.metadata.write_config,
        max_versions=body.get("max_versions"),
        cas_required=body.get("cas_required"),
        delete_version_after=body.get("delete_version_after"),
        mount=ref.path,
        actor=caller.actor,
    )
    return no_content()


#: The KV v2 endpoints, at `secret/` (any other mount: `api_kv_mounts.dispatcher`).
KV2_ROUTES: list[Route] = [
    Route("/v1/secret/config", config, methods=["GET", "POST", "PUT"], name="kv2_config"),
    Route(
        "/v1/secret/data/{path:path}",
        data,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        name="kv2_data",
    ),
    Route("/v1/secret/metadata", metadata, methods=_ALL, name="kv2_metadata_root"),
    Route("/v1/secret/metadata/{path:path}", metadata, methods=_ALL, name="kv2_metadata"),
    Route("/v1/secret/subkeys/{path:path}", subkeys, methods=["GET"], name="kv2_subkeys"),
    _versions_endpoint("delete", "delete", lambda kv: kv.delete_versions),
    _versions_endpoint("undelete", "update", lambda kv: kv.undelete),
    _versions_endpoint("destroy", "delete", lambda kv: kv.destroy),
]

#: Every other mount's requests, and Vault's 404 for a path no mount serves (`http.direct`
#: serves it without the router when the path's first segment starts no other route).
MOUNTS_ROUTE = Route(
    "/v1/{rest:path}", api_kv_mounts.dispatcher(KV2_ROUTES), methods=_ALL, name="kv2_no_route"
)

#: The rest of `/v1`, the dispatcher last (`create_app` puts `KV2_ROUTES` first of all routes).
OTHER_ROUTES: list[BaseRoute] = [*api_kv2_sys.ROUTES, *api_mounts.ROUTES, MOUNTS_ROUTE]

#: Every `/v1` route of this module, in the order the API documents them (`/openapi.json`).
ROUTES: list[BaseRoute] = [*OTHER_ROUTES[:-1], *KV2_ROUTES, OTHER_ROUTES[-1]]
