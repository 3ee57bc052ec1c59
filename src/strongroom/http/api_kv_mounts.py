"""`/v1/<mount>/...` for every mount but `secret/`: finds the mount serving a path (longest
mount path first, as Vault's router) and serves it — KV v2 through the very handlers of
`api_kv2` (the mount travels in `request.scope["strongroom.mount"]`), KV v1 here.

KV v1 (`GET/POST/PUT/DELETE <mount>/<key>`, LIST or `GET ?list=true` on a folder) keeps no
versions on the wire: a write stores the next version (Strongroom keeps the history, so an
upgrade to v2 by `sys/mounts/<path>/tune` keeps it), a read sees the latest, a delete removes
the key. Policies name Vault's path, `<mount><key>`. A path no mount serves gets Vault's
"no handler for route" 404 (after the token is checked, so mount names do not leak). A key's
read is routed by the worker's copy of the mount table (`Mounts.find_cached`, at most 1 s old),
and routed again by the table when the read finds its mount changed by another process
meanwhile; every other request is routed by the table.
Metrics label these requests with a template (`/v1/{mount}/...`), never with the mount's path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from strongroom import errors
from strongroom.core.mount_paths import MountRef, policy_path
from strongroom.http.errors import json_response, no_content
from strongroom.http.kv2_format import envelope
from strongroom.http.state import V1, state_of

__all__ = ["dispatcher"]

#: Vault's lease duration on a KV v1 read when the mount sets none (its 768h system default).
DEFAULT_LEASE_SECONDS = 768 * 3600
_KINDS = ("config", "data", "metadata", "subkeys", "delete", "undelete", "destroy")

Endpoint = Callable[[Request], Awaitable[Response]]


def dispatcher(kv2_routes: Sequence[Route]) -> Endpoint:
    """The catch-all endpoint of `/v1/`, serving mounts with `kv2_routes` (the `secret/`
    routes of `api_kv2`, whose handlers read the mount from the request scope)."""
    # kind (`data`, `metadata`, ...) -> its route, the methods it serves and its metrics label
    by_kind: dict[str, tuple[Route, frozenset[str], str]] = {}
    for route in kv2_routes:
        kind = route.path.removeprefix("/v1/secret/").split("/", 1)[0]
        if route.name != "kv2_metadata_root":
            label = "/v1/{mount}/" + route.path.removeprefix("/v1/secret/").replace(
                "{path:path}", "{path}"
            )
            by_kind[kind] = (route, frozenset(route.methods or ()), label)

    async def mounted(request: Request) -> Response:
        rest = request.path_params["rest"]
        st = state_of(request)
        # The token first, as Vault: a caller without one learns nothing of which mounts exist
        # (403 for every path, never a 404 that a mount would have turned into a 403).
        await st.caller(request, V1)
        mounts = st.vault.mounts
        # A key's read is routed by the worker's copy of the mount table when it is fresh (no
        # I/O: on PostgreSQL a thread hop and a round trip less). The read checks that its
        # mount is still the one routed to, in its version; when not, the request is routed
        # again by the table, and checked against the policy again. Everything else is routed
        # by the table.
        cached = mounts.find_cached(rest) if request.scope["method"] == "GET" else None
        if cached is not None and _reads_a_key(request, *cached):
            try:
                return await serve(request, *cached)
            except errors.MountNotFound:  # (MountChanged: changed by another process)
                pass
        found = await st.read(mounts.find, rest)  # (on SQLite: on the loop)
        if found is None:
            raise HTTPException(404)
        return await serve(request, *found)

    async def serve(request: Request, ref: MountRef, inner: str) -> Response:
        request.scope["strongroom.mount"] = ref
        if ref.version == 1:
            request.scope["strongroom.route"] = "/v1/{mount}/{path}"
            request.scope["path_params"] = {"path": inner}
            return await kv1(request, ref)
        kind, _, path = inner.partition("/")
        served = by_kind.get(kind)
        if served is None or (not path and kind not in ("config", "metadata")):
            raise HTTPException(404)
        route, methods, label = served
        scope = request.scope
        if scope["method"] not in methods:
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(methods))})
        scope["route"] = route
        scope["strongroom.route"] = label
        scope["path_params"] = {"path": path}
        endpoint: Endpoint = route.endpoint
        return await endpoint(request)

    return mounted


def _reads_a_key(request: Request, ref: MountRef, inner: str) -> bool:
    """A GET of a key (KV v2 `data/...`, or a KV v1 key), not a listing: the requests whose
    read checks the mount it was routed to (`KVEngine.read` with a `MountRef`)."""
    return not _is_list(request) and (ref.version == 1 or inner.startswith("data/"))


def _is_list(request: Request) -> bool:
    method = request.scope["method"]
    return method == "LIST" or (
        method == "GET"
        and bool(request.scope["query_string"])  # (a read's usual case: no query to parse)
        and request.query_params.get("list", "").lower() in ("true", "1")
    )


async def kv1(request: Request, ref: MountRef) -> Response:
    """A KV version 1 mount: read, write, delete and list keys (no versions on the wire)."""
    st, path = state_of(request), request.path_params["path"]
    caller = await st.caller(request, V1)
    kv = st.vault.kv
    if _is_list(request):
        folder = path.strip("/")
        await st.require(caller, "list", "list", policy_path(ref, "", f"{folder}/"), mount=ref.path)
        keys = await st.run(kv.metadata.list, folder, mount=ref.path, actor=caller.actor)
        return json_response(envelope({"keys": keys}, request_id=caller.request_id))
    if not path or path.endswith("/"):
        raise HTTPException(404)
    named = policy_path(ref, "", path)
    if request.method == "GET":
        await st.require(caller, "read", "read", named, mount=ref.path)
        try:
            secret = await st.run(kv.read, path, mount=ref, actor=caller.actor)
        except errors.VersionNotFound as exc:  # metadata only, or deleted: v1 has no such state
            raise errors.SecretNotFound() from exc
        body = envelope(secret.data, request_id=caller.request_id)
        body["lease_duration"] = ref.lease_ttl or DEFAULT_LEASE_SECONDS
        return json_response(body)
    if request.method == "DELETE":
        await st.require(caller, "delete", "delete", named, mount=ref.path)
        await st.run(kv.metadata.delete, path, mount=ref.path, actor=caller.actor)
        return no_content()
    if request.method in ("POST", "PUT"):
        data = await st.read_json(request, required=False, any_type=True)
        exists = await st.read(kv.exists, path, mount=ref.path)
        await st.require(caller, "update" if exists else "create", "write", named, mount=ref.path)
        await st.run(kv.write, path, data, mount=ref.path, actor=caller.actor)
        return no_content()
    raise HTTPException(405, headers={"Allow": "DELETE, GET, LIST, POST, PUT"})
